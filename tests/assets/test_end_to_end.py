"""End to end on data the test generates: every asset and check, real DuckDB and Parquet."""

import subprocess
import sys
from pathlib import Path

import polars as pl

from tests.assets.test_privacy_and_safety import _cells, _raw_identifier_values
from tests.conftest import make_delivery

ROOT = Path(__file__).resolve().parents[2]


def test_generated_site_reconciles_and_no_export_holds_an_identifier(tmp_path: Path) -> None:
    generated = tmp_path / "generated"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "data" / "sample" / "generate.py"),
            "--people",
            "600",
            "--seed",
            "7",
            "--out",
            str(generated / "landing"),
            "--reference-out",
            str(generated / "reference"),
        ],
        check=True,
        capture_output=True,
    )
    delivery = make_delivery(
        tmp_path / "run", generated / "landing", generated / "reference", recipients="a,b"
    )
    result = delivery.materialize()
    assert result.success
    checks = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert len(checks) >= 20 and all(c.passed for c in checks)

    reconciliation = pl.read_parquet(delivery.export_dir / "reconciliation.parquet")
    for row in reconciliation.iter_rows(named=True):
        assert row["rows_read"] == row["rows_accepted"] + row["rows_quarantined"]
        assert row["rows_accepted"] == (
            row["rows_linked_nhs_number"] + row["rows_linked_other"] + row["rows_unlinked"]
        )
    person_costs = pl.read_parquet(delivery.export_dir / "person_costs.parquet")
    assert abs(person_costs["cost_total"].sum() - reconciliation["cost_total"].sum()) < 0.01

    raw = _raw_identifier_values(delivery.landing)
    export_root = delivery.export_dir.resolve()
    for path in export_root.rglob("*"):
        if path.suffix == ".parquet":
            leaked = _cells(pl.read_parquet(path)) & raw
        elif path.suffix == ".csv":
            leaked = _cells(pl.read_csv(path, infer_schema=False)) & raw
        else:
            continue
        assert not leaked, f"{path.name} holds {len(leaked)} raw identifier value(s)"
