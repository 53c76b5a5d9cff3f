"""What the pipeline writes holds no raw identifier; bad input leaves good outputs alone.

Runs real materialisations of the worked example (see conftest) and reads back every
DuckDB table, Parquet, CSV and JSONL file the run wrote.
"""

import json
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.cli import run_failures
from tests.conftest import Delivery, worked_example_delivery

IDENTIFIER_COLUMNS = (
    "nhs_number",
    "local_patient_id",
    "date_of_birth",
    "postcode",
    "given_name",
    "family_name",
)


def _raw_identifier_values(landing: Path) -> set[str]:
    """Every raw identifier in the landing files, as given and normalised."""
    values: set[str] = set()
    for path in landing.glob("*.csv"):
        frame = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True)
        for column in IDENTIFIER_COLUMNS:
            if column not in frame.columns:
                continue
            for value in frame[column].drop_nulls().unique().to_list():
                value = value.strip()
                if len(value) < 3:
                    continue
                values.add(value.upper())
                values.add(re.sub(r"[\s-]", "", value).upper())
    return values


def _cells(frame: pl.DataFrame) -> set[str]:
    cells: set[str] = set()
    for column, dtype in frame.schema.items():
        series = frame[column]
        if dtype == pl.List(pl.String):
            series = series.explode()
        elif dtype != pl.String:
            continue
        cells |= {v.strip().upper() for v in series.drop_nulls().unique().to_list()}
    return cells


def _written_files(delivery: Delivery) -> list[Path]:
    roots = [delivery.export_dir.resolve(), delivery.restricted, delivery.warehouse.parent]
    return [
        p
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".parquet", ".csv", ".jsonl", ".json")
    ]


