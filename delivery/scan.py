"""Scan what leaves the pipeline for anything shaped like a raw identifier.

Looks at cell values (not bytes) of every Parquet, CSV and JSONL file: a whole cell
shaped like an NHS number or a full postcode, any exact date (``YYYY-MM-DD``) or a
date-typed column, and any column named after a raw identifier. Findings carry file,
column, kind and a count - never the value found.
"""

import re
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
    """Where identifier-shaped values were found: ``values`` counts distinct ones."""

    file: str
    column: str
    kind: str
    values: int

    def __str__(self) -> str:
        return f"{self.file}: column {self.column!r} has {self.values} value(s) like a {self.kind}"


#: The same shapes as whole JSON string values, for JSON Lines text.
JSON_PATTERNS: dict[str, re.Pattern[str]] = {
    "nhs_number": re.compile(r'"\s*\d{3}[\s-]?\d{3}[\s-]?\d{4}\s*"'),
    "full_postcode": re.compile(r'(?i)"\s*[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\s*"'),
    "exact_date": re.compile(r"\d{4}-\d{2}-\d{2}"),
}


def scan_json_lines(text: str, file: str) -> list[Finding]:
    """Identifier-shaped string values in JSON Lines text (statements)."""
    findings = []
    for kind, pattern in JSON_PATTERNS.items():
        hits = len(set(pattern.findall(text)))
        if hits:
            findings.append(Finding(file, "(any field)", kind, hits))
    return findings


def scan_frame(frame: pl.DataFrame, file: str) -> list[Finding]:
    findings = []
    for column, dtype in frame.schema.items():
        if column in RAW_IDENTIFIER_COLUMNS:
            findings.append(Finding(file, column, "raw identifier column", frame.height))
        if dtype in (pl.Date, pl.Datetime):
            findings.append(Finding(file, column, "exact_date", frame[column].count()))
            continue
        if dtype == pl.List(pl.String):
            values = frame[column].explode().unique()
        elif dtype == pl.String:
            values = frame[column].unique()
        else:
            continue
        for kind, pattern in PATTERNS.items():
            hits = int(values.str.contains(pattern).sum() or 0)
            if hits:
                findings.append(Finding(file, column, kind, hits))
    return findings


def scan_export(folder: Path) -> list[Finding]:
    """Every identifier-shaped value in every data file below ``folder``."""
    findings: list[Finding] = []
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.suffix == ".parquet":
            findings += scan_frame(pl.read_parquet(path), name)
        elif path.suffix == ".csv":
            findings += scan_frame(pl.read_csv(path, infer_schema=False), name)
        elif path.suffix == ".jsonl":
            findings += scan_json_lines(path.read_text(), name)
    return findings
