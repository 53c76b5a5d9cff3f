"""The costing zone: what every activity, person and cohort costs, per financial year.

Each asset runs one section of the costing method statement (costing-method.md) as
named SQL rules in DuckDB; descriptions say what an analyst will find in the table.

Every asset but the reconciliation is partitioned by financial year
(:mod:`pipelines.partitions`): materialising a year replaces that year's rows in its
tables, in one transaction, and leaves every other year's rows as they are; a run over
several years (``ipc run``, a backfill: one run, :meth:`dagster.BackfillPolicy.single_run`)
computes them together, as fast as one. The costing period decides which years hold
rows: a partition outside it is materialised empty. Each year records what it was
computed against (:mod:`costing.versions`); the reconciliation, over every row, and
the exports, of every year, refuse years computed against an older spine or prices.
"""

import json
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from assets.common import (
    CODE_VERSION,
    DATA_CLASS_TAGS,
    OWNERS,
    column_lineage,
    duckdb_table_metadata,
    json_metadata,
)
from costing.activity import cost_activity
from costing.cohorts import build_cohort_membership, parse_cohorts
from costing.concentration import TOP_PERCENT, cost_concentration
from costing.disclosure import DisclosureRule
from costing.period import Period, create_period_tables, fy_label, resolve_period
from costing.persons import build_person_costs
from costing.reconciliation import build_reconciliation, reconciliation_problems
from costing.reference_costs import build_cohort_reference_costs, build_funding_bands
from costing.statements import build_statements
from costing.versions import (
    Versions,
    describe_problems,
    period_keys,
    record_computed,
    record_inherited,
    reference_version,
    spine_version,
    year_problems,
)
from costing.years import transaction, year_filter
from delivery import tables
from delivery.charts import cost_concentration_png, markdown_image, mean_cost_by_setting_png
from pipelines.partitions import FINANCIAL_YEARS, FIRST_FINANCIAL_YEAR, partition_labels
from pipelines.resources import WAREHOUSE_POOL, IPCResource
from pipelines.settings import Settings
from schemas.sources import SETTINGS

#: The partitioned costing assets, in the order a year is computed.
YEAR_ASSETS = (
    "costing/activity",
    "costing/person_costs",
    "costing/cohort_membership",
    "costing/cohort_reference_costs",
    "costing/funding_bands",
    "costing/statements",
)


class StaleYearsError(RuntimeError):
    """A financial year was not computed against the current spine, prices and period."""


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


def _costing_asset(
    name: str, deps: list[list[str]], check_specs=None, *, partitioned: bool = True, **kwargs
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        with warnings.catch_warnings():
            # backfill_policy is marked beta in Dagster 1.13; it is what lets one run
            # (ipc run, a backfill) compute a range of years together.
            warnings.simplefilter("ignore", dg.BetaWarning)
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
                partitions_def=FINANCIAL_YEARS if partitioned else None,
                backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
                **kwargs,
            )(fn)

    return decorate


def run_years(context: dg.AssetExecutionContext) -> tuple[list[str], list[str] | None]:
    """The run's financial years (``2024/25``...), and what the costing functions are
    given: None when the run covers every partition (tables are rebuilt whole, as
    before partitions), else those years."""
    keys = list(context.partition_keys)
    labels = partition_labels(keys)
    return labels, None if keys == FINANCIAL_YEARS.get_partition_keys() else labels


def current_period(con: duckdb.DuckDBPyConnection, settings: Settings) -> Period:
    """The costing period for the settings, checked to lie within the partitions."""
    period = resolve_period(
        con, configured_start=settings.period_start, configured_end=settings.period_end
    )
    years = period.financial_years()
    last = FINANCIAL_YEARS.get_last_partition_key()
    last_year = int(last[:4]) if last else FIRST_FINANCIAL_YEAR
    if years[0] < FIRST_FINANCIAL_YEAR or years[-1] > last_year:
        raise ValueError(
            f"the costing period ({period.start} to {period.end}) runs outside the "
            f"financial-year partitions ({fy_label(FIRST_FINANCIAL_YEAR)} to "
            f"{fy_label(last_year)}, the year in progress); set IPC_PERIOD_START / "
            "IPC_PERIOD_END inside them (an activity dated in the future sets the default end)"
        )
    return period


def current_versions(con: duckdb.DuckDBPyConnection) -> Versions:
    """The spine, reference tables and code every year must be computed against."""
    return Versions(spine=spine_version(con), reference=reference_version(con), code=CODE_VERSION)


