"""Leak audit: fingerprints of raw identifiers, found again wherever data rests.

Builds fingerprints from a small made-up raw frame, plants identifiers in every
kind of place the pipeline writes (Parquet, CSV and JSONL exports, a DuckDB table,
Dagster's SQLite event log, a compute log, the quarantine) and checks that the
audit finds each kind where it should, names the place but never the value, stays
quiet on a clean tree, and looks for dates of birth only in exports.
"""

import json
import sqlite3
from pathlib import Path

import duckdb
import polars as pl
import pytest

from delivery import audit as audit_module
from delivery.audit import (
    DIGITS_LOCAL_ID,
    EXPORT_KINDS,
    STORAGE_KINDS,
    Finding,
    Scanner,
    audit,
    candidate_tokens,
)
from pseudonymise.fingerprints import (
    KINDS,
    canonical_identifiers,
    fingerprint_key,
    identifier_fingerprints,
    read_fingerprints,
    write_fingerprints,
)
from pseudonymise.keys import Keyring

KEY = fingerprint_key(Keyring.from_secret(bytes(range(32))))

# Made-up people: NHS numbers in the 999 range (never issued), invented names.
RAW = pl.DataFrame(
    {
        "nhs_number": ["9991234567", "999-765-4321", "0000000000", "", None],
        "local_patient_id": ["RTRH5896078", " sc1441796 ", "X1", "UNKNOWN", "123456"],
        "date_of_birth": ["1950-02-28", "1987-11-03", "1950-02-30", "", None],
        "postcode": ["TS18 1AB", "ts7 6ap", "TS18", "ZZ99 3VZ", None],
        "given_name": ["Marcus", "Zoë", "Al", "Baby", None],
        "family_name": ["Thistlewood", "O'Brien-Quayle", "Li", "Unknown", None],
    }
)

# The first person, as the planted copies are written.
NHS_SPACED = "999 123 4567"
POSTCODE_LOWER = "ts181ab"
LOCAL_ID = "RTRH5896078"
FAMILY = "Thistlewood"
FULL_NAME = "Marcus Thistlewood"
DOB = "1950-02-28"
PLANTED = {
    "nhs_number": NHS_SPACED,
    "local_patient_id": LOCAL_ID,
    "postcode": POSTCODE_LOWER,
    "name": FAMILY,
    "full_name": FULL_NAME,
    "date_of_birth": DOB,
}
# Every way a planted value could show up in a finding's text.
RAW_FORMS = [
    *PLANTED.values(),
    "9991234567",
    "TS181AB",
    "TS18 1AB",
    "THISTLEWOOD",
    "MARCUSTHISTLEWOOD",
]
PSEUDONYM = "3f9a0c4e5b6d7e8f9a0b1c2d3e4f5a6b"


@pytest.fixture(scope="module")
def fingerprint_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fp") / "restricted" / "fingerprints" / "acute.parquet"
    write_fingerprints(identifier_fingerprints(RAW, KEY), path)
    return path


@pytest.fixture(scope="module")
def scanner(fingerprint_file: Path) -> Scanner:
    return Scanner(read_fingerprints([fingerprint_file]), KEY)


def _kinds_at(findings: list[Finding]) -> dict[str, set[str]]:
    """location -> kinds found there."""
    result: dict[str, set[str]] = {}
    for finding in findings:
        result.setdefault(finding.location, set()).add(finding.kind)
    return result


def _assert_no_values(findings: list[Finding]) -> None:
    for finding in findings:
        text = f"{finding.location} {finding.kind} {finding} {finding!r}".upper()
        for value in RAW_FORMS:
            assert value.upper() not in text, f"a finding shows a raw value: {finding}"


# --- Fingerprints ------------------------------------------------------------------


