"""Write the whole delivery of data-contract.md section 4, check it, then publish it.

The export is written into a fresh folder, scanned for identifiers and checked for
disclosure control and against the export schemas; only then does the export dir
switch to it. Any failure leaves the previous export as it was.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandera.polars as pa
import polars as pl
import pyarrow as pa_arrow
import pyarrow.parquet as pq

from costing.disclosure import DisclosureRule, k_anonymise
from costing.period import fy_file_label
from delivery import tables
from delivery.manifest import write_manifest
from delivery.scan import Finding, scan_frame, scan_json_lines
from delivery.writer import staged_export
from pseudonymise.open_pseudonymiser import WEAKER_THAN_DEFAULT
from schemas.exports import EXPORT_MODELS

KEYED_PSEUDONYMS = (
    "keyed: person_id is HMAC-SHA256 under a key derived for this recipient alone "
    "(128 bits shown); no other recipient's ids can be joined to these"
)

#: A financial year's activity file is split into parts above this many rows.
ACTIVITY_ROWS_PER_FILE = 5_000_000
#: Activity is read, re-keyed, written and checked this many rows at a time.
ACTIVITY_BATCH_ROWS = 2_000_000


class _PartedParquet:
    """One year's activity file, or its parts ``<label>-<n>.parquet`` of at most
    ACTIVITY_ROWS_PER_FILE rows each when ``parts`` > 1, written batch by batch."""

    def __init__(self, folder: Path, label: str, parts: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.label, self.parts = folder, label, parts
        self.part = 0
        self.rows_in_part = 0
        self.writer: pq.ParquetWriter | None = None

    def _next_writer(self, schema: pa_arrow.Schema) -> pq.ParquetWriter:
        if self.writer is not None:
            self.writer.close()
        self.part += 1
        name = f"{self.label}.parquet" if self.parts == 1 else f"{self.label}-{self.part}.parquet"
        self.rows_in_part = 0
        self.writer = pq.ParquetWriter(self.folder / name, schema, compression="zstd")
        return self.writer

    def write(self, frame: pl.DataFrame) -> None:
        while frame.height:
            writer = self.writer
            if writer is None or self.rows_in_part == ACTIVITY_ROWS_PER_FILE:
                writer = self._next_writer(frame.to_arrow().schema)
            take = min(frame.height, ACTIVITY_ROWS_PER_FILE - self.rows_in_part)
            writer.write_table(frame.slice(0, take).to_arrow())
            self.rows_in_part += take
            frame = frame.slice(take)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class ExportCheckError(RuntimeError):
    """The export failed a check before it was published; nothing was replaced."""


@dataclass
class ExportSummary:
    export_dir: Path
    files: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)
    recipients: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    k_anonymity: dict[str, Any] = field(default_factory=dict)
    identifier_findings: int = 0


def _parquet(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path, compression="zstd")


def _csv(frame: pl.DataFrame, path: Path) -> None:
    frame.write_csv(path)


def disclosure_problems(name: str, frame: pl.DataFrame, rule: DisclosureRule) -> list[str]:
    """Any published count of 1..threshold people, or one not rounded."""
    problems = []
    shown = frame.filter(pl.col("people").is_not_null())
    if shown.filter((pl.col("people") > 0) & (pl.col("people") <= rule.threshold)).height:
        problems.append(f"{name}: a row of 1-{rule.threshold} people is published")
    if shown.filter(pl.col("people") % rule.rounding != 0).height:
        problems.append(f"{name}: a published count is not rounded to {rule.rounding}")
    return problems


def schema_problems(name: str, frame: pl.DataFrame) -> list[str]:
    """Where an export breaks its pandera model: columns and checks, never values."""
    try:
        EXPORT_MODELS[name].validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.select("column", "check").unique().sort("column", "check")
        return [
            f"{name}: column {row['column']!r} fails {row['check']}"
            for row in cases.iter_rows(named=True)
        ]
    return []


def write_export(
    con: duckdb.DuckDBPyConnection,
    export_dir: Path,
    *,
    recipient_keys: dict[str, bytes],
    manifest_key: bytes,
    rule: DisclosureRule,
    k: int,
    cashable_settings: list[str],
    manifest_context: dict[str, Any],
    legacy_ids: dict[str, pl.DataFrame] | None = None,
    fingerprint_scan: Callable[[Path], list[str]] | None = None,
) -> ExportSummary:
    """Build every export file, check them, sign the manifests and publish atomically."""
    summary = ExportSummary(export_dir=export_dir, recipients=sorted(recipient_keys))
    checked_frames: dict[str, pl.DataFrame] = {}
    file_findings: list[Finding] = []  # in files checked as they were written
    file_problems: list[str] = []
    with staged_export(export_dir) as staging:
        person_costs = tables.person_costs(con)
        _parquet(person_costs, staging / "person_costs.parquet")
        reference_costs = tables.cohort_reference_costs(con, rule)
        _parquet(reference_costs, staging / "cohort_reference_costs.parquet")
        _csv(reference_costs, staging / "cohort_reference_costs.csv")
        bands = tables.cohort_funding_bands(con, rule)
        _parquet(bands, staging / "cohort_funding_bands.parquet")
        _csv(bands, staging / "cohort_funding_bands.csv")
        reconciliation = tables.reconciliation(con)
        _parquet(reconciliation, staging / "reconciliation.parquet")
        checked_frames |= {
            "person_costs": person_costs,
            "cohort_reference_costs": reference_costs,
            "cohort_funding_bands": bands,
            "reconciliation": reconciliation,
        }

        statements = tables.statements(con, cashable_settings)
        statement_dir = staging / "individual_statements"
        statement_dir.mkdir()
        statement_findings: list[Finding] = []
        years = sorted(person_costs["financial_year"].unique().to_list())
        for year in years:
            lines = [json.dumps(s) for s in statements if s["financial_year"] == year]
            text = "".join(line + "\n" for line in lines)
            (statement_dir / f"{fy_file_label(year)}.jsonl").write_text(text)
            statement_findings += scan_json_lines(text, f"individual_statements/{year}")
            del lines, text
        statement_count = len(statements)
        del statements  # hundreds of thousands of small objects: not kept for what follows
        summary.rows |= {
            "person_costs": person_costs.height,
            "cohort_reference_costs": reference_costs.height,
            "cohort_funding_bands": bands.height,
            "individual_statements": statement_count,
            "reconciliation": reconciliation.height,
        }
        summary.suppressed = {
            "cohort_reference_costs": int(reference_costs["suppressed"].sum()),
            "cohort_funding_bands": int(bands["suppressed"].sum()),
        }

        persons_all, k_report = k_anonymise(tables.linked_persons(con), k)
        summary.k_anonymity = k_report.as_manifest()
        years = tables.linked_activity_years(con)
        legacy_ids = legacy_ids or {}
        recipient_ids = {
            recipient: tables.recipient_ids(con, key, legacy_ids.get(recipient))
            for recipient, key in sorted(recipient_keys.items())
        }
        activity_rows = dict.fromkeys(recipient_ids, 0)
        for year, rows in years:
            # Every recipient's files are cut from the same ordered stream, one batch at
            # a time, and checked as they are written: memory stays one batch's.
            parts = max(1, -(-rows // ACTIVITY_ROWS_PER_FILE))
            writers = {
                recipient: _PartedParquet(
                    staging / "linked" / recipient / "activity", fy_file_label(year), parts
                )
                for recipient in recipient_ids
            }
            for copies in tables.linked_activity_batches(
                con, year, ACTIVITY_BATCH_ROWS, recipient_ids
            ):
                for recipient, rekeyed in copies.items():
                    writers[recipient].write(rekeyed)
                    activity_rows[recipient] += rekeyed.height
                    name = f"{recipient}/activity/{fy_file_label(year)}"
                    file_findings += scan_frame(rekeyed, name)
                    file_problems += schema_problems("activity", rekeyed)
            for writer in writers.values():
                writer.close()
        for recipient, key in sorted(recipient_keys.items()):
            folder = staging / "linked" / recipient
            (folder / "activity").mkdir(parents=True, exist_ok=True)
            persons = tables.rekey_for_recipient(persons_all, key, legacy_ids.get(recipient))
            _parquet(persons, folder / "persons.parquet")
            checked_frames[f"{recipient}/persons"] = persons
            summary.rows[f"linked/{recipient}/activity"] = activity_rows[recipient]
            summary.rows[f"linked/{recipient}/persons"] = persons.height
            if activity_rows[recipient] != sum(rows for _, rows in years):
                file_problems.append(
                    f"linked/{recipient}/activity: {activity_rows[recipient]} rows written "
                    f"but {sum(rows for _, rows in years)} accepted activities"
                )

        findings = (
            statement_findings
            + file_findings
            + [
                finding
                for name, frame in checked_frames.items()
                for finding in scan_frame(frame, name)
            ]
        )
        problems = [str(f) for f in findings]
        if fingerprint_scan is not None:
            problems += fingerprint_scan(staging)
        summary.identifier_findings = len(problems)
        for name, frame in checked_frames.items():
            problems += schema_problems(name.split("/")[-1], frame)
        problems += file_problems
        problems += disclosure_problems("cohort_reference_costs", reference_costs, rule)
        problems += disclosure_problems("cohort_funding_bands", bands, rule)
        if k_report.groups_below_k:
            problems.append(
                f"linked persons: {k_report.groups_below_k} group(s) smaller than k={k} remain"
            )
        if problems:
            raise ExportCheckError(
                "the export was not published; it failed these checks: " + "; ".join(problems)
            )

        disclosure = rule.as_manifest() | {
            "suppressed_rows": summary.suppressed,
            "k_anonymity": summary.k_anonymity,
        }
        for recipient in sorted(recipient_keys):
            write_manifest(
                staging / "linked" / recipient,
                manifest_key=manifest_key,
                context=manifest_context
                | {
                    "recipient": recipient,
                    "pseudonymisation": (
                        f"open_pseudonymiser where an NHS number links the person, else keyed: "
                        f"{WEAKER_THAN_DEFAULT}"
                        if recipient in legacy_ids
                        else KEYED_PSEUDONYMS
                    ),
                    "disclosure": disclosure,
                },
            )
        summary.manifest = write_manifest(
            staging,
            manifest_key=manifest_key,
            context=manifest_context | {"disclosure": disclosure, "recipients": summary.recipients},
            exclude=("linked",),
        )
        summary.files = sum(1 for p in staging.rglob("*") if p.is_file())
    return summary