def stale_years(
    con: duckdb.DuckDBPyConnection, settings: Settings, assets: Sequence[str] = YEAR_ASSETS
) -> tuple[dict[str, str], dict[str, Any]]:
    """Years of ``assets`` that may not be used, and why; and every year's record, for
    metadata (versions only: digests and dates, never a row value)."""
    period = current_period(con, settings)
    versions = current_versions(con)
    problems = year_problems(
        con, assets=assets, keys=period_keys(period), versions=versions, period=period
    )
    years = {
        str(year): {"spine_version": spine, "reference_version": ref, "period": key}
        for year, spine, ref, key in con.execute(
            "SELECT financial_year, any_value(spine_version), any_value(reference_version), "
            "any_value(period_key) FROM costing.year_versions "
            "WHERE asset = 'costing/activity' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    }
    summary = {
        "current": {"spine_version": versions.spine, "reference_version": versions.reference},
        "years": {y: years.get(y, {}) | {"status": problems.get(y, "current")} for y in years}
        | {y: {"status": why} for y, why in problems.items() if y not in years},
    }
    return problems, summary


def check_years_for_export(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, Any]:
    """Refuse an export built from any year computed against an older spine, older
    prices or another period, naming them; else the years' versions, for metadata."""
    problems, summary = stale_years(con, settings)
    if problems:
        raise StaleYearsError(
            "the export is built from every financial year of the costing period, and these "
            f"were not computed against the current spine, prices and period: "
            f"{describe_problems(problems)}. Materialise those years' costing partitions "
            "(a backfill) or run `ipc run`; nothing was published"
        )
    return summary


def _year_metadata(
    con: duckdb.DuckDBPyConnection, table: str, labels: list[str], years: list[str] | None
) -> dict[str, Any]:
    """Rows of the run's years and the table's columns, for the partitions' metadata."""
    where = year_filter("financial_year", years)
    return duckdb_table_metadata(con, table, where) | {"financial_years": labels}


_activity_key = dg.AssetKey(["costing", "activity"])
_PERSON_COSTS = ["costing", "person_costs"]
_MEMBERSHIP = ["costing", "cohort_membership"]
_REFERENCE_COSTS = ["costing", "cohort_reference_costs"]


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
    A year outside the costing period is materialised empty.
    """
    settings = ipc.settings()
    labels, years = run_years(context)
    with ipc.warehouse_connection() as con:
        period = current_period(con, settings)
        keys = period_keys(period)
        versions = current_versions(con)
        with transaction(con):
            create_period_tables(con, period)
            cost_activity(con, years)
            record_computed(con, "costing/activity", labels, keys, versions, context.run.run_id)
        in_years = year_filter("financial_year", years)
        by_setting = dict(
            con.execute(
                "SELECT setting, round(sum(cost), 2) FROM costing.activity "
                f"WHERE {in_years} GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        negative = con.execute(
            f"SELECT count(*) FROM costing.activity WHERE {in_years} AND (cost < 0 OR net_cost < 0)"
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
            metadata=_year_metadata(con, "costing.activity", labels, years)
            | {
                "period_start": str(period.start),
                "period_end": str(period.end),
                "outside_period": [y for y in labels if y not in keys],
                "spine_version": versions.spine,
                "reference_version": versions.reference,
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
    labels, years = run_years(context)
    with ipc.warehouse_connection() as con:
        with transaction(con):
            build_person_costs(con, years)
            record_inherited(
                con, "costing/person_costs", ["costing/activity"], labels, context.run.run_id
            )
        concentration = cost_concentration(con, DisclosureRule.from_settings(_settings(con)), years)
        totals = con.execute(
            "SELECT financial_year, count(*), round(sum(cost_total), 2) "
            f"FROM costing.person_years WHERE {year_filter('financial_year', years)} "
            "GROUP BY 1 ORDER BY 1"
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
            metadata=_year_metadata(con, "costing.person_years", labels, years)
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
    labels, years = run_years(context)
    with ipc.warehouse_connection() as con:
        cohorts = parse_cohorts(_cohorts_yaml(con))
        with transaction(con):
            build_cohort_membership(con, cohorts, years)
            record_inherited(
                con,
                "costing/cohort_membership",
                ["costing/person_costs"],
                labels,
                context.run.run_id,
            )
        counts = con.execute(
            "SELECT cohort, financial_year, count(*) FROM costing.cohort_membership "
            f"WHERE {year_filter('financial_year', years)} GROUP BY ALL ORDER BY 2, 1"
        ).fetchall()
        return dg.MaterializeResult(
            metadata=_year_metadata(con, "costing.cohort_membership", labels, years)
            | {
                "cohorts": [c.name for c in cohorts],
                "membership_rows": len(counts),
                "dagster/column_lineage": column_lineage(
                    {
                        "person_id": [(_PERSON_COSTS, "person_id")],
                        "cohort": [(_PERSON_COSTS, "age_band"), (_PERSON_COSTS, "cost_total")],
                    }
                ),
            }
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
    labels, years = run_years(context)
    with ipc.warehouse_connection() as con:
        with transaction(con):
            build_cohort_reference_costs(con, years)
            record_inherited(
                con,
                "costing/cohort_reference_costs",
                ["costing/cohort_membership"],
                labels,
                context.run.run_id,
            )
        published = tables.cohort_reference_costs(con, DisclosureRule.from_settings(_settings(con)))
        if years is not None:
            published = published.filter(pl.col("financial_year").is_in(years))
        metadata = _year_metadata(con, "costing.cohort_reference_costs", labels, years)
        metadata["dagster/column_lineage"] = column_lineage(
            {
                "people": [(_MEMBERSHIP, "person_id")],
                **{
                    f"{figure}cost": [(_PERSON_COSTS, "cost_total")]
                    for figure in ("mean_", "median_", "p25_", "p75_", "p90_")
                },
                **{f"mean_cost_{s}": [(_PERSON_COSTS, f"cost_{s}")] for s in SETTINGS},
            }
        )
        if published.height:  # a run of years outside the period has nothing to draw
            metadata["mean_cost_by_setting"] = _picture(
                mean_cost_by_setting_png(published),
                "Mean cost per person by setting, per cohort (published figures)",
            )
        return dg.MaterializeResult(metadata=metadata)


@_costing_asset("funding_bands", deps=[["costing", "cohort_membership"], ["reference", "settings"]])
def funding_bands(context: dg.AssetExecutionContext, ipc: IPCResource) -> dg.MaterializeResult:
    """Five funding bands per cohort and year from people's cashable costs (quintiles)."""
    labels, years = run_years(context)
    with ipc.warehouse_connection() as con:
        with transaction(con):
            build_funding_bands(con, _settings(con)["cashable_settings"], years)
            record_inherited(
                con,
                "costing/funding_bands",
                ["costing/cohort_membership"],
                labels,
                context.run.run_id,
            )
        cashable = [(_PERSON_COSTS, f"cost_{s}") for s in _settings(con)["cashable_settings"]]
        return dg.MaterializeResult(
            metadata=_year_metadata(con, "costing.funding_bands", labels, years)
            | {
                "dagster/column_lineage": column_lineage(
                    {
                        "people": [(_MEMBERSHIP, "person_id")],
                        "lower": cashable,
                        "upper": cashable,
                        "mean_cashable_cost": cashable,
                    }
                )
            }
        )


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
    labels, years = run_years(context)
    with ipc.warehouse_connection() as con:
        settings = _settings(con)
        with transaction(con):
            build_statements(
                con, DisclosureRule.from_settings(settings), settings["cashable_settings"], years
            )
            record_inherited(
                con,
                "costing/statements",
                ["costing/funding_bands", "costing/cohort_reference_costs"],
                labels,
                context.run.run_id,
            )
        return dg.MaterializeResult(
            metadata=_year_metadata(con, "costing.statements", labels, years)
            | {
                "dagster/column_lineage": column_lineage(
                    {
                        "person_id": [(_MEMBERSHIP, "person_id")],
                        **{
                            f"profile_mean_cost_{s}": [(_REFERENCE_COSTS, f"mean_cost_{s}")]
                            for s in SETTINGS
                        },
                        **{f"own_cost_{s}": [(_PERSON_COSTS, f"cost_{s}")] for s in SETTINGS},
                        "budget_amount": [(["costing", "funding_bands"], "mean_cashable_cost")],
                    }
                )
            }
        )


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
                "row costs add up to the source total; person costs add up to activity; "
                "every financial year was costed against the current spine, prices and "
                "period."
            ),
        )
    ],
    partitioned=False,
)
def reconciliation(context: dg.AssetExecutionContext, ipc: IPCResource):
    """Rows in and out of every stage, per landing source, with gross and net cost, over
    every financial year (not partitioned: it adds up every year's rows)."""
    settings = ipc.settings()
    with ipc.warehouse_connection() as con:
        stale, years = stale_years(con, settings, YEAR_ASSETS[:2])
        build_reconciliation(con)
        problems = reconciliation_problems(con)
        if stale:
            problems.insert(
                0,
                "financial years not costed against the current spine, prices and period "
                f"(materialise them, or run `ipc run`): {describe_problems(stale)}",
            )
        rows = con.sql("SELECT * FROM costing.reconciliation").pl()
        yield dg.MaterializeResult(
            metadata=duckdb_table_metadata(con, "costing.reconciliation")
            | {"by_source": json_metadata(rows.to_dicts()), "financial_years": json_metadata(years)}
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
