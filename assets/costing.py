"""The costing zone: what every activity, person and cohort costs.

Each asset runs one section of the costing method statement (costing-method.md) as
named SQL rules in DuckDB; descriptions say what an analyst will find in the table.
"""

import json

import dagster as dg
import duckdb

from assets.common import (
    CODE_VERSION,
    DATA_CLASS_TAGS,
    OWNERS,
    duckdb_table_metadata,
    json_metadata,
)
from costing.activity import cost_activity
from costing.cohorts import build_cohort_membership, parse_cohorts
from costing.concentration import TOP_PERCENT, cost_concentration
from costing.disclosure import DisclosureRule
from costing.period import create_period_tables, resolve_period
from costing.persons import build_person_costs
from costing.reconciliation import build_reconciliation, reconciliation_problems
from costing.reference_costs import build_cohort_reference_costs, build_funding_bands
from costing.statements import build_statements
from delivery import tables
from delivery.charts import cost_concentration_png, markdown_image, mean_cost_by_setting_png
from pipelines.resources import WAREHOUSE_POOL, IPCResource
from schemas.sources import SETTINGS


def _settings(con: duckdb.DuckDBPyConnection) -> dict:
    return json.loads(
        con.execute("SELECT content FROM reference.documents WHERE name = 'settings'").fetchall()[
            0
        ][0]
    )


def _cohorts_yaml(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT content FROM reference.documents WHERE name = 'cohorts'").fetchall()[
        0
    ][0]


def _picture(png: bytes, alt: str) -> dg.MarkdownMetadataValue:
    """A PNG shown inline in the asset's metadata (drawn from disclosure-controlled figures)."""
    return dg.MetadataValue.md(markdown_image(png, alt))


def _costing_asset(name: str, deps: list[list[str]], check_specs=None, **kwargs):
    return dg.asset(
        key=["costing", name],
        deps=deps,
        group_name="costing",
        owners=OWNERS,
        kinds={"duckdb"},
        tags=DATA_CLASS_TAGS["pseudonymised"],
        code_version=CODE_VERSION,
        pool=WAREHOUSE_POOL,
        check_specs=check_specs,
        **kwargs,
    )


_activity_key = dg.AssetKey(["costing", "activity"])