def _frame(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    if path.suffix == ".jsonl":
        return pl.DataFrame(
            {"line": [json.dumps(json.loads(x)) for x in path.read_text().splitlines()]}
        )
    return pl.DataFrame({"text": [path.read_text()]})


def test_no_raw_identifier_in_any_file_or_warehouse_table(worked_example: Delivery) -> None:
    raw = _raw_identifier_values(worked_example.landing)
    assert len(raw) > 1000
    for path in _written_files(worked_example):
        frame = _frame(path)
        leaked = _cells(frame) & raw
        assert not leaked, f"{path.name} holds {len(leaked)} raw identifier value(s)"
        if path.suffix in (".jsonl", ".json"):
            text = path.read_text().upper()
            nhs_like = re.findall(r"(?<![0-9A-F])\d{10}(?![0-9A-F])", text)
            assert not set(nhs_like) & raw, f"{path.name} holds an NHS number"
    con = duckdb.connect(str(worked_example.warehouse), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
        ).fetchall()
        for schema, table in tables:
            frame = con.sql(f'SELECT * FROM "{schema}"."{table}"').pl()
            assert not set(frame.columns) & set(IDENTIFIER_COLUMNS), f"{schema}.{table}"
            leaked = _cells(frame) & raw
            assert not leaked, f"{schema}.{table} holds {len(leaked)} raw identifier value(s)"
    finally:
        con.close()


def test_two_recipients_share_no_person_id(worked_example: Delivery) -> None:
    linked = worked_example.export_dir / "linked"
    ids = {
        recipient: set(pl.read_parquet(linked / recipient / "persons.parquet")["person_id"])
        for recipient in ("site_a", "site_b")
    }
    internal = set(pl.read_parquet(worked_example.export_dir / "person_costs.parquet")["person_id"])
    assert len(ids["site_a"]) == len(ids["site_b"]) == len(internal)
    assert not ids["site_a"] & ids["site_b"]
    assert not (ids["site_a"] | ids["site_b"]) & internal


def test_exports_carry_month_not_date_and_age_band_not_birth(worked_example: Delivery) -> None:
    activity = pl.read_parquet(worked_example.export_dir / "linked" / "site_a" / "activity")
    assert activity["activity_month"].str.contains(r"^\d{4}-\d{2}$").all()
    persons = pl.read_parquet(worked_example.export_dir / "linked" / "site_a" / "persons.parquet")
    assert set(persons.columns) >= {"age_band", "sex", "postcode_district", "cohorts"}
    assert persons["postcode_district"].drop_nulls().str.contains(r"^[A-Z]{1,2}\d").all()


def test_bad_input_fails_clearly_and_leaves_the_previous_export(tmp_path: Path) -> None:
    delivery = worked_example_delivery(tmp_path, recipients="x")
    assert delivery.materialize().success
    manifest = (delivery.export_dir / "manifest.json").read_text()

    acute = delivery.landing / "acute.csv"
    frame = pl.read_csv(acute, infer_schema=False).drop("pod")
    frame.write_csv(acute)
    result = delivery.materialize()

    assert not result.success
    message = " ".join(run_failures(result.all_events))
    assert "acute.csv" in message and "pod" in message
    assert (delivery.export_dir / "manifest.json").read_text() == manifest


def test_numbers_equal_to_plain_integer_local_ids_are_reported_not_blocking(
    tmp_path: Path,
) -> None:
    """A site whose social care client ids are plain integers has a client 2024, and
    every export says 2024/25: the scan reports it for judgement, and publishes."""
    delivery = worked_example_delivery(tmp_path, recipients="x")
    social = delivery.landing / "social_care.csv"
    frame = pl.read_csv(social, infer_schema=False)
    ids = frame["local_patient_id"].unique(maintain_order=True).to_list()
    plain = {old: str(2024 + i) for i, old in enumerate(ids)}
    frame.with_columns(pl.col("local_patient_id").replace_strict(plain)).write_csv(social)

    result = delivery.materialize()

    assert result.success, run_failures(result.all_events)
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_identifiers"]
    assert check.passed
    reported = " ".join(check.metadata["possible_coincidences"].value)
    assert "local_patient_id_digits" in reported and "financial_year" in reported


def test_ten_digit_activity_ids_are_not_taken_for_nhs_numbers(tmp_path: Path) -> None:
    """Activity ids pass through as the site sends them; a ten-digit spell number is
    not an NHS number, so the pseudonymised table's shape check does not judge them."""
    delivery = worked_example_delivery(tmp_path, recipients="x")
    acute = delivery.landing / "acute.csv"
    frame = pl.read_csv(acute, infer_schema=False)
    numbered = pl.int_range(1_000_000_001, 1_000_000_001 + frame.height, eager=True)
    frame.with_columns(numbered.cast(pl.String).alias("activity_id")).write_csv(acute)

    result = delivery.materialize()

    assert result.success, run_failures(result.all_events)


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "does not exist"),
        ("demo", "demo"),
        ("short", "32"),
    ],
)
def test_production_refuses_a_missing_demo_or_short_key(
    tmp_path: Path, setup: str, expected: str
) -> None:
    delivery = worked_example_delivery(tmp_path)
    key_file = delivery.key_file
    if setup == "missing":
        key_file.unlink()
    elif setup == "demo":
        key_file.write_text("# DEMO KEY - not for real data\n" + "ab" * 32 + "\n")
    else:
        key_file.write_text("ab" * 16 + "\n")
    key_file.parent.chmod(0o700)
    if key_file.exists():
        key_file.chmod(0o600)
    result = delivery.materialize()
    assert not result.success
    messages = " ".join(run_failures(result.all_events))
    assert expected.lower() in messages.lower()
    secret_text = key_file.read_text() if key_file.exists() else ""
    for line in secret_text.splitlines():
        if line and not line.startswith("#"):
            assert line.strip() not in messages
    assert not delivery.export_dir.exists()


def test_rerun_replaces_the_export_atomically(tmp_path: Path) -> None:
    delivery = worked_example_delivery(tmp_path, recipients="x")
    assert delivery.materialize().success
    first = delivery.export_dir.resolve()
    assert delivery.materialize().success
    second = delivery.export_dir.resolve()
    assert first != second and delivery.export_dir.is_symlink()
    assert (second / "manifest.json").is_file()
