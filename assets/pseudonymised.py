"""Landing extracts and their pseudonymised copies: one asset per source.

The pseudonymisation step is the only code that reads raw identifiers. It writes the
accepted rows, holding pseudonyms and minimised attributes only, as Parquet in the
warehouse zone, and the quarantine (file, row, reasons, pseudonyms) in the
restricted zone. Steps run in parallel: none of them opens the DuckDB file.
"""

from pathlib import Path

import dagster as dg
import polars as pl

from assets.common import (
    CODE_VERSION,
    DATA_CLASS_TAGS,
    OWNERS,
    json_metadata,
    parquet_written_atomically,
    table_schema,
    write_json_atomically,
    write_parquet_atomically,
)
from delivery.scan import scan_frame
from pipelines.resources import IPCResource, legacy_recipients
from pseudonymise.fingerprints import fingerprint_key, write_fingerprints
from pseudonymise.open_pseudonymiser import read_salt_file
from pseudonymise.source import pseudonymise_source
from schemas.sources import SOURCES, SourceSpec


def landing_spec(spec: SourceSpec) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=["landing", spec.name],
        group_name="landing",
        description=(
            f"The site's raw `{spec.file_name}` extract (or a folder `{spec.name}/` of "
            "CSV files): identifiable data, read only by the pseudonymisation step."
        ),
        owners=OWNERS,
        kinds={"csv"},
        tags=DATA_CLASS_TAGS["identifiable"],
    )


class _IdentifierCheck:
    """The no_raw_identifiers check over the accepted rows, chunk by chunk as written.

    The source's own activity ids (and their copy, ``record_id``) are passed through as
    the site sent them and are not judged by shape: a ten-digit spell number is not an
    NHS number. `ipc audit-scan` still compares every warehouse cell, ids included, with
    the delivery's real identifiers (by keyed fingerprint).
    """

    def __init__(self, spec: SourceSpec) -> None:
        self.source = spec.name
        self.passed_through = {spec.record_id_column or "record_id", "record_id"}
        self.findings: list[str] = []

    def scan(self, frame: pl.DataFrame) -> None:
        judged = frame.drop([c for c in frame.columns if c in self.passed_through])
        self.findings += [
            str(f)
            for f in scan_frame(judged, f"pseudonymised/{self.source}")
            if f.kind in ("raw identifier column", "nhs_number", "full_postcode")
        ]

    def result(self) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            check_name="no_raw_identifiers",
            passed=not self.findings,
            metadata={"findings": json_metadata(self.findings)},
        )


def build_pseudonymised_asset(spec: SourceSpec) -> dg.AssetsDefinition:
    key = dg.AssetKey(["pseudonymised", spec.name])

    @dg.asset(
        key=key,
        deps=[dg.AssetKey(["landing", spec.name])],
        group_name="pseudonymised",
        owners=OWNERS,
        kinds={"polars", "parquet"},
        tags=DATA_CLASS_TAGS["pseudonymised"],
        code_version=CODE_VERSION,
        description=(
            f"Accepted `{spec.name}` rows with every identifier replaced by keyed "
            "pseudonyms (HMAC-SHA256) and minimised attributes (year of birth, sex, "
            "postcode district). Rows that break the contract are quarantined in the "
            "restricted zone with reason codes and row numbers; nothing is dropped."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "rows_reconcile",
                asset=key,
                blocking=True,
                description="Rows read = rows accepted + rows quarantined.",
            ),
            dg.AssetCheckSpec(
                "no_raw_identifiers",
                asset=key,
                blocking=True,
                description=(
                    "No raw identifier column, and no cell shaped like an NHS number or "
                    "a full postcode, in the pseudonymised table."
                ),
            ),
        ],
    )
    def _pseudonymised(context: dg.AssetExecutionContext, ipc: IPCResource):
        settings = ipc.settings()
        keyring = ipc.checked_keyring()
        legacy = legacy_recipients(settings)
        salts = {name: read_salt_file(Path(cfg["salt_file"])) for name, cfg in legacy.items()}
        accepted_rows = 0
        accepted_schema: pl.Schema | None = None
        identifier_check = _IdentifierCheck(spec)

        def write_chunk(chunk: pl.DataFrame) -> None:
            nonlocal accepted_rows, accepted_schema
            write_accepted(chunk)
            identifier_check.scan(chunk)
            accepted_rows += chunk.height
            accepted_schema = chunk.schema

        accepted_path = settings.warehouse_dir / "pseudonymised" / f"{spec.name}.parquet"
        with parquet_written_atomically(accepted_path) as write_accepted:
            result = pseudonymise_source(
                settings.landing_dir,
                spec,
                keyring.linkage,
                salts,
                fingerprint_key(keyring),
                sink=write_chunk,
            )
        write_fingerprints(
            result.fingerprints, settings.restricted_dir / "fingerprints" / f"{spec.name}.parquet"
        )
        for recipient, digests in result.legacy_digests.items():
            write_parquet_atomically(
                digests,
                settings.restricted_dir / "open_pseudonymiser" / recipient / f"{spec.name}.parquet",
            )
        report = result.report
        write_parquet_atomically(
            result.quarantine, settings.restricted_dir / "quarantine" / f"{spec.name}.parquet"
        )
        write_json_atomically(
            report.as_dict() | {"key_id": keyring.key_id},
            settings.warehouse_dir / "pseudonymised" / f"{spec.name}.report.json",
        )
        context.log.info(
            f"{spec.name}: {report.rows_read} rows read, {report.rows_accepted} "
            f"accepted, {report.rows_quarantined} quarantined"
        )
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": accepted_rows,
                "dagster/column_schema": table_schema(accepted_schema or {}),
                "rows_read": report.rows_read,
                "rows_quarantined": report.rows_quarantined,
                "rows_replaced": report.rows_replaced,
                "encoding": report.encoding,
                "files": report.files,
                "quarantine_reasons": json_metadata(report.quarantine_reasons),
                "extra_columns_ignored": report.extra_columns,
                "key_id": keyring.key_id,
            }
        )
        reconciles = report.rows_read == report.rows_accepted + report.rows_quarantined
        yield dg.AssetCheckResult(
            check_name="rows_reconcile",
            passed=reconciles,
            metadata={
                "rows_read": report.rows_read,
                "rows_accepted": report.rows_accepted,
                "rows_quarantined": report.rows_quarantined,
            },
        )
        yield identifier_check.result()

    return _pseudonymised


LANDING_SPECS = [landing_spec(s) for s in SOURCES]
PSEUDONYMISED_ASSETS = [build_pseudonymised_asset(s) for s in SOURCES]
