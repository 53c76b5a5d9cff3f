"""``ipc validate``: check a delivery against the contract without running anything else.

Reports, per landing file, the rows that would be quarantined with their row numbers
and reason codes (which name the column), any structural error (missing file or
column, empty file, bad reference table), and a price table with no rows for a year
the costing period's activity needs (the run would stop there). Values are never
printed.
"""

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from costing.activity import SPELL_PODS
from costing.period import PERIOD_END_DATE_COLUMNS, fy_label, fy_start_year
from pseudonymise.landing import LandingError, read_source
from pseudonymise.validate import parse_accepted, quarantine_reasons
from schemas.reference import ReferenceError, ReferenceTables, load_reference_tables
from schemas.sources import SOURCES

#: Rows listed per source before the report summarises the rest.
MAX_ROWS_LISTED = 50


@dataclass
class ValidationReport:
    lines: list[str] = field(default_factory=list)
    errors: int = 0
    quarantined: int = 0


#: The price tables whose years the run checks (costing.activity.check_price_coverage),
#: and the sources each prices.
_PRICE_TABLES = {
    "acute_tariff.csv / acute_pod_default.csv": ("acute",),
    "unit_costs.csv": ("community", "mental_health", "primary_care_events"),
}


def _priced_dates(name: str, accepted: pl.DataFrame) -> pl.Series:
    """The date that puts each of a source's rows in the year whose prices it needs: an
    acute spell's discharge (none while open), else the row's own start, contact or
    event date (a mental health stay's first night)."""
    if name == "acute":
        spell = pl.col("pod").is_in(SPELL_PODS)
        when = pl.when(spell).then(pl.col("end_date")).otherwise(pl.col("start_date"))
        return accepted.select(when).to_series().drop_nulls()
    return accepted.get_column(PERIOD_END_DATE_COLUMNS[name]).drop_nulls()


def _price_year_problems(
    accepted: dict[str, pl.DataFrame],
    tables: ReferenceTables,
    period_start: dt.date | None,
    period_end: dt.date | None,
) -> list[str]:
    """Years in the costing period (configured, else the contract's defaults) for which
    a price table has no rows though activity it prices falls in them."""
    unit_years = tables.unit_costs.get_column("financial_year")
    if period_start is None:
        if unit_years.is_empty():
            return []
        period_start = dt.date(int(str(unit_years.min()).split("/")[0]), 4, 1)
    latest = [
        frame.get_column(PERIOD_END_DATE_COLUMNS[name]).max()
        for name, frame in accepted.items()
        if name in PERIOD_END_DATE_COLUMNS and not frame.is_empty()
    ]
    end = period_end or max((d for d in latest if isinstance(d, dt.date)), default=None)
    if end is None:
        return []
    priced = {
        "acute_tariff.csv / acute_pod_default.csv": set(
            tables.acute_tariff.get_column("financial_year").to_list()
            + tables.acute_pod_default.get_column("financial_year").to_list()
        ),
        "unit_costs.csv": set(unit_years.to_list()),
    }
    problems = []
    for table, sources in _PRICE_TABLES.items():
        rows: dict[str, int] = {}
        for name in sources:
            if name not in accepted:
                continue
            for day in _priced_dates(name, accepted[name]).to_list():
                if period_start <= day <= end:
                    year = fy_label(fy_start_year(day))
                    rows[year] = rows.get(year, 0) + 1
        for year, count in sorted(rows.items()):
            if year not in priced[table]:
                ends = f"{end}" + ("" if period_end else ", the latest activity date")
                problems.append(
                    f"ERROR prices: {table} has no prices for {year}, but {count} activity "
                    f"row(s) it prices fall in that year (the costing period ends {ends}); "
                    "the run would stop. Add that year's prices, or set IPC_PERIOD_END."
                )
    return problems


def validate_delivery(
    landing_dir: Path,
    reference_dir: Path,
    period_start: dt.date | None = None,
    period_end: dt.date | None = None,
) -> ValidationReport:
    report = ValidationReport()
    accepted: dict[str, pl.DataFrame] = {}
    for spec in SOURCES:
        try:
            raw = read_source(landing_dir, spec)
        except LandingError as exc:
            report.errors += 1
            report.lines.append(f"ERROR {spec.name}: {exc}")
            continue
        all_reasons = quarantine_reasons(raw)
        if spec.name in PERIOD_END_DATE_COLUMNS:
            accepted[spec.name] = parse_accepted(raw, all_reasons)
        reasons = all_reasons.filter(pl.col("reasons").fill_null("") != "")
        encodings = sorted({f.encoding for f in raw.files})
        report.lines.append(
            f"{spec.name}: {raw.frame.height} rows in {len(raw.files)} file(s) "
            f"({', '.join(encodings)}); {reasons.height} would be quarantined"
        )
        report.quarantined += reasons.height
        for row in reasons.head(MAX_ROWS_LISTED).iter_rows(named=True):
            report.lines.append(f"  {row['_file']} row {row['_row_number']}: {row['reasons']}")
        if reasons.height > MAX_ROWS_LISTED:
            report.lines.append(f"  ... and {reasons.height - MAX_ROWS_LISTED} more rows")
    try:
        tables = load_reference_tables(reference_dir)
        report.lines.append(f"reference: {reference_dir} is valid")
    except ReferenceError as exc:
        report.errors += 1
        report.lines.append(f"ERROR reference: {exc}")
    else:
        problems = _price_year_problems(accepted, tables, period_start, period_end)
        report.errors += len(problems)
        report.lines += problems
    verdict = "cannot be run" if report.errors else "can be run"
    report.lines.append(
        f"{report.errors} error(s), {report.quarantined} row(s) to quarantine: "
        f"the delivery {verdict}."
    )
    return report
