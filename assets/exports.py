"""The exports: everything that leaves the pipeline, written and published at once.

One step builds every file of data-contract.md section 4 in a new folder, checks it
(no identifiers, disclosure control, schemas), signs the manifests and then swaps
the export dir to it, so readers never see a mix of two runs and a failed run leaves
the previous export untouched.
"""

import json
from pathlib import Path

import dagster as dg
import polars as pl

from assets.common import CODE_VERSION, DATA_CLASS_TAGS, OWNERS, json_metadata
from assets.costing import check_years_for_export
from costing.disclosure import DisclosureRule, k_from_settings
from delivery import tables
from delivery.audit import DIGITS_LOCAL_ID, EXPORT_KINDS, Scanner
from delivery.export import disclosure_problems, write_export
from delivery.manifest import verify_manifest
from pipelines.resources import WAREHOUSE_POOL, IPCResource, KeyMismatchError, legacy_recipients
from pseudonymise.fingerprints import fingerprint_files, fingerprint_key, read_fingerprints
from pseudonymise.keys import Keyring
from pseudonymise.open_pseudonymiser import WEAKER_THAN_DEFAULT

_EXPORTS = {
    "person_costs": (
        "pseudonymised",
        "person_costs.parquet: each person's costs by setting and year under the "
        "commissioner's internal pseudonym, for the finance team.",
    ),
    "individual_statements": (
        "pseudonymised",
        "individual_statements/<year>.jsonl: one Individual Statement of Resources per "
        "person in an IPC cohort, for care coordinators.",
    ),
    "cohort_reference_costs": (
        "aggregate",
        "cohort_reference_costs.parquet/.csv: annual average costs per cohort after "
        "disclosure control; fit to publish.",
    ),
    "cohort_funding_bands": (
        "aggregate",
        "cohort_funding_bands.parquet/.csv: banded funding levels per cohort after "
        "disclosure control; fit to publish.",
    ),
    "reconciliation": (
        "aggregate",
        "reconciliation.parquet: rows and pounds in and out of every stage, per source; "
        "an operational record with exact counts.",
    ),
    "linked_dataset": (
        "pseudonymised",
        "linked/<recipient>/: activity by month and persons by year, under pseudonyms "
        "that are different for every recipient, so two recipients cannot join copies.",
    ),
}

_COSTING_DEPS = [
    ["costing", name]
    for name in (
        "person_costs",
        "cohort_membership",
        "cohort_reference_costs",
        "funding_bands",
        "statements",
        "reconciliation",
    )
]


class _FingerprintScan:
    """Look for any identifier the pseudonymisation step fingerprinted, in every cell of
    the staged export (exact dates of birth included), before it is published.

    Every kind found blocks the export but one: a local id of fewer than ten digits
    and nothing else (:data:`DIGITS_LOCAL_ID`). Any number may equal one by chance (a
    site whose client ids are plain integers has an id 2024, and every export says
    2024/25), so those are kept in :attr:`possible_coincidences` for the check's
    metadata and the log, to be judged, not to stop the run.
    """

    def __init__(self, restricted_dir: Path, keyring: Keyring) -> None:
        self.paths = fingerprint_files(restricted_dir)
        self.keyring = keyring
        self.possible_coincidences: list[str] = []

    def __call__(self, folder: Path) -> list[str]:
        # Loaded only now: at a site's scale the fingerprints take a gigabyte or two.
        scanner = Scanner(read_fingerprints(self.paths), fingerprint_key(self.keyring))
        findings = scanner.scan_tree(folder, EXPORT_KINDS)
        self.possible_coincidences = [str(f) for f in findings if f.kind == DIGITS_LOCAL_ID]
        return [str(f) for f in findings if f.kind != DIGITS_LOCAL_ID]


