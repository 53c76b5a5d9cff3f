"""Faults a real delivery brings, through real materialisations and the real CLI.

Each test is one entry of docs/fault-catalogue.md.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from delivery.manifest import verify_manifest
from pipelines.cli import run_failures
from pseudonymise.fingerprints import fingerprint_files
from pseudonymise.keys import Keyring, read_key_file
from tests.conftest import Delivery, worked_example_delivery


def _delivery(tmp_path: Path) -> Delivery:
    return worked_example_delivery(tmp_path, period_end="2025-03-31", recipients="site")


def _manifest_key(delivery: Delivery) -> bytes:
    secret, _ = read_key_file(delivery.key_file)
    return Keyring.from_secret(secret).purpose("manifest")


def _export_contents(export_dir: Path) -> dict[str, object]:
    """Every export file's content: Parquet as rows, text files as text."""
    contents: dict[str, object] = {}
    for path in sorted(export_dir.resolve().rglob("*")):
        name = path.relative_to(export_dir.resolve()).as_posix()
        if path.suffix == ".parquet":
            contents[name] = pl.read_parquet(path).to_dicts()
        elif path.suffix in (".csv", ".jsonl"):
            contents[name] = path.read_text()
    return contents


def test_a_redelivery_replaces_the_rows_it_repeats_and_counts_nothing_twice(
    tmp_path: Path,
) -> None:
    delivery = _delivery(tmp_path)
    acute = pl.read_csv(delivery.landing / "acute.csv", infer_schema=False)
    (delivery.landing / "acute.csv").unlink()
    folder = delivery.landing / "acute"
    folder.mkdir()
    acute.write_csv(folder / "2025-03.csv")
    # The re-delivery repeats the first 100 rows, with a corrected HRG on row 1.
    corrected = acute.head(100).with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("XX99Z"))
        .otherwise(pl.col("hrg_code"))
        .alias("hrg_code")
    )
    corrected.write_csv(folder / "2025-04.csv")
    assert delivery.materialize().success

    reconciliation = pl.read_parquet(delivery.export_dir / "reconciliation.parquet")
    row = reconciliation.filter(pl.col("source") == "acute").row(0, named=True)
    assert row["rows_read"] == 4140 + 100
    assert row["rows_replaced"] == 100
    assert row["rows_accepted"] == 4136  # as the single delivery: nothing doubled
    manifest = (delivery.export_dir / "manifest.json").read_text()
    assert '"rows_replaced": 100' in manifest


def test_two_runs_on_the_same_inputs_and_key_export_the_same_contents(tmp_path: Path) -> None:
    delivery = _delivery(tmp_path)
    assert delivery.materialize().success
    first = _export_contents(delivery.export_dir)
    assert delivery.materialize().success
    assert _export_contents(delivery.export_dir) == first


def test_a_missing_reference_table_stops_with_one_clear_line(tmp_path: Path) -> None:
    delivery = _delivery(tmp_path)
    (delivery.reference / "unit_costs.csv").unlink()
    result = delivery.materialize()
    assert not result.success
    assert any("unit_costs.csv" in f for f in run_failures(result.all_events))


def test_an_unwritable_export_location_fails_clearly_and_keeps_the_warehouse(
    tmp_path: Path,
) -> None:
    delivery = _delivery(tmp_path)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the export folder's parent should be")
    result = delivery.materialize(export_dir=str(blocked / "exports"))
    assert not result.success
    failures = " ".join(run_failures(result.all_events))
    assert "cannot write the export" in failures
    assert delivery.warehouse.is_file()


@pytest.mark.slow
def test_killing_the_run_while_it_writes_exports_leaves_the_previous_export(
    tmp_path: Path,
) -> None:
    delivery = _delivery(tmp_path)
    assert delivery.materialize().success
    published = delivery.export_dir.resolve()
    key = _manifest_key(delivery)
    assert verify_manifest(published, key) == []

    env = delivery.environment(tmp_path / "dagster_home")
    runs = delivery.export_dir.parent / f".{delivery.export_dir.name}-runs"
    before = {p.name for p in runs.iterdir()}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    staging = None
    while time.monotonic() < deadline and process.poll() is None:
        new = [p for p in runs.iterdir() if p.name not in before and not p.name.startswith(".")]
        if new and any(new[0].iterdir()):  # its first files are written: kill it now
            staging = new[0]
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    assert staging is not None, "the run never started writing its export"
    process.wait()

    assert delivery.export_dir.resolve() == published
    assert verify_manifest(published, key) == []
    assert pl.read_parquet(published / "person_costs.parquet").height > 0

    # The next `ipc run` on the same Dagster instance finds the killed run still
    # "started", holding the warehouse slot: it fails it, frees the slot and completes.
    rerun = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "was stopped part-way" in rerun.stderr
    assert delivery.export_dir.resolve() != published
    assert verify_manifest(delivery.export_dir.resolve(), key) == []


