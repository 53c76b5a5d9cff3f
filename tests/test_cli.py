"""The `ipc` command, as a user types it."""

import io
import json
import shutil
import stat
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from tests.conftest import WORKED_EXAMPLE


def test_keygen_writes_an_owner_only_key_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "site.key"
    assert main(["keygen", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    hex_digits = "".join(line for line in path.read_text().split() if not line.startswith("#"))
    assert len(hex_digits) == 64 and int(hex_digits, 16) >= 0
    before = path.read_text()
    assert main(["keygen", str(path)]) == 1
    assert path.read_text() == before


def test_validate_reports_rows_and_reasons_without_values(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IPC_LANDING_DIR", str(WORKED_EXAMPLE / "landing"))
    monkeypatch.setenv("IPC_REFERENCE_DIR", str(WORKED_EXAMPLE / "reference"))
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "acute.csv row 451: end_before_start" in out
    assert "social_care.csv row 54: negative:client_contribution_weekly" in out
    acute = pl.read_csv(WORKED_EXAMPLE / "landing" / "acute.csv", infer_schema=False)
    row = acute.row(450, named=True)
    for column in ("nhs_number", "local_patient_id", "date_of_birth", "postcode"):
        assert row[column] not in out


def test_validate_names_the_file_and_missing_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(WORKED_EXAMPLE / "landing", landing)
    pl.read_csv(landing / "chc.csv", infer_schema=False).drop("weekly_cost").write_csv(
        landing / "chc.csv"
    )
    monkeypatch.setenv("IPC_LANDING_DIR", str(landing))
    monkeypatch.setenv("IPC_REFERENCE_DIR", str(WORKED_EXAMPLE / "reference"))
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "chc.csv" in out and "weekly_cost" in out


def test_validate_says_when_the_run_would_stop_for_a_year_without_prices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An extract cut a few days into April: by default the period runs to its latest
    date, in a year unit_costs.csv has no prices for. Validate says so, as the run would."""
    landing = tmp_path / "landing"
    shutil.copytree(WORKED_EXAMPLE / "landing", landing)
    events = pl.read_csv(landing / "primary_care_events.csv", infer_schema=False)
    late = events.head(1).with_columns(
        pl.lit("GPEV9999999").alias("event_id"), pl.lit("2025-04-02").alias("event_date")
    )
    pl.concat([events, late]).write_csv(landing / "primary_care_events.csv")
    monkeypatch.setenv("IPC_LANDING_DIR", str(landing))
    monkeypatch.setenv("IPC_REFERENCE_DIR", str(WORKED_EXAMPLE / "reference"))
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "unit_costs.csv has no prices for 2025/26, but 1 activity row(s)" in out
    assert "2025-04-02, the latest activity date" in out
    # With the period ended where the prices end, the delivery can be run.
    monkeypatch.setenv("IPC_PERIOD_END", "2025-03-31")
    assert main(["validate"]) == 0


@pytest.fixture
def run_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    landing = tmp_path / "landing"
    shutil.copytree(WORKED_EXAMPLE / "landing", landing)
    key = tmp_path / "site.key"
    assert main(["keygen", str(key)]) == 0
    for name, value in {
        "IPC_LANDING_DIR": landing,
        "IPC_REFERENCE_DIR": WORKED_EXAMPLE / "reference",
        "IPC_WAREHOUSE": tmp_path / "warehouse" / "ipc.duckdb",
        "IPC_EXPORT_DIR": tmp_path / "exports",
        "IPC_RESTRICTED_DIR": tmp_path / "restricted",
        "IPC_KEY_FILE": key,
        "IPC_ENV": "production",
        "IPC_RECIPIENTS": "north,south",
        "DAGSTER_HOME": tmp_path / "dagster_home",
    }.items():
        monkeypatch.setenv(name, str(value))
    return tmp_path


def test_run_verify_and_statement(
    run_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert str(run_env / "exports") in out
    assert (run_env / "exports" / "linked" / "north" / "persons.parquet").is_file()
    assert (run_env / "dagster_home" / "dagster.yaml").is_file()

    assert main(["verify"]) == 0
    # A key holder looks up a person of the worked example by NHS number on stdin.
    nhs_number = "999 719 9855"
    monkeypatch.setattr("sys.stdin", io.StringIO(nhs_number + "\n"))
    page = run_env / "statement.html"
    assert main(["statement", "--year", "2024/25", "--output", str(page)]) == 0
    out = capsys.readouterr().out
    assert "Individual Statement of Resources - 2024/25" in out
    assert "older ltc" in out and "funding band 5" in out
    assert "<table>" in page.read_text()
    log = (run_env / "restricted" / "access_log.jsonl").read_text()
    entry = json.loads(log)
    assert entry["found"] is True and len(entry["person_id"]) == 32
    for written in (log, page.read_text(), out):
        assert nhs_number.replace(" ", "") not in written.replace(" ", "")

    bands = run_env / "exports" / "cohort_funding_bands.csv"
    bands.write_text(bands.read_text().replace("true", "false", 1))
    assert main(["verify"]) == 1
    assert "SHA-256 differs" in capsys.readouterr().err


def test_run_fails_loudly_on_bad_input(run_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run_env / "landing" / "social_care.csv").write_bytes(b"")
    assert main(["run"]) == 1
    err = capsys.readouterr().err
    assert "social_care.csv" in err and "FAILED" in err
    assert not (run_env / "exports").exists()


def test_a_different_key_is_refused_until_rekeyed(
    run_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key = run_env / "site.key"
    assert main(["run"]) == 0
    before = set(pl.read_parquet(run_env / "exports" / "person_costs.parquet")["person_id"])
    new_key = run_env / "new.key"
    assert main(["keygen", str(new_key)]) == 0
    capsys.readouterr()

    monkeypatch.setenv("IPC_KEY_FILE", str(new_key))
    assert main(["run"]) == 1
    assert "ipc rekey" in capsys.readouterr().err

    assert main(["rekey", "--from", str(old_key), "--to", str(new_key)]) == 0
    mapping_files = list((run_env / "restricted" / "rekey").glob("*.parquet"))
    assert len(mapping_files) == 1
    mapping = pl.read_parquet(mapping_files[0])
    after = set(pl.read_parquet(run_env / "exports" / "person_costs.parquet")["person_id"])
    assert set(mapping["old_person_id"]) >= before
    assert set(mapping["new_person_id"]) >= after
    assert not before & after
    manifest = json.loads((run_env / "exports" / "manifest.json").read_text())
    old_id, new_id = mapping_files[0].stem.split("-to-")
    assert (manifest["key_id"], manifest["rekeyed_from_key_id"]) == (new_id, old_id)
    assert main(["verify"]) == 0


def test_audit_scan_finds_each_kind_of_planted_identifier(
    run_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run"]) == 0
    assert main(["audit-scan"]) == 0
    capsys.readouterr()

    social = pl.read_csv(WORKED_EXAMPLE / "landing" / "social_care.csv", infer_schema=False)
    person = social.filter(pl.col("nhs_number").str.len_chars() == 10).row(0, named=True)
    nhs = person["nhs_number"]
    spaced = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"
    # An NHS number (with spaces) in a compute log.
    logs = run_env / "dagster_home" / "storage" / "planted"
    logs.mkdir(parents=True)
    (logs / "step.err").write_text(f"processing patient {spaced} failed\n")
    # A local patient id in the warehouse.
    import duckdb

    con = duckdb.connect(str(run_env / "warehouse" / "ipc.duckdb"))
    con.execute("CREATE TABLE main.planted AS SELECT ? AS note", [person["local_patient_id"]])
    con.close()
    # A full postcode, lower case without the space, in the quarantine.
    pl.DataFrame({"note": [person["postcode"].replace(" ", "").lower()]}).write_parquet(
        run_env / "restricted" / "quarantine" / "planted.parquet"
    )
    # A name in Dagster's event storage (SQLite, a JSON blob).
    import sqlite3

    db = sqlite3.connect(run_env / "dagster_home" / "planted_events.db")
    name = f"{person['given_name']} {person['family_name']}"
    db.execute("CREATE TABLE event_logs (event TEXT)")
    db.execute("INSERT INTO event_logs VALUES (?)", [json.dumps({"message": f"hello {name}"})])
    db.commit()
    db.close()
    # A date of birth in an export.
    (run_env / "exports" / "planted.csv").write_text(f"note\n{person['date_of_birth']}\n")

    assert main(["audit-scan"]) == 1
    err = capsys.readouterr().err
    for kind in ("nhs_number", "local_patient_id", "postcode", "full_name", "date_of_birth"):
        assert kind in err, kind
    for value in (nhs, spaced, person["local_patient_id"], person["date_of_birth"], name):
        assert value not in err