def test_canonical_forms_follow_the_rules() -> None:
    found = {(k, v) for k, v in canonical_identifiers(RAW).iter_rows()}
    assert found == {
        ("nhs_number", "9991234567"),
        ("nhs_number", "9997654321"),  # hyphens removed; 0000000000 identifies no one
        ("local_patient_id", "RTRH5896078"),
        ("local_patient_id", "SC1441796"),  # stripped, upper case; "X1" too short
        ("local_patient_id", "123456"),  # "UNKNOWN" has no digit: a placeholder
        ("postcode", "TS181AB"),
        ("postcode", "TS76AP"),  # "TS18" is only a district, ZZ99 a pseudo-postcode
        ("date_of_birth", "1950-02-28"),
        ("date_of_birth", "1987-11-03"),  # 1950-02-30 is not a date
        ("name", "MARCUS"),
        ("name", "THISTLEWOOD"),
        ("name", "ZOE"),
        ("name", "OBRIENQUAYLE"),  # "Al" and "Li" are too short alone
        ("full_name", "MARCUSTHISTLEWOOD"),
        ("full_name", "ZOEOBRIENQUAYLE"),
        ("full_name", "ALLI"),  # "Baby Unknown" names no one
    }


def test_fingerprints_are_keyed_kind_prefixed_and_hold_no_value(fingerprint_file: Path) -> None:
    frame = pl.read_parquet(fingerprint_file)
    assert frame.columns == ["kind", "fingerprint"]
    assert set(frame.get_column("kind")) <= set(KINDS)
    assert frame.get_column("fingerprint").str.contains("^[0-9a-f]{32}$").all()
    text = frame.write_csv().upper()
    assert not any(v.upper() in text for v in ("9991234567", "RTRH5896078", "THISTLEWOOD"))
    other_key = fingerprint_key(Keyring.from_secret(bytes(range(1, 33))))
    assert set(identifier_fingerprints(RAW, other_key).get_column("fingerprint")).isdisjoint(
        frame.get_column("fingerprint")
    )
    # The same ten digits as a local id and as an NHS number fingerprint differently.
    twin = identifier_fingerprints(
        pl.DataFrame({"nhs_number": ["9991234567"], "local_patient_id": ["9991234567"]}), KEY
    )
    assert twin.get_column("fingerprint").n_unique() == 2
    read = read_fingerprints([fingerprint_file])
    assert set(read) == set(KINDS)
    assert sum(len(v) for v in read.values()) == frame.height


def test_missing_columns_and_blank_frames() -> None:
    assert identifier_fingerprints(pl.DataFrame({"nhs_number": ["9991234567"]}), KEY).height == 1
    assert identifier_fingerprints(pl.DataFrame({"other": [""]}), KEY).height == 0


# --- Candidate tokens --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("nhs 999 123 4567.", "nhs_number", "9991234567"),
        ("nhs 999-123-4567", "nhs_number", "9991234567"),
        ("file nhs_9991234567.html", "nhs_number", "9991234567"),
        ("at ts181ab today", "postcode", "TS181AB"),
        ("at TS18 1AB today", "postcode", "TS181AB"),
        ("id rtrh5896078", "local_patient_id", "RTRH5896078"),
        ("id RTR-12345;", "local_patient_id", "RTR-12345"),
        ("seen: Marcus Thistlewood.", "full_name", "MARCUSTHISTLEWOOD"),
        ("THISTLEWOOD, Marcus", "full_name", "MARCUSTHISTLEWOOD"),
        ('"Zoë","O\'Brien-Quayle"', "full_name", "ZOEOBRIENQUAYLE"),
        ("Mary Ann Smith", "full_name", "MARYANNSMITH"),
        ("born 1950-02-28T00:00:00", "date_of_birth", "1950-02-28"),
    ],
)
def test_candidate_tokens_reproduce_canonical_forms(text: str, kind: str, expected: str) -> None:
    assert expected in candidate_tokens(text)[kind]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (PSEUDONYM, "nhs_number"),  # ten digits inside a hex run
        ("a9991234567b", "nhs_number"),
        ("99912345678", "nhs_number"),  # eleven digits
        ("financial year 2024/25, month 2024-05", "date_of_birth"),
        ("TS18", "postcode"),
    ],
)
def test_not_candidates(text: str, kind: str) -> None:
    assert not candidate_tokens(text)[kind]


# --- Planting one of each kind everywhere ------------------------------------------


def _planted_frame() -> pl.DataFrame:
    """One column per kind, next to ordinary pipeline columns."""
    return pl.DataFrame(
        {
            "person_id": [PSEUDONYM, PSEUDONYM[::-1]],
            "financial_year": ["2024/25", "2025/26"],
            "cost_total": [1234.5, 99.0],
            "nhs": ["", f"NHS {NHS_SPACED}"],
            "local_id": [LOCAL_ID, ""],
            "postcode": [POSTCODE_LOWER, None],
            "family": [FAMILY, "Price Hall"],
            "note": [f"statement for {FULL_NAME}", ""],
            "dob": [DOB, "2024-05"],
        }
    )


