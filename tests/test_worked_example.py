"""Conformance: the worked example delivery, matched row by row.

`tests/data/worked_example/expected/` was computed by an implementation written only
from the contract. The product's ids are pseudonyms, so every expected `person_key`
(`nhs:<NHS number>` or `src:<source>:<local id>`) is mapped through the test's key:
the internal person id is by design the linkage-key HMAC of exactly that text.
"""

import json

import duckdb
import polars as pl
import pytest

from pseudonymise.hashing import pseudonymise_series, text_key
from pseudonymise.keys import Keyring, read_key_file
from tests.conftest import WORKED_EXAMPLE, Delivery

EXPECTED = WORKED_EXAMPLE / "expected"
PENNY = 0.005


def _keyring(delivery: Delivery) -> Keyring:
    secret, _ = read_key_file(delivery.key_file)
    return Keyring.from_secret(secret)


def _with_person_id(delivery: Delivery, frame: pl.DataFrame) -> pl.DataFrame:
    key = text_key(_keyring(delivery).linkage)
    return frame.with_columns(pseudonymise_series(key, frame["person_key"]).alias("person_id"))


def _warehouse(delivery: Delivery, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(delivery.warehouse), read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def _assert_same(
    expected: pl.DataFrame,
    actual: pl.DataFrame,
    on: list[str],
    columns: list[str],
) -> None:
    """Every expected row has one actual row with equal figures (to the penny)."""
    assert expected.height == actual.height, f"{expected.height} rows expected"
    joined = expected.join(actual, on=on, how="full", suffix="_actual", coalesce=True)
    for column in columns:
        a, b = pl.col(column), pl.col(f"{column}_actual")
        if expected.schema[column] in (pl.Float64, pl.Int64) or actual.schema[column] in (
            pl.Float64,
        ):
            a, b = a.cast(pl.Float64), b.cast(pl.Float64)
            differs = ((a - b).abs() > PENNY) | (a.is_null() != b.is_null())
        else:
            differs = (
                a.cast(pl.String).fill_null("").str.to_lowercase()
                != b.cast(pl.String).fill_null("").str.to_lowercase()
            )
        bad = joined.filter(differs)
        assert bad.height == 0, (
            f"{column}: {bad.height} rows differ, e.g.\n"
            f"{bad.select([*on, column, f'{column}_actual']).head(5)}"
        )


def test_quarantine_reasons_and_linkage_stage_of_every_row(worked_example: Delivery) -> None:
    expected = _with_person_id(
        worked_example,
        pl.read_csv(EXPECTED / "row_outcomes.csv", infer_schema=False).with_columns(
            pl.col("row_number").cast(pl.Int64)
        ),
    )
    quarantine = pl.read_parquet(worked_example.restricted / "quarantine" / "*.parquet")
    links = _warehouse(
        worked_example,
        "SELECT source, file, row_number, stage::VARCHAR AS stage, person_id FROM linked.row_links",
    )
    actual = pl.concat(
        [
            quarantine.select(
                "source", "file", "row_number", pl.col("reasons").alias("quarantine_reason")
            ),
            links.with_columns(pl.lit(None, pl.String).alias("quarantine_reason")),
        ],
        how="diagonal",
    )
    expected = expected.with_columns(
        pl.when(pl.col("stage").is_null()).then(None).otherwise(pl.col("person_id"))
    )
    _assert_same(
        expected,
        actual,
        on=["source", "file", "row_number"],
        columns=["quarantine_reason", "stage", "person_id"],
    )


def test_cost_of_every_activity_and_year(worked_example: Delivery) -> None:
    expected = _with_person_id(
        worked_example,
        pl.read_csv(EXPECTED / "activity_costs.csv", infer_schema_length=None),
    ).rename({"source_extract": "source", "source_row": "row_number"})
    actual = _warehouse(
        worked_example,
        "SELECT source, row_number, record_id, person_id, setting, service, "
        "financial_year, activity_month, cost, net_cost, cost_basis, units, cpa "
        "FROM costing.activity",
    )
    _assert_same(
        expected,
        actual,
        on=["source", "row_number", "financial_year"],
        columns=[
            "record_id",
            "person_id",
            "setting",
            "service",
            "activity_month",
            "cost",
            "net_cost",
            "cost_basis",
            "units",
            "cpa",
        ],
    )


def test_person_costs_and_cohorts(worked_example: Delivery) -> None:
    expected = _with_person_id(
        worked_example, pl.read_csv(EXPECTED / "person_costs.csv", infer_schema_length=None)
    )
    exported = pl.read_parquet(worked_example.export_dir / "person_costs.parquet")
    actual = exported.with_columns(pl.col("cohorts").list.join(";"))
    spine = _warehouse(
        worked_example,
        "SELECT person_id, financial_year, postcode_district FROM costing.person_years",
    )
    actual = actual.join(spine, on=["person_id", "financial_year"])
    settings = ["acute", "chc", "community", "mental_health", "primary_care", "social_care"]
    _assert_same(
        expected,
        actual,
        on=["person_id", "financial_year"],
        columns=[
            "age_band",
            "sex",
            "postcode_district",
            *(f"cost_{s}" for s in settings),
            "cost_total",
            "cohorts",
            "primary_cohort",
        ],
    )


def test_reconciliation(worked_example: Delivery) -> None:
    expected = pl.read_csv(EXPECTED / "reconciliation.csv")
    actual = pl.read_parquet(worked_example.export_dir / "reconciliation.parquet")
    _assert_same(
        expected,
        actual,
        on=["source"],
        columns=[c for c in expected.columns if c != "source"],
    )


@pytest.mark.parametrize(
    ("table", "expected_file", "on"),
    [
        ("cohort_reference_costs", "cohort_reference_costs.csv", ["cohort", "financial_year"]),
        (
            "cohort_funding_bands",
            "cohort_funding_bands.csv",
            ["cohort", "financial_year", "band"],
        ),
    ],
)
def test_published_aggregates_after_disclosure_control(
    worked_example: Delivery, table: str, expected_file: str, on: list[str]
) -> None:
    expected = pl.read_csv(EXPECTED / expected_file)
    for actual in (
        pl.read_parquet(worked_example.export_dir / f"{table}.parquet"),
        pl.read_csv(worked_example.export_dir / f"{table}.csv"),
    ):
        _assert_same(expected, actual, on=on, columns=[c for c in expected.columns if c not in on])


@pytest.mark.parametrize(
    ("table", "expected_file", "on"),
    [
        (
            "cohort_reference_costs",
            "cohort_reference_costs_unsuppressed.csv",
            ["cohort", "financial_year"],
        ),
        (
            "funding_bands",
            "cohort_funding_bands_unsuppressed.csv",
            ["cohort", "financial_year", "band"],
        ),
    ],
)
def test_unsuppressed_aggregates_inside_the_warehouse(
    worked_example: Delivery, table: str, expected_file: str, on: list[str]
) -> None:
    expected = pl.read_csv(EXPECTED / expected_file)
    actual = _warehouse(worked_example, f"SELECT * FROM costing.{table}")
    _assert_same(expected, actual, on=on, columns=[c for c in expected.columns if c not in on])


def test_individual_statements(worked_example: Delivery) -> None:
    expected = _with_person_id(
        worked_example, pl.read_csv(EXPECTED / "statements.csv", infer_schema_length=None)
    )
    rows = []
    for path in sorted((worked_example.export_dir / "individual_statements").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            s = json.loads(line)
            budget = s["indicative_budget"]
            rows.append(
                {
                    "person_id": s["person_id"],
                    "financial_year": s["financial_year"],
                    "primary_cohort": s["primary_cohort"],
                    "age_band": s["age_band"],
                    "profile_people": s["profile"]["people"],
                    "fallback_to_cohort": str(s["profile"]["fallback_to_cohort"]).lower(),
                    **{f"profile_mean_cost_{k}": v for k, v in s["profile_mean_cost"].items()},
                    **{f"own_cost_{k}": v for k, v in s["own_cost"].items()},
                    "budget_amount": budget["amount"],
                    "budget_band": budget["band"],
                    "budget_band_lower": budget["band_lower"],
                    "budget_band_upper": budget["band_upper"],
                    "budget_basis": budget["basis"],
                }
            )
    actual = pl.DataFrame(rows, infer_schema_length=None)
    _assert_same(
        expected,
        actual,
        on=["person_id", "financial_year"],
        columns=[
            c for c in expected.columns if c not in ("person_key", "person_id", "financial_year")
        ],
    )
