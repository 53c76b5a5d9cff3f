"""Financial-year partitions: one year at a time, backfills, and stale years refused.

Real materialisations of the worked example (two financial years, 2023/24 and
2024/25) on real DuckDB files and Parquet, with the run's partitions given as Dagster
gives them: a single key, or a key range in one run (the single-run backfill policy).
"""

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.costing import YEAR_ASSETS
from pipelines.cli import run_failures
from pipelines.partitions import RANGE_END_TAG, RANGE_START_TAG
from tests.conftest import Delivery, worked_example_delivery

Y1, Y2 = "2023/24", "2024/25"
KEY1, KEY2 = "2023-04-01", "2024-04-01"

#: Every costing table that holds rows per financial year.
YEAR_TABLES = (
    "activity",
    "person_years",
    "person_year_features",
    "cohort_membership",
    "cohort_reference_costs",
    "band_membership",
    "funding_bands",
    "statements",
)

UPSTREAM = dg.AssetSelection.groups("pseudonymised", "reference", "linked")
YEARS = dg.AssetSelection.assets(*[dg.AssetKey(a.split("/")) for a in YEAR_ASSETS])
RECONCILIATION = dg.AssetSelection.assets(["costing", "reconciliation"])
EXPORTS = dg.AssetSelection.groups("exports")


def _one(key: str) -> dict[str, str]:
    return {"dagster/partition": key}


def _range(first: str, last: str) -> dict[str, str]:
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


def _delivery(root: Path, key_file: Path | None = None) -> Delivery:
    delivery = worked_example_delivery(root, period_end="2025-03-31", recipients="site")
    if key_file is not None:  # the same key: the same pseudonyms, comparable exports
        shutil.copyfile(key_file, delivery.key_file)
    return delivery


def _sql(delivery: Delivery, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(delivery.warehouse))
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _year_fingerprints(delivery: Delivery, year: str) -> dict[str, tuple]:
    """Each year table's rows of ``year``: count and a digest of their content (a
    person's registers, a list in no particular order, sorted first)."""
    sources = {t: f"costing.{t}" for t in YEAR_TABLES} | {
        "person_year_features": "(SELECT * REPLACE (list_sort(registers) AS registers) "
        "FROM costing.person_year_features)"
    }
    return {
        table: _sql(
            delivery,
            "SELECT count(*), md5(coalesce(string_agg(t::VARCHAR, '|' ORDER BY t::VARCHAR), '')) "
            f"FROM {source} t WHERE financial_year = ?",
            [year],
        )[0]
        for table, source in sources.items()
    }


def _export_files(delivery: Delivery) -> dict[str, bytes]:
    """Every published file's bytes but the manifests (which name the run and time)."""
    root = delivery.export_dir.resolve()
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def _ok(result: dg.ExecuteInProcessResult) -> None:
    assert result.success, run_failures(result.all_events)


def _partitions(result: dg.ExecuteInProcessResult, asset: str) -> set[str | None]:
    return {
        e.partition
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(asset.split("/"))
    }


def test_materialising_one_year_leaves_the_other_years_rows_untouched(tmp_path: Path) -> None:
    delivery = _delivery(tmp_path)
    full = delivery.materialize()
    _ok(full)
    # The full run covers every partition; years outside the period are left empty.
    assert _sql(
        delivery, "SELECT DISTINCT financial_year FROM costing.year_versions ORDER BY 1"
    ) == [
        (Y1,),
        (Y2,),
    ]
    before = {year: _year_fingerprints(delivery, year) for year in (Y1, Y2)}
    published = _export_files(delivery)
    # A marker in one row of each year: a year recomputed loses it, a year left alone keeps it.
    marked = {
        year: _sql(
            delivery,
            "SELECT rowid, cost_basis FROM costing.activity WHERE financial_year = ? "
            "ORDER BY rowid LIMIT 1",
            [year],
        )[0]
        for year in (Y1, Y2)
    }
    for rowid, _ in marked.values():
        _sql(delivery, "UPDATE costing.activity SET cost_basis = 'marker' WHERE rowid = ?", [rowid])

    one_year = delivery.materialize(YEARS, _one(KEY2))
    _ok(one_year)
    assert _partitions(one_year, "costing/activity") == {KEY2}
    assert _sql(
        delivery, "SELECT rowid, financial_year FROM costing.activity WHERE cost_basis = 'marker'"
    ) == [(marked[Y1][0], Y1)]
    assert _year_fingerprints(delivery, Y2) == before[Y2]  # recomputed: the same figures
    _sql(
        delivery,
        "UPDATE costing.activity SET cost_basis = ? WHERE rowid = ?",
        [marked[Y1][1], marked[Y1][0]],
    )
    assert _year_fingerprints(delivery, Y1) == before[Y1]  # untouched
    # What each year was computed in: 2023/24 by the full run, 2024/25 by the one-year run.
    runs = dict(_sql(delivery, "SELECT DISTINCT financial_year, run_id FROM costing.year_versions"))
    assert runs == {Y1: full.run_id, Y2: one_year.run_id}

    # Both years are current: the export (gathering every year) publishes the same files.
    _ok(delivery.materialize(RECONCILIATION | EXPORTS, {}))
    assert _export_files(delivery) == published

    # A partition outside the costing period computes nothing, and takes nothing away.
    outside = delivery.materialize(YEARS, _one("2022-04-01"))
    _ok(outside)
    [activity] = [
        e.materialization.metadata
        for e in outside.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["costing", "activity"])
    ]
    assert activity["outside_period"].value == ["2022/23"]
    assert activity["dagster/row_count"].value == 0
    assert {year: _year_fingerprints(delivery, year) for year in (Y1, Y2)} == before


