"""What each financial year was computed against, and whether an export may use it.

The person spine (with the linked rows it was built from) and the reference tables
are not per year: a change to either changes every year's figures. So every costing
step records, per financial year it computes, in ``costing.year_versions``:

* ``spine_version``: the version of the linked zone (written by the linkage step into
  ``linked.spine_version``: a digest of the pseudonymised files it linked, so any
  changed row of any source is a new version, and the same extracts the same one);
* ``reference_version``: a digest of the reference tables' contents (prices, block
  contracts, cohorts.yaml and settings.yaml);
* ``period_key``: the year's days inside the costing period, and whether the period
  ends in it (the only way the period changes a year's figures);
* ``code_version``: the pipeline's code version.

The first step (``costing/activity``) records the versions it read; each later step
copies those of the year's rows it was built from, so a year built on a stale earlier
step stays stale. :func:`year_problems` compares every year with the current
versions: the exports and the reconciliation refuse a mix.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from costing.period import Period, fy_label
from costing.years import year_filter

YEAR_VERSIONS = "costing.year_versions"
SPINE_VERSION = "linked.spine_version"

#: Every table of the reference schema a year's figures are computed from.
REFERENCE_TABLES = ("acute_tariff", "acute_pod_default", "unit_costs", "block_contracts")


class MissingVersionError(RuntimeError):
    """An upstream table carries no version (it was built before versions existed)."""


@dataclass(frozen=True)
class Versions:
    """The spine, reference tables and code a year is (or must be) computed with."""

    spine: str
    reference: str
    code: str


def file_fingerprint(paths: Sequence[Path]) -> str:
    """A short digest of files' names and contents: the same files give the same
    fingerprint (the pseudonymised Parquet of the same extracts under the same key is
    written byte for byte the same), any changed byte a new one."""
    digest = hashlib.blake2b(digest_size=16)
    for path in paths:
        with path.open("rb") as handle:
            digest.update(path.name.encode() + b"\0")
            digest.update(hashlib.file_digest(handle, "blake2b").digest())
    return digest.hexdigest()[:16]


def write_spine_version(con: duckdb.DuckDBPyConnection, version: str) -> None:
    """Record the version of the linked tables just built."""
    con.execute(
        f"CREATE OR REPLACE TABLE {SPINE_VERSION} AS "
        "SELECT ?::VARCHAR AS spine_version, now()::TIMESTAMP AS built_at",
        [version],
    )


def spine_version(con: duckdb.DuckDBPyConnection) -> str:
    """The version of the linked tables in the warehouse."""
    try:
        rows = con.execute(f"SELECT spine_version FROM {SPINE_VERSION}").fetchall()
    except duckdb.CatalogException:
        rows = []
    if not rows:
        raise MissingVersionError(
            "the linked tables carry no version (built before financial-year partitions); "
            "materialise linked/person_spine again, or run `ipc run`"
        )
    return str(rows[0][0])


def reference_version(con: duckdb.DuckDBPyConnection) -> str:
    """A digest of every reference table's and document's contents."""
    digest = hashlib.sha256()
    for name in (*REFERENCE_TABLES, "documents"):
        table = f"reference.{name}"
        columns = con.execute(f"DESCRIBE {table}").fetchall()
        rows = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        digest.update(json.dumps([name, columns, rows], default=str).encode())
    return digest.hexdigest()[:16]


def period_key(period: Period, start_year: int) -> str:
    """The year's days inside the period, and whether the period ends in it (an open
    stay's last night depends on that)."""
    first = max(period.start, dt.date(start_year, 4, 1))
    last = min(period.end, dt.date(start_year + 1, 3, 31))
    ends = " (period ends)" if period.end <= dt.date(start_year + 1, 3, 31) else ""
    return f"{first}..{last}{ends}"


def period_keys(period: Period) -> dict[str, str]:
    """Every financial year of the period -> its :func:`period_key`."""
    return {fy_label(y): period_key(period, y) for y in period.financial_years()}