COLUMN_KIND = {
    "nhs": "nhs_number",
    "local_id": "local_patient_id",
    "postcode": "postcode",
    "family": "name",
    "note": "full_name",
    "dob": "date_of_birth",
}
STORAGE_COLUMNS = {c: k for c, k in COLUMN_KIND.items() if k != "date_of_birth"}


def _event_blob() -> str:
    """An event record like Dagster's: a JSON blob with an identifier inside text."""
    return json.dumps(
        {
            "__class__": "EventLogEntry",
            "user_message": (
                f"loaded row for {FULL_NAME} ({NHS_SPACED}) at {POSTCODE_LOWER}, "
                f"local id {LOCAL_ID}, born {DOB}; {FAMILY}"
            ),
            "dagster_event": {"event_type_value": "ASSET_MATERIALIZATION"},
        }
    )


def _plant(root: Path, *, leaky: bool) -> dict[str, Path]:
    """A pipeline's folders; with ``leaky`` each place holds planted identifiers."""
    exports = root / "exports"
    warehouse = root / "warehouse" / "ipc.duckdb"
    dagster_home = root / "dagster_home"
    restricted = root / "restricted"
    for folder in (exports / "individual_statements", warehouse.parent, restricted / "quarantine"):
        folder.mkdir(parents=True)
    run_db = dagster_home / "history" / "runs" / "5e4d.db"
    log = dagster_home / "storage" / "5e4d" / "compute_logs" / "pseudonymised_acute.out"
    run_db.parent.mkdir(parents=True)
    log.parent.mkdir(parents=True)

    clean = pl.DataFrame(
        {
            "person_id": [PSEUDONYM, PSEUDONYM[::-1]],
            "financial_year": ["2024/25", "2025/26"],
            "activity_month": ["2024-05", "2025-11"],
            "service": ["Price Hall", "DISTRICT_NURSING"],
            "cost_total": [1234.5, 99.0],
        }
    )
    frame = _planted_frame() if leaky else clean
    frame.write_parquet(exports / "person_costs.parquet")
    frame.write_csv(exports / "cohort_reference_costs.csv")
    with (exports / "individual_statements" / "2024-25.jsonl").open("w") as handle:
        for row in frame.to_dicts():
            person = row.pop("person_id")
            handle.write(json.dumps({"person_id": person, "detail": row}) + "\n")
    (exports / "manifest.json").write_text(
        json.dumps({"key_id": "aabbccdd00112233", "files": {"person_costs.parquet": 2}})
    )

    con = duckdb.connect(str(warehouse))
    con.execute("CREATE SCHEMA costing")
    con.execute("CREATE TABLE costing.person_costs AS SELECT * FROM frame")
    con.execute("CREATE TABLE costing.cohorts (person_id VARCHAR, cohorts VARCHAR[])")
    con.execute("INSERT INTO costing.cohorts VALUES (?, ['frailty', 'high_cost'])", [PSEUDONYM])
    con.close()

    sq = sqlite3.connect(run_db)
    sq.execute(
        "CREATE TABLE event_logs (id INTEGER PRIMARY KEY, run_id TEXT, event TEXT, "
        "dagster_event_type TEXT, timestamp TEXT, step_key TEXT)"
    )
    sq.execute("CREATE TABLE run_tags (id INTEGER PRIMARY KEY, key TEXT, value TEXT)")
    ok_event = json.dumps({"user_message": "acute: 24023 rows read, 2024/25, Price Hall"})
    sq.execute(
        "INSERT INTO event_logs (run_id, event, dagster_event_type, timestamp, step_key) "
        "VALUES ('5e4d', ?, 'ASSET_MATERIALIZATION', '2024-05-01 10:00:00', 'acute')",
        [_event_blob() if leaky else ok_event],
    )
    sq.execute(
        "INSERT INTO run_tags (key, value) VALUES ('owner', ?)", [FAMILY if leaky else "finance"]
    )
    sq.commit()
    sq.close()

    log_text = "2024-05-01 10:00:01 INFO acute: 24023 rows read, Price Hall, " + PSEUDONYM
    if leaky:
        log_text += (
            f"\nValueError: bad row {NHS_SPACED},{LOCAL_ID},{DOB},{POSTCODE_LOWER},"
            f"Marcus,{FAMILY}\n  Mr {FAMILY} again"
        )
    log.write_text(log_text + "\n")

    quarantine = pl.DataFrame(
        {"file": ["acute.csv"], "row": [7], "reasons": ["unparseable_date:start_date"]}
    )
    if leaky:
        quarantine = quarantine.with_columns(local_patient_id=pl.lit(LOCAL_ID))
    quarantine.write_parquet(restricted / "quarantine" / "acute.parquet")
    return {
        "exports": exports,
        "warehouse": warehouse,
        "dagster_home": dagster_home,
        "restricted": restricted,
        "run_db": run_db,
        "log": log,
    }