@_costing_asset(
    "activity",
    deps=[
        ["linked", "row_links"],
        ["reference", "acute_tariff"],
        ["reference", "acute_pod_default"],
        ["reference", "unit_costs"],
        ["reference", "block_contracts"],
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "costs_non_negative",
            asset=_activity_key,
            blocking=True,
            description="No activity has a negative cost, gross or net.",
        )
    ],
)
def activity(context: dg.AssetExecutionContext, ipc: IPCResource):
    """The cost of every accepted activity, one row per activity and financial year.

    Tariff with excess bed days and POD default for acute activity, per-day costs for
    packages and stays split across financial years, block-contract local unit costs,
    national unit costs, and unpriced activity kept at £0 (costing-method.md s.2).
    """
    settings = ipc.settings()
    with ipc.warehouse_connection() as con:
        period = resolve_period(
            con, configured_start=settings.period_start, configured_end=settings.period_end
        )
        create_period_tables(con, period)
        cost_activity(con)
        by_setting = dict(
            con.execute(
                "SELECT setting, round(sum(cost), 2) FROM costing.activity GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        negative = con.execute(
            "SELECT count(*) FROM costing.activity WHERE cost < 0 OR net_cost < 0"
        ).fetchall()[0][0]
        lineage = dg.TableColumnLineage(
            deps_by_column={
                "cost": [
                    dg.TableColumnDep(asset_key=["reference", "acute_tariff"], column_name="price"),
                    dg.TableColumnDep(asset_key=["reference", "unit_costs"], column_name="cost"),
                    dg.TableColumnDep(
                        asset_key=["reference", "block_contracts"], column_name="contract_value"
                    ),
                ],
                "person_id": [
                    dg.TableColumnDep(asset_key=["linked", "row_links"], column_name="person_id")
                ],
            }
        )
        yield dg.MaterializeResult(
            metadata=duckdb_table_metadata(con, "costing.activity")
            | {
                "period_start": str(period.start),
                "period_end": str(period.end),
                "cost_by_setting": json_metadata(by_setting),
                "dagster/column_lineage": lineage,
            }
        )
    yield dg.AssetCheckResult(
        check_name="costs_non_negative",
        passed=negative == 0,
        metadata={"negative_rows": int(negative)},
    )


@_costing_asset(
    "person_costs",
    # settings: the disclosure rule the cost-concentration picture is drawn under
    deps=[["costing", "activity"], ["linked", "person_spine"], ["reference", "settings"]],
)
def person_costs(context: dg.AssetExecutionContext, ipc: IPCResource) -> dg.MaterializeResult:
    """Each person's cost per setting and in total, per financial year.

    Includes people on a long-term condition register who used nothing that year
    (total £0), so cohort averages count them (costing-method.md s.3). The
    cost-concentration picture shows how much of each year's spend the costliest
    people account for, drawn at whole percentiles of people only (years with too few
    people for that are not drawn).
    """
    with ipc.warehouse_connection() as con:
        build_person_costs(con)
        concentration = cost_concentration(con, DisclosureRule.from_settings(_settings(con)))
        totals = con.execute(
            "SELECT financial_year, count(*), round(sum(cost_total), 2) "
            "FROM costing.person_years GROUP BY 1 ORDER BY 1"
        ).fetchall()
        lineage = dg.TableColumnLineage(
            deps_by_column={
                f"cost_{s}": [
                    dg.TableColumnDep(asset_key=["costing", "activity"], column_name="cost")
                ]
                for s in SETTINGS
            }
        )
        return dg.MaterializeResult(
            metadata=duckdb_table_metadata(con, "costing.person_years")
            | {
                "people_and_cost_by_year": json_metadata(
                    {y: {"people": n, "cost": c} for y, n, c in totals}
                ),
                "cost_concentration": _picture(
                    cost_concentration_png(concentration),
                    "Cost concentration: share of people against cumulative share of spend",
                ),
                f"top_{TOP_PERCENT}_percent_share_of_spend": json_metadata(
                    {
                        row["financial_year"]: round(row["top_share"], 3)
                        for row in concentration.years.iter_rows(named=True)
                        if not row["suppressed"]
                    }
                ),
                "dagster/column_lineage": lineage,
            }
        )


@_costing_asset("cohort_membership", deps=[["costing", "person_costs"], ["reference", "cohorts"]])
def cohort_membership(context: dg.AssetExecutionContext, ipc: IPCResource) -> dg.MaterializeResult:
    """Which IPC cohorts each person is in, per financial year (from cohorts.yaml)."""
    with ipc.warehouse_connection() as con:
        cohorts = parse_cohorts(_cohorts_yaml(con))
        build_cohort_membership(con, cohorts)
        counts = con.execute(
            "SELECT cohort, financial_year, count(*) FROM costing.cohort_membership "
            "GROUP BY ALL ORDER BY 2, 1"
        ).fetchall()
        return dg.MaterializeResult(
            metadata=duckdb_table_metadata(con, "costing.cohort_membership")
            | {"cohorts": [c.name for c in cohorts], "membership_rows": len(counts)}
        )


@_costing_asset(
    "cohort_reference_costs",
    deps=[["costing", "cohort_membership"], ["reference", "settings"]],
)
def cohort_reference_costs(
    context: dg.AssetExecutionContext, ipc: IPCResource
) -> dg.MaterializeResult:
    """Annual average, median and percentile costs per cohort (before disclosure control;
    the published copy is in the exports).

    The picture of mean cost by setting is drawn from the published copy, after
    disclosure control: a suppressed cohort is labelled, not drawn.
    """
    with ipc.warehouse_connection() as con:
        build_cohort_reference_costs(con)
        published = tables.cohort_reference_costs(con, DisclosureRule.from_settings(_settings(con)))
        return dg.MaterializeResult(
            metadata=duckdb_table_metadata(con, "costing.cohort_reference_costs")
            | {
                "mean_cost_by_setting": _picture(
                    mean_cost_by_setting_png(published),
                    "Mean cost per person by setting, per cohort (published figures)",
                )
            }
        )


@_costing_asset("funding_bands", deps=[["costing", "cohort_membership"], ["reference", "settings"]])
def funding_bands(context: dg.AssetExecutionContext, ipc: IPCResource) -> dg.MaterializeResult:
    """Five funding bands per cohort and year from people's cashable costs (quintiles)."""
    with ipc.warehouse_connection() as con:
        build_funding_bands(con, _settings(con)["cashable_settings"])
        return dg.MaterializeResult(metadata=duckdb_table_metadata(con, "costing.funding_bands"))


@_costing_asset(
    "statements",
    deps=[
        ["costing", "funding_bands"],
        ["costing", "cohort_reference_costs"],
        ["reference", "settings"],
    ],
)
def statements(context: dg.AssetExecutionContext, ipc: IPCResource) -> dg.MaterializeResult:
    """Individual Statements of Resources: typical spend on people like this person,
    their own spend, and an indicative personal budget (costing-method.md s.6)."""
    with ipc.warehouse_connection() as con:
        settings = _settings(con)
        build_statements(con, DisclosureRule.from_settings(settings), settings["cashable_settings"])
        return dg.MaterializeResult(metadata=duckdb_table_metadata(con, "costing.statements"))


_reconciliation_key = dg.AssetKey(["costing", "reconciliation"])


@_costing_asset(
    "reconciliation",
    deps=[["costing", "activity"], ["costing", "person_costs"], ["linked", "linkage_report"]],
    check_specs=[
        dg.AssetCheckSpec(
            "totals_reconcile",
            asset=_reconciliation_key,
            blocking=True,
            description=(
                "Per source: rows read = accepted + quarantined; accepted rows = linked "
                "(each stage) + unlinked = costed + open + out of period (+ registers); "
                "row costs add up to the source total; person costs add up to activity."
            ),
        )
    ],
)
def reconciliation(context: dg.AssetExecutionContext, ipc: IPCResource):
    """Rows in and out of every stage, per landing source, with gross and net cost."""
    with ipc.warehouse_connection() as con:
        build_reconciliation(con)
        problems = reconciliation_problems(con)
        rows = con.sql("SELECT * FROM costing.reconciliation").pl()
        yield dg.MaterializeResult(
            metadata=duckdb_table_metadata(con, "costing.reconciliation")
            | {"by_source": json_metadata(rows.to_dicts())}
        )
    yield dg.AssetCheckResult(
        check_name="totals_reconcile",
        passed=not problems,
        metadata={"problems": json_metadata(problems)},
    )


COSTING_ASSETS = [
    activity,
    person_costs,
    cohort_membership,
    cohort_reference_costs,
    funding_bands,
    statements,
    reconciliation,
]
