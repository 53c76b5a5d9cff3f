"""``ipc validate``: check a delivery against the contract without running anything else.

Reports, per landing file, the rows that would be quarantined with their row numbers
and reason codes (which name the column), and any structural error (missing file or
column, empty file, bad reference table). Values are never printed.
"""

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pseudonymise.landing import LandingError, read_source
from pseudonymise.validate import quarantine_reasons
from schemas.reference import ReferenceError, load_reference_tables
from schemas.sources import SOURCES

#: Rows listed per source before the report summarises the rest.
MAX_ROWS_LISTED = 50


@dataclass
class ValidationReport:
    lines: list[str] = field(default_factory=list)
    errors: int = 0
    quarantined: int = 0


def validate_delivery(landing_dir: Path, reference_dir: Path) -> ValidationReport:
    report = ValidationReport()
    for spec in SOURCES:
        try:
            raw = read_source(landing_dir, spec)
        except LandingError as exc:
            report.errors += 1
            report.lines.append(f"ERROR {spec.name}: {exc}")
            continue
        reasons = quarantine_reasons(raw).filter(pl.col("reasons").fill_null("") != "")
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
        load_reference_tables(reference_dir)
        report.lines.append(f"reference: {reference_dir} is valid")
    except ReferenceError as exc:
        report.errors += 1
        report.lines.append(f"ERROR reference: {exc}")
    verdict = "cannot be run" if report.errors else "can be run"
    report.lines.append(
        f"{report.errors} error(s), {report.quarantined} row(s) to quarantine: "
        f"the delivery {verdict}."
    )
    return report
