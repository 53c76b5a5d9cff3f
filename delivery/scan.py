"""Scan what leaves the pipeline for anything shaped like a raw identifier.

Looks at cell values (not bytes) of every Parquet, CSV and JSONL file: a whole cell
shaped like an NHS number or a full postcode, any exact date (``YYYY-MM-DD``) or a
date-typed column, and any column named after a raw identifier. Findings carry file,
column, kind and a count - never the value found.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from schemas.sources import RAW_IDENTIFIER_COLUMNS

PATTERNS: dict[str, str] = {
    "nhs_number": r"^\s*\d{3}[\s-]?\d{3}[\s-]?\d{4}\s*$",
    "full_postcode": r"(?i)^\s*[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\s*$",
    "exact_date": r"\d{4}-\d{2}-\d{2}",
}


@dataclass(frozen=True)
class Finding:
    file: str
    column: str
    kind: str
    cells: int

    def __str__(self) -> str:
        return f"{self.file}: column {self.column!r} has {self.cells} cell(s) like a {self.kind}"


def _frame(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return (
        pl.json_normalize(rows, separator=".", infer_schema_length=None)
        if rows
        else (pl.DataFrame())
    )


def scan_frame(frame: pl.DataFrame, file: str) -> list[Finding]:
    findings = []
    for column, dtype in frame.schema.items():
        if column in RAW_IDENTIFIER_COLUMNS:
            findings.append(Finding(file, column, "raw identifier column", frame.height))
        if dtype in (pl.Date, pl.Datetime):
            findings.append(Finding(file, column, "exact_date", frame[column].count()))
            continue
        if dtype == pl.List(pl.String):
            values = frame[column].explode()
        elif dtype == pl.String:
            values = frame[column]
        else:
            continue
        for kind, pattern in PATTERNS.items():
            hits = int(values.str.contains(pattern).sum() or 0)
            if hits:
                findings.append(Finding(file, column, kind, hits))
    return findings


def scan_export(folder: Path) -> list[Finding]:
    """Every identifier-shaped cell in every data file below ``folder``."""
    findings: list[Finding] = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in (".parquet", ".csv", ".jsonl"):
            findings.extend(scan_frame(_frame(path), path.relative_to(folder).as_posix()))
    return findings
