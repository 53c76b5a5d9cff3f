"""Small deliveries made inside a test, and a warehouse built from them.

``build_warehouse`` runs the same pure steps the assets run (pseudonymise, link,
cost), without Dagster, so a costing rule can be checked on three hand-written rows
in well under a second. The assets themselves are exercised in ``tests/assets``.
"""

import csv
import datetime as dt
import itertools
import shutil
from pathlib import Path

import duckdb
import polars as pl

from costing.activity import cost_activity
from costing.cohorts import build_cohort_membership, parse_cohorts
from costing.disclosure import DisclosureRule
from costing.period import create_period_tables, resolve_period
from costing.persons import build_person_costs
from costing.reconciliation import build_reconciliation
from costing.reference_costs import build_cohort_reference_costs, build_funding_bands
from costing.statements import build_statements
from linkage.cascade import link_records
from pseudonymise.hashing import pseudonymise_series, text_key
from pseudonymise.keys import Keyring
from pseudonymise.source import pseudonymise_source
from schemas.reference import load_reference_tables
from schemas.sources import SOURCES
from tests.conftest import WORKED_EXAMPLE

KEYRING = Keyring.from_secret(bytes(range(32)))
REFERENCE = WORKED_EXAMPLE / "reference"
_serial = itertools.count(1)


def nhs_number(seed: int) -> str:
    """A valid NHS number in the 999 test range, different for each seed."""
    for n in itertools.count(seed * 1000):
        digits = f"999{n % 10_000_000:07d}"
        total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
        check = 11 - total % 11
        check = 0 if check == 11 else check
        if check != 10 and digits[9] == str(check) and len(set(digits)) > 1:
            return digits
    raise AssertionError("unreachable")


def person(seed: int, **overrides: str) -> dict[str, str]:
    """Identifier columns of one made-up person."""
    return {
        "nhs_number": nhs_number(seed),
        "local_patient_id": f"L{seed:06d}",
        "date_of_birth": "1950-06-15",
        "sex": "2",
        "postcode": "TS18 1AB",
        "given_name": "Ann",
        "family_name": f"Test{chr(65 + seed % 26)}{chr(65 + seed // 26 % 26)}",
    } | overrides


def write_landing(folder: Path, rows: dict[str, list[dict[str, str]]]) -> Path:
    """Write every source's CSV (empty sources get a header only)."""
    folder.mkdir(parents=True, exist_ok=True)
    for spec in SOURCES:
        columns = list(spec.required_columns)
        with (folder / spec.file_name).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in rows.get(spec.name, []):
                writer.writerow({c: row.get(c, "") for c in columns})
    return folder


def person_id(key_text: str) -> str:
    """The internal person id of ``nhs:<number>`` or ``src:<source>:<local id>``."""
    return pseudonymise_series(text_key(KEYRING.linkage), pl.Series([key_text]))[0]


def build_warehouse(
    tmp_path: Path,
    rows: dict[str, list[dict[str, str]]],
    *,
    reference_dir: Path = REFERENCE,
    period_start: dt.date | None = None,
    period_end: dt.date | None = None,
    block_contracts: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Pseudonymise, link and cost a small delivery into a DuckDB file under tmp_path."""
    landing = write_landing(tmp_path / f"landing{next(_serial)}", rows)
    reference = tmp_path / f"reference{next(_serial)}"
    shutil.copytree(reference_dir, reference)
    if block_contracts is not None:
        (reference / "block_contracts.csv").write_text(block_contracts)
    con = duckdb.connect(str(tmp_path / f"warehouse{next(_serial)}.duckdb"))
    con.execute("CREATE SCHEMA pseudonymised; CREATE SCHEMA reference")
    reports = []
    for spec in SOURCES:
        result = pseudonymise_source(landing, spec, KEYRING.linkage)
        con.register("incoming", result.accepted.to_arrow())
        con.execute(f"CREATE TABLE pseudonymised.{spec.name} AS SELECT * FROM incoming")
        con.unregister("incoming")
        report = result.report.as_dict()
        reports.append(
            {k: v for k, v in report.items() if k not in ("quarantine_reasons", "extra_columns")}
        )
    con.register("incoming", pl.DataFrame(reports).to_arrow())
    con.execute("CREATE TABLE pseudonymised.ingest_report AS SELECT * FROM incoming")
    con.unregister("incoming")
    tables = load_reference_tables(reference)
    for name in ("acute_tariff", "acute_pod_default", "unit_costs", "block_contracts"):
        con.register("incoming", getattr(tables, name).to_arrow())
        con.execute(f"CREATE TABLE reference.{name} AS SELECT * FROM incoming")
        con.unregister("incoming")
    link_records(con)
    period = resolve_period(con, configured_start=period_start, configured_end=period_end)
    create_period_tables(con, period)
    cost_activity(con)
    build_person_costs(con)
    build_cohort_membership(con, parse_cohorts(tables.cohorts_yaml))
    build_cohort_reference_costs(con)
    cashable = tables.settings["cashable_settings"]
    build_funding_bands(con, cashable)
    build_statements(con, DisclosureRule(), cashable)
    build_reconciliation(con)
    return con


def activity(con: duckdb.DuckDBPyConnection, source: str | None = None) -> list[dict]:
    where = f"WHERE source = '{source}'" if source else ""
    frame = con.sql(
        f"SELECT * FROM costing.activity {where} ORDER BY source, row_number, financial_year"
    ).pl()
    return frame.to_dicts()