def _check(asset: str, name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=["exports", asset], blocking=True, description=description)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["exports", name],
            group_name="exports",
            description=text,
            owners=OWNERS,
            kinds={"parquet"},
            tags=DATA_CLASS_TAGS[data_class],
            code_version=CODE_VERSION,
            deps=_COSTING_DEPS,
        )
        for name, (data_class, text) in _EXPORTS.items()
    ],
    check_specs=[
        _check(
            "cohort_reference_costs",
            "disclosure_control",
            "No published row describes 1-7 people; every count shown is rounded to 5.",
        ),
        _check(
            "cohort_funding_bands",
            "disclosure_control",
            "Bands are published five together or not at all; no band of 1-7 people.",
        ),
        _check(
            "linked_dataset",
            "no_identifiers",
            "No cell in any exported file is shaped like an NHS number, a full postcode or "
            "an exact date, no column is a raw identifier, and no value matches the keyed "
            "fingerprint of any identifier read from the landing files.",
        ),
        _check(
            "linked_dataset",
            "k_anonymity",
            "In every recipient's persons file, each (age band, sex, postcode district) "
            "group of a financial year holds at least k people.",
        ),
        _check(
            "person_costs",
            "manifests_verify",
            "Every manifest's signature and every file's SHA-256 verify.",
        ),
    ],
    pool=WAREHOUSE_POOL,
)
def exports(context: dg.AssetExecutionContext, ipc: IPCResource):
    """Build, check, sign and publish the whole export."""
    settings = ipc.settings()
    keyring = ipc.keyring()
    with ipc.warehouse_connection() as con:
        warehouse_keys = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT key_id FROM pseudonymised.ingest_report"
            ).fetchall()
        ]
        if warehouse_keys != [keyring.key_id]:
            raise KeyMismatchError(
                f"the warehouse was built with key {', '.join(warehouse_keys)} but the "
                f"current key is {keyring.key_id}; rematerialise from the pseudonymised "
                "assets (or rekey) before exporting"
            )
        reference_settings = json.loads(
            con.execute(
                "SELECT content FROM reference.documents WHERE name = 'settings'"
            ).fetchall()[0][0]
        )
        # Every financial year, each costed against the current spine, prices and
        # period; else refuse, naming the years (costing/versions.py).
        financial_years = check_years_for_export(con, settings)
        rule = DisclosureRule.from_settings(reference_settings)
        period = con.execute("SELECT * FROM costing.period").fetchall()[0]
        reconciliation = con.sql("SELECT * FROM costing.reconciliation").pl()
        quarantine = {
            str(r["source"]): int(r["rows_quarantined"]) for r in reconciliation.to_dicts()
        }
        context_fields = {
            "run_id": context.run.run_id,
            "environment": settings.environment,
            "key_id": keyring.key_id,
            "rekeyed_from_key_id": ipc.rekey_from_key_id,
            "period": {"start": str(period[0]), "end": str(period[1])},
            "rows_in_out": reconciliation.select(
                "source", "rows_read", "rows_accepted", "rows_quarantined", "rows_replaced"
            ).to_dicts(),
            "quarantine_counts": quarantine,
        }
        fingerprint_scan = _FingerprintScan(settings.restricted_dir, keyring)
        legacy_ids = {}
        for recipient in legacy_recipients(settings):
            folder = settings.restricted_dir / "open_pseudonymiser" / recipient
            digests = pl.read_parquet(folder / "*.parquet") if folder.is_dir() else None
            if digests is not None:
                legacy_ids[recipient] = tables.legacy_person_ids(con, digests)
        summary = write_export(
            con,
            settings.export_dir,
            recipient_keys={r: keyring.recipient(r) for r in settings.recipients},
            manifest_key=keyring.purpose("manifest"),
            rule=rule,
            k=k_from_settings(reference_settings),
            cashable_settings=reference_settings["cashable_settings"],
            manifest_context=context_fields,
            legacy_ids=legacy_ids,
            fingerprint_scan=fingerprint_scan,
        )
    export_dir = settings.export_dir
    context.log.info(f"export published at {export_dir} ({summary.files} files)")
    if fingerprint_scan.possible_coincidences:
        context.log.warning(
            "numbers in the export equal short all-digit local ids (not blocking: any "
            "number may equal one; see the no_identifiers check): "
            + "; ".join(fingerprint_scan.possible_coincidences)
        )
    rows = summary.rows
    yield dg.MaterializeResult(
        asset_key=["exports", "person_costs"],
        metadata={
            "dagster/row_count": rows["person_costs"],
            "path": str(export_dir / "person_costs.parquet"),
            "key_id": keyring.key_id,
            "financial_years": json_metadata(financial_years),
        },
    )
    yield dg.MaterializeResult(
        asset_key=["exports", "individual_statements"],
        metadata={"dagster/row_count": rows["individual_statements"]},
    )
    yield dg.MaterializeResult(
        asset_key=["exports", "cohort_reference_costs"],
        metadata={
            "dagster/row_count": rows["cohort_reference_costs"],
            "rows_suppressed": summary.suppressed["cohort_reference_costs"],
        },
    )
    yield dg.MaterializeResult(
        asset_key=["exports", "cohort_funding_bands"],
        metadata={
            "dagster/row_count": rows["cohort_funding_bands"],
            "rows_suppressed": summary.suppressed["cohort_funding_bands"],
        },
    )
    yield dg.MaterializeResult(
        asset_key=["exports", "reconciliation"],
        metadata={"dagster/row_count": rows["reconciliation"]},
    )
    yield dg.MaterializeResult(
        asset_key=["exports", "linked_dataset"],
        metadata={
            "recipients": summary.recipients,
            "open_pseudonymiser_recipients": dg.MetadataValue.md(
                "\n".join(f"- **{r}**: {WEAKER_THAN_DEFAULT}" for r in legacy_ids) or "none"
            ),
            "k_anonymity": json_metadata(summary.k_anonymity),
            "rows": json_metadata({k: v for k, v in rows.items() if k.startswith("linked/")}),
        },
    )

    # The published export, checked again where readers find it.
    for asset in ("cohort_reference_costs", "cohort_funding_bands"):
        frame = pl.read_parquet(export_dir / f"{asset}.parquet")
        problems = disclosure_problems(asset, frame, rule)
        yield dg.AssetCheckResult(
            asset_key=["exports", asset],
            check_name="disclosure_control",
            passed=not problems,
            metadata={"problems": json_metadata(problems)},
        )
    # Every file was scanned before it was published; the manifests (checked below)
    # prove the published bytes are the ones scanned.
    yield dg.AssetCheckResult(
        asset_key=["exports", "linked_dataset"],
        check_name="no_identifiers",
        passed=summary.identifier_findings == 0,
        metadata={
            "identifier_shaped_values_found": summary.identifier_findings,
            "possible_coincidences": json_metadata(fingerprint_scan.possible_coincidences),
        },
    )
    k = k_from_settings(reference_settings)
    smallest = []
    for recipient in summary.recipients:
        persons = pl.read_parquet(export_dir / "linked" / recipient / "persons.parquet")
        sizes = persons.group_by("financial_year", "age_band", "sex", "postcode_district").len()
        smallest.append(int(sizes.select(pl.col("len").min().fill_null(0)).item()))
    yield dg.AssetCheckResult(
        asset_key=["exports", "linked_dataset"],
        check_name="k_anonymity",
        passed=all(n >= k for n in smallest),
        metadata={"k": k, "smallest_group": min(smallest, default=0)},
    )
    manifest_key = keyring.purpose("manifest")
    manifest_problems = verify_manifest(export_dir, manifest_key)
    for recipient in summary.recipients:
        manifest_problems += verify_manifest(export_dir / "linked" / recipient, manifest_key)
    yield dg.AssetCheckResult(
        asset_key=["exports", "person_costs"],
        check_name="manifests_verify",
        passed=not manifest_problems,
        metadata={"problems": json_metadata(manifest_problems)},
    )