def test_a_backfill_publishes_the_export_of_a_full_run(tmp_path: Path) -> None:
    full = _delivery(tmp_path / "full")
    _ok(full.materialize())
    expected = _export_files(full)

    # Both years in one run (the single-run backfill policy), with everything upstream.
    together = _delivery(tmp_path / "together", full.key_file)
    run = together.materialize(partitions=_range(KEY1, KEY2))
    _ok(run)
    assert _partitions(run, "costing/statements") == {KEY1, KEY2}
    assert _export_files(together) == expected

    # One year at a time, the later year first, then the export.
    apart = _delivery(tmp_path / "apart", full.key_file)
    _ok(apart.materialize(UPSTREAM | YEARS, _one(KEY2)))
    _ok(apart.materialize(YEARS, _one(KEY1)))
    _ok(apart.materialize(RECONCILIATION | EXPORTS, {}))
    assert _export_files(apart) == expected


@pytest.mark.parametrize("change", ["prices", "spine"])
def test_an_export_refuses_years_computed_against_an_older_spine_or_prices(
    tmp_path: Path, change: str
) -> None:
    delivery = _delivery(tmp_path)
    _ok(delivery.materialize())
    published = _export_files(delivery)
    if change == "prices":
        unit_costs = delivery.reference / "unit_costs.csv"
        unit_costs.write_text(unit_costs.read_text().replace(",60.00,", ",61.00,", 1))
        refreshed = dg.AssetSelection.groups("reference") | YEARS
        reason = "older reference tables"
    else:
        events = delivery.landing / "primary_care_events.csv"
        lines = events.read_text().splitlines()
        events.write_text(
            "\n".join([*lines, lines[1].replace("GPEV0000001", "GPEV9999999")]) + "\n"
        )
        refreshed = UPSTREAM | YEARS
        reason = "older person spine"

    # Only the later year is recomputed against the new spine or prices.
    _ok(delivery.materialize(refreshed, _one(KEY2)))
    refused = delivery.materialize(EXPORTS, {})
    assert not refused.success
    [failure] = run_failures(refused.all_events)
    assert f"{Y1}: computed against " in failure and reason in failure
    assert Y2 + ":" not in failure
    assert _export_files(delivery) == published  # nothing was published

    # The reconciliation (over every year) says so too, in its check and its metadata.
    reconciled = delivery.materialize(RECONCILIATION, {})
    [check] = [
        e.event_specific_data
        for e in reconciled.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert not check.passed
    assert Y1 in check.metadata["problems"].value[0]
    [metadata] = [e.materialization.metadata for e in reconciled.get_asset_materialization_events()]
    years = metadata["financial_years"].value["years"]
    assert reason in years[Y1]["status"] and years[Y2]["status"] == "current"

    # Recomputing the stale year makes the export whole again.
    _ok(delivery.materialize(YEARS | RECONCILIATION | EXPORTS, _one(KEY1)))


def test_a_costing_period_outside_the_partitions_stops_with_a_clear_message(
    tmp_path: Path,
) -> None:
    delivery = _delivery(tmp_path)
    result = delivery.materialize(period_start="2014-04-01")
    assert not result.success
    [failure, *_] = run_failures(result.all_events)
    assert "runs outside the financial-year partitions (2015/16 to" in failure