def _expected(places: dict[str, Path]) -> set[tuple[str, str]]:
    exports = places["exports"]
    expected = set()
    for column, kind in COLUMN_KIND.items():  # exports: every kind, dates of birth too
        expected.add((f"{exports / 'person_costs.parquet'}#{column}", kind))
        expected.add((f"{exports / 'cohort_reference_costs.csv'}#{column}", kind))
        statements = exports / "individual_statements" / "2024-25.jsonl"
        expected.add((f"{statements}#detail.{column}", kind))
    for column, kind in STORAGE_COLUMNS.items():  # the warehouse: no dates of birth
        expected.add((f"{places['warehouse']}#costing.person_costs#{column}", kind))
    run_db = places["run_db"]
    # The event blob is free text inside a cell: full names, not single surnames.
    for kind in ("nhs_number", "local_patient_id", "postcode", "full_name"):
        expected.add((f"{run_db}#event_logs#event", kind))
        expected.add((str(places["log"]), kind))
    expected.add((f"{run_db}#run_tags#value", "name"))  # a whole cell
    quarantine = places["restricted"] / "quarantine" / "acute.parquet"
    expected.add((f"{quarantine}#local_patient_id", "local_patient_id"))
    return expected


def test_audit_finds_each_kind_in_each_place(tmp_path: Path, fingerprint_file: Path) -> None:
    places = _plant(tmp_path, leaky=True)
    findings = audit(
        places["exports"],
        places["warehouse"],
        places["dagster_home"],
        places["restricted"],
        [fingerprint_file],
        KEY,
    )
    found = {(f.location, f.kind) for f in findings}
    assert found == _expected(places)
    assert all(f.count == 1 for f in findings)
    _assert_no_values(findings)
    # Dates of birth only in exports, though planted everywhere.
    dob_places = {f.location for f in findings if f.kind == "date_of_birth"}
    assert dob_places and all(loc.startswith(str(places["exports"])) for loc in dob_places)


def test_the_dates_a_manifest_records_are_not_taken_for_dates_of_birth(
    tmp_path: Path, fingerprint_file: Path
) -> None:
    """At a site's scale every date is somebody's birthday; a manifest's period and run
    dates are the pipeline's own. Its other cells are still searched."""
    places = _plant(tmp_path, leaky=False)
    manifest = places["exports"] / "manifest.json"
    manifest.write_text(json.dumps({"period": {"start": DOB}, "ran_by": NHS_SPACED}))
    findings = audit(places["exports"], None, None, None, [fingerprint_file], KEY)
    assert {(f.location, f.kind) for f in findings} == {
        (f"{manifest.resolve()}#ran_by", "nhs_number")
    }


def test_clean_tree_has_no_findings(tmp_path: Path, fingerprint_file: Path) -> None:
    places = _plant(tmp_path, leaky=False)
    findings = audit(
        places["exports"],
        places["warehouse"],
        places["dagster_home"],
        places["restricted"],
        [fingerprint_file],
        KEY,
    )
    assert findings == []


def test_missing_locations_are_skipped(tmp_path: Path, fingerprint_file: Path) -> None:
    missing = tmp_path / "nowhere"
    assert audit(missing, missing / "ipc.duckdb", None, None, [fingerprint_file], KEY) == []