def test_a_large_year_is_split_into_parts_holding_the_same_rows_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _delivery(tmp_path / "whole")
    assert whole.materialize().success
    monkeypatch.setattr("delivery.export.ACTIVITY_ROWS_PER_FILE", 2000)
    split = _delivery(tmp_path / "split")
    assert split.materialize().success

    def year_rows(delivery: Delivery, names: list[str]) -> list[dict]:
        folder = delivery.export_dir / "linked" / "site" / "activity"
        return pl.concat(pl.read_parquet(folder / n) for n in names).drop("person_id").to_dicts()

    single = year_rows(whole, ["2024-25.parquet"])
    parts = sorted(
        (p.name for p in (split.export_dir / "linked" / "site" / "activity").glob("2024-25-*")),
        key=lambda n: int(n.removesuffix(".parquet").rsplit("-", 1)[1]),
    )
    assert len(parts) == -(-len(single) // 2000) > 1
    assert all(
        len(pl.read_parquet(split.export_dir / "linked/site/activity" / n)) <= 2000 for n in parts
    )
    assert year_rows(split, parts) == single


def _warehouse_state(delivery: Delivery) -> tuple[int, int, int]:
    """Rows the warehouse's acute view shows, its links, and links whose row is there."""
    con = duckdb.connect(str(delivery.warehouse), read_only=True)
    try:
        acute = con.execute("SELECT count(*) FROM pseudonymised.acute").fetchone()
        links = con.execute(
            "SELECT count(*), count(a.row_id) FROM linked.row_links l "
            "LEFT JOIN pseudonymised.acute a USING (row_id) WHERE l.source = 'acute'"
        ).fetchone()
    finally:
        con.close()
    assert acute is not None and links is not None
    return int(acute[0]), int(links[0]), int(links[1])


def test_a_run_that_fails_part_way_leaves_the_warehouse_as_last_linked(tmp_path: Path) -> None:
    """One source's pseudonymisation succeeds, another's fails: the step's own files are
    replaced, but the warehouse keeps reading what it was linked from, so its views,
    links and costs still agree with each other and with the published export."""
    delivery = _delivery(tmp_path)
    assert delivery.materialize().success
    before = _warehouse_state(delivery)
    assert before[0] == before[1] == before[2] > 0
    acute_fingerprints = delivery.restricted / "fingerprints" / "acute.parquet"
    linked_fingerprints = acute_fingerprints.read_bytes()

    acute = delivery.landing / "acute.csv"
    pl.read_csv(acute, infer_schema=False).slice(50).write_csv(acute)
    chc = delivery.landing / "chc.csv"
    original_chc = chc.read_bytes()
    pl.read_csv(chc, infer_schema=False).drop("weekly_cost").write_csv(chc)
    result = delivery.materialize()

    assert not result.success
    assert "weekly_cost" in " ".join(run_failures(result.all_events))
    assert _warehouse_state(delivery) == before
    # The leak scans still know the identifiers of the data the warehouse holds: the
    # fingerprints pinned at the last link, beside the failed run's newer ones.
    [pinned] = [
        p
        for p in fingerprint_files(delivery.restricted)
        if p.name == "acute.parquet" and p != acute_fingerprints
    ]
    assert pinned.read_bytes() == linked_fingerprints != acute_fingerprints.read_bytes()

    chc.write_bytes(original_chc)
    assert delivery.materialize().success
    after = _warehouse_state(delivery)
    assert after[0] == after[1] == after[2] == before[0] - 50
    # One set of pinned inputs is kept: the one the warehouse reads.
    assert len(list((delivery.warehouse.parent / "pseudonymised").glob("linked-*"))) == 1