def _ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS costing")
    con.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {YEAR_VERSIONS} (
            asset VARCHAR, financial_year VARCHAR, spine_version VARCHAR,
            reference_version VARCHAR, period_key VARCHAR, code_version VARCHAR,
            run_id VARCHAR, computed_at TIMESTAMP
        )
        """
    )


def record_computed(
    con: duckdb.DuckDBPyConnection,
    asset: str,
    years: Sequence[str],
    keys: dict[str, str],
    versions: Versions,
    run_id: str,
) -> None:
    """The first step: ``years`` were costed now; those in ``keys`` (the period's)
    hold rows computed with ``versions``. Years outside the period lose their record."""
    _ensure_table(con)
    con.execute(
        f"DELETE FROM {YEAR_VERSIONS} WHERE asset = ? AND {year_filter('financial_year', years)}",
        [asset],
    )
    rows = [
        (asset, y, versions.spine, versions.reference, keys[y], versions.code, run_id)
        for y in years
        if y in keys
    ]
    if rows:
        con.executemany(
            f"INSERT INTO {YEAR_VERSIONS} VALUES (?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)", rows
        )


def record_inherited(
    con: duckdb.DuckDBPyConnection,
    asset: str,
    upstream: Sequence[str],
    years: Sequence[str],
    run_id: str,
) -> None:
    """A later step: each year in ``years`` that its upstream steps hold is recorded
    with their versions (as unknown when they disagree, so the year is stale)."""
    _ensure_table(con)
    where = year_filter("financial_year", years)
    con.execute(f"DELETE FROM {YEAR_VERSIONS} WHERE asset = ? AND {where}", [asset])
    placeholders = ", ".join("?" for _ in upstream)
    con.execute(
        f"""
        INSERT INTO {YEAR_VERSIONS}
        SELECT ?, financial_year,
            CASE WHEN agree THEN spine_version END,
            CASE WHEN agree THEN reference_version END,
            CASE WHEN agree THEN period_key END,
            CASE WHEN agree THEN code_version END,
            ?, now()::TIMESTAMP
        FROM (
            SELECT financial_year,
                count(*) = {len(upstream)} AND count(DISTINCT (
                    spine_version, reference_version, period_key, code_version)) = 1 AS agree,
                any_value(spine_version) AS spine_version,
                any_value(reference_version) AS reference_version,
                any_value(period_key) AS period_key,
                any_value(code_version) AS code_version
            FROM {YEAR_VERSIONS}
            WHERE asset IN ({placeholders}) AND {where}
            GROUP BY financial_year
        )
        ORDER BY financial_year
        """,
        [asset, run_id, *upstream],
    )


def year_problems(
    con: duckdb.DuckDBPyConnection,
    *,
    assets: Sequence[str],
    keys: dict[str, str],
    versions: Versions,
    period: Period,
) -> dict[str, str]:
    """Each financial year that may not be exported, and why (empty when all are fine).

    Every year of the period (``keys``) must be recorded by every one of ``assets``
    with the current ``versions`` and its period key; a year outside the period must
    hold no rows (in ``costing.person_years``) and no record.
    """
    _ensure_table(con)
    recorded: dict[str, dict[str, tuple]] = {}
    for row in con.execute(
        f"SELECT financial_year, asset, spine_version, reference_version, period_key, "
        f"code_version FROM {YEAR_VERSIONS}"
    ).fetchall():
        recorded.setdefault(str(row[0]), {})[str(row[1])] = tuple(row[2:])
    stored = set(recorded)
    try:
        with_rows = con.execute("SELECT DISTINCT financial_year FROM costing.person_years")
        stored |= {str(r[0]) for r in with_rows.fetchall()}
    except duckdb.CatalogException:
        pass  # nothing costed yet: every year of the period is "not computed"
    problems: dict[str, str] = {}
    for year in sorted(stored - set(keys)):
        problems[year] = (
            f"outside the costing period ({period.start} to {period.end}) but still in "
            "the warehouse"
        )
    for year, key in sorted(keys.items()):
        reasons: list[str] = []
        entries = {a: v for a, v in recorded.get(year, {}).items() if a in assets}
        missing = [a for a in assets if a not in entries]
        if missing:
            reasons.append(
                "not computed"
                + ("" if len(missing) == len(assets) else f" for {', '.join(missing)}")
            )
        values = list(entries.values())
        if any(v[0] is None for v in values):
            reasons.append("built from steps computed against different versions")
        values = [v for v in values if v[0] is not None]
        if any(v[0] != versions.spine for v in values):
            reasons.append("computed against an older person spine")
        if any(v[1] != versions.reference for v in values):
            reasons.append("computed against older reference tables (prices, cohorts or settings)")
        if any(v[2] != key for v in values):
            reasons.append("computed for a different costing period")
        if any(v[3] != versions.code for v in values):
            reasons.append("computed by another version of the pipeline")
        if reasons:
            problems[year] = " and ".join(dict.fromkeys(reasons))
    return problems


def describe_problems(problems: dict[str, str]) -> str:
    """One sentence naming every year that may not be used, and why."""
    return "; ".join(f"{year}: {why}" for year, why in sorted(problems.items()))