def test_earlier_runs_kept_beside_the_export_are_scanned(
    tmp_path: Path, fingerprint_file: Path
) -> None:
    runs = tmp_path / ".exports-runs"
    for run, note in (("20240501T000000Z-a", FULL_NAME), ("20240601T000000Z-b", "ok")):
        (runs / run).mkdir(parents=True)
        pl.DataFrame({"note": [note]}).write_parquet(runs / run / "person_costs.parquet")
    export_dir = tmp_path / "exports"
    export_dir.symlink_to(runs / "20240601T000000Z-b")
    findings = audit(export_dir, None, None, None, [fingerprint_file], KEY)
    old = runs / "20240501T000000Z-a" / "person_costs.parquet"
    assert findings == [Finding(f"{old}#note", "full_name", 1)]


def test_an_audit_without_fingerprints_refuses(tmp_path: Path) -> None:
    empty = tmp_path / "none.parquet"
    write_fingerprints(pl.DataFrame({"kind": [], "fingerprint": []}), empty)
    with pytest.raises(ValueError, match="no fingerprints"):
        audit(tmp_path, None, None, None, [empty], KEY)


def test_fingerprint_files_are_never_scanned(
    tmp_path: Path, fingerprint_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    restricted = tmp_path / "restricted"
    (restricted / "quarantine").mkdir(parents=True)
    inside = restricted / "quarantine" / "fingerprints.parquet"
    inside.write_bytes(fingerprint_file.read_bytes())
    (restricted / "quarantine" / "acute.parquet").write_bytes(fingerprint_file.read_bytes())
    seen: list[Path] = []
    original = audit_module._file_into

    def spy(path: Path, session: object) -> None:
        seen.append(path)
        original(path, session)  # type: ignore[arg-type]

    monkeypatch.setattr(audit_module, "_file_into", spy)
    assert audit(None, None, None, restricted, [inside], KEY) == []
    assert [p.name for p in seen] == ["acute.parquet"]


# --- Which kinds apply where -------------------------------------------------------


def test_surnames_in_free_text_are_not_flagged_but_whole_cells_are(scanner: Scanner) -> None:
    text = f"The {FAMILY} estate; Marcus called. Town Hall, Price list."
    assert scanner.scan_text(text, "log") == []
    assert scanner.scan_text(f"{text} {FULL_NAME}", "log") == [Finding("log", "full_name", 1)]
    frame = pl.DataFrame({"a": [FAMILY.upper(), "Price Hall"], "b": ["Price", "Hall"]})
    assert scanner.scan_frame(frame, "t") == [Finding("t#a", "name", 1)]


def test_all_digit_local_ids_are_reported_apart(scanner: Scanner) -> None:
    """A short all-digit id may equal any count or cost by chance: its own kind."""
    assert scanner.scan_text("acute: 123456 rows read", "log") == [
        Finding("log", DIGITS_LOCAL_ID, 1)
    ]
    assert scanner.scan_text("unknown client, 0000 rows, ZZ99 3VZ, baby unknown", "log") == []


def test_digits_after_a_decimal_point_are_not_an_nhs_number(scanner: Scanner) -> None:
    """At a site's scale some cost's fraction matches some NHS number by chance; a
    whole number written as a float is still found."""
    costs = pl.DataFrame({"cost": [1234.9991234567, 9991234567.0, 0.5]})
    assert scanner.scan_frame(costs, "c") == [Finding("c#cost", "nhs_number", 1)]
    assert scanner.scan_text('{"total": 1234.9991234567}', "log") == []
    assert scanner.scan_text("cost 1234.9991234567, id 9991234567", "log") == [
        Finding("log", "nhs_number", 1)
    ]


def test_dates_of_birth_only_when_asked(scanner: Scanner) -> None:
    frame = pl.DataFrame({"d": [DOB, "2024-05-01"]}).with_columns(as_date=pl.col("d").str.to_date())
    assert scanner.scan_frame(frame, "x") == []
    assert scanner.scan_frame(frame, "x", EXPORT_KINDS) == [
        Finding("x#as_date", "date_of_birth", 1),
        Finding("x#d", "date_of_birth", 1),
    ]
    assert scanner.scan_text(f"born {DOB}", "log") == []
    assert scanner.scan_text(f"born {DOB}", "log", EXPORT_KINDS) == [
        Finding("log", "date_of_birth", 1)
    ]
    assert "date_of_birth" not in STORAGE_KINDS


def test_numbers_nested_columns_and_identifier_column_names(scanner: Scanner) -> None:
    frame = pl.DataFrame(
        {
            "n": [9991234567, 1],
            "s": [{"inner": ["x", "TS7 6AP"]}, {"inner": []}],
            FAMILY: ["a", "b"],  # a column named after a person
        }
    )
    findings = scanner.scan_frame(frame, "f")
    assert {(f.location, f.kind) for f in findings} == {
        ("f#n", "nhs_number"),
        ("f#s.inner", "postcode"),
        ("f#(column names)", "name"),
    }
    _assert_no_values(findings)


def test_binary_files_are_read_like_strings(tmp_path: Path, scanner: Scanner) -> None:
    blob = tmp_path / "asset_output"
    blob.write_bytes(b"\x80\x04\x95\x00\x00" + LOCAL_ID.encode() + b"\x00\x01\x02" * 50)
    assert scanner.scan_file(blob) == [Finding(str(blob), "local_patient_id", 1)]


def test_sqlite_deleted_rows_are_found_in_raw_bytes(tmp_path: Path, scanner: Scanner) -> None:
    path = tmp_path / "runs.db"
    con = sqlite3.connect(path)
    con.execute("PRAGMA secure_delete = OFF")
    con.execute("CREATE TABLE event_logs (id INTEGER PRIMARY KEY, event TEXT)")
    con.execute("INSERT INTO event_logs (event) VALUES (?)", [f"row {LOCAL_ID}"])
    con.execute("INSERT INTO event_logs (event) VALUES ('ok')")
    con.commit()
    con.execute("DELETE FROM event_logs WHERE id = 1")
    con.commit()
    con.close()
    findings = scanner.scan_sqlite(path)
    assert findings == [
        Finding(f"{path} (raw bytes: deleted or unreadable rows)", "local_patient_id", 1)
    ]


def test_unparseable_file_is_reported(tmp_path: Path, scanner: Scanner) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really " + LOCAL_ID.encode())
    assert scanner.scan_file(broken) == [
        Finding(str(broken), "local_patient_id", 1),
        Finding(str(broken), "unreadable", 1),
    ]


def test_storage_and_export_kinds() -> None:
    assert frozenset(KINDS) == EXPORT_KINDS
    assert set(EXPORT_KINDS - STORAGE_KINDS) == {"date_of_birth"}


def test_a_database_holding_dagsters_storage_is_scanned_table_by_table(
    tmp_path: Path, fingerprint_file: Path
) -> None:
    """The instance's storage in a database (PostgreSQL in production; the same code
    reads any database SQLAlchemy reaches, so a SQLite file stands in here)."""
    database = tmp_path / "dagster_storage.db"
    con = sqlite3.connect(database)
    con.execute("CREATE TABLE event_logs (id INTEGER, event TEXT)")
    con.execute("CREATE TABLE runs (run_id TEXT)")
    message = json.dumps({"message": f"step failed for {NHS_SPACED} ({FULL_NAME})"})
    con.execute("INSERT INTO event_logs VALUES (1, ?), (2, NULL)", [message])
    con.execute("INSERT INTO runs VALUES ('abc123')")
    con.commit()
    con.close()
    url = f"sqlite:///{database}"
    findings = audit(None, None, None, None, [fingerprint_file], KEY, [url])
    assert {(f.location, f.kind) for f in findings} == {
        (f"{url}#event_logs#event", "nhs_number"),
        (f"{url}#event_logs#event", "full_name"),
    }
    _assert_no_values(findings)


def test_a_database_that_cannot_be_reached_is_reported_without_its_password(
    tmp_path: Path, fingerprint_file: Path
) -> None:
    url = "postgresql+psycopg2://ipc:s3cret-pw@127.0.0.1:9/nowhere?connect_timeout=2"
    findings = audit(None, None, None, None, [fingerprint_file], KEY, [url])
    assert [(f.kind, f.count) for f in findings] == [("unreadable", 1)]
    assert "s3cret-pw" not in findings[0].location
    assert "127.0.0.1:9/nowhere" in findings[0].location
