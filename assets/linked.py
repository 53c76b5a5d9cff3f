"""The linked zone: every accepted row assigned to a person, on pseudonyms only."""

import shutil
from pathlib import Path

import dagster as dg
import duckdb

from assets.common import (
    CODE_VERSION,
    DATA_CLASS_TAGS,
    OWNERS,
    column_lineage,
    duckdb_table_metadata,
    json_metadata,
    pinned_copies,
    remove_other_pins,
)
from costing.sql import sql_text
from costing.versions import file_fingerprint, write_spine_version
from costing.years import transaction
from linkage.cascade import link_records, linkage_report
from pipelines.resources import WAREHOUSE_POOL, IPCResource, KeyMismatchError
from schemas.sources import SOURCES

_SPECS = {
    "row_links": "Which person every accepted landing row belongs to, and the cascade "
    "stage that linked it (1 NHS number, 2 local id, 3 name + date of birth + sex, "
    "4 unlinked).",
    "person_spine": "One row per person: pseudonymous id, whether linked by NHS number, "
    "year of birth, sex and postcode district from their first accepted row.",
    "linkage_report": "Rows linked at each stage of the cascade, per source.",
}


_PSEUDONYMISED = [["pseudonymised", s.name] for s in SOURCES]
_ATTRIBUTES = ("birth_year", "born_after_1_april", "sex", "postcode_district")
#: How a row's person is found (the linkage cascade over the keyed pseudonyms), and the
#: minimised attributes it carries.
_ROW_LINKS_LINEAGE = column_lineage(
    {
        "person_id": [
            (key, column)
            for key in _PSEUDONYMISED
            for column in ("nhs_pseudo", "local_id_pseudo", "demo_token")
        ],
        "row_id": [(key, "row_id") for key in _PSEUDONYMISED],
        **{column: [(key, column) for key in _PSEUDONYMISED] for column in _ATTRIBUTES},
    }
)
#: A person's attributes are those of their first accepted row.
_SPINE_LINEAGE = column_lineage(
    {column: [(["linked", "row_links"], column)] for column in ("person_id", *_ATTRIBUTES)}
)


def _link_pinned(con: duckdb.DuckDBPyConnection, pinned: Path) -> tuple[str, str]:
    """Point the warehouse's pseudonymised views at the pinned files and link them, in
    the caller's transaction. Returns the key id and the spine's version."""
    con.execute("CREATE SCHEMA IF NOT EXISTS pseudonymised")
    for spec in SOURCES:
        # A view over the step's Parquet, not a copy: DuckDB scans Parquet about as fast
        # as its own tables, and copying millions of rows cost more than linking.
        path = sql_text(str((pinned / f"{spec.name}.parquet").resolve()))
        kind = con.execute(
            "SELECT table_type FROM information_schema.tables "
            "WHERE table_schema = 'pseudonymised' AND table_name = ?",
            [spec.name],
        ).fetchall()
        if kind and kind[0][0] == "BASE TABLE":  # a warehouse from before views
            con.execute(f"DROP TABLE pseudonymised.{spec.name}")
        con.execute(
            f"CREATE OR REPLACE VIEW pseudonymised.{spec.name} AS "
            f"SELECT * FROM read_parquet({path})"
        )
    con.execute(
        "CREATE OR REPLACE TABLE pseudonymised.ingest_report AS "
        "SELECT * EXCLUDE (quarantine_reasons, extra_columns) "
        "FROM read_json(?, union_by_name = true)",
        [[str(pinned / f"{s.name}.report.json") for s in SOURCES]],
    )
    key_ids = [
        r[0]
        for r in con.execute("SELECT DISTINCT key_id FROM pseudonymised.ingest_report").fetchall()
    ]
    if len(key_ids) != 1:
        raise KeyMismatchError(
            f"the pseudonymised sources were made under {len(key_ids)} different keys "
            f"({', '.join(sorted(key_ids))}); rematerialise every pseudonymised asset "
            "with the current key"
        )
    link_records(con)
    # The spine's version: a digest of the pseudonymised files it was linked from (any
    # changed row is a new version). Every financial year costed records it; the exports
    # refuse years costed against another.
    spine_version = file_fingerprint(
        [pinned / f"{s.name}.{suffix}" for s in SOURCES for suffix in ("parquet", "report.json")]
    )
    write_spine_version(con, spine_version)
    return key_ids[0], spine_version


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["linked", name],
            group_name="linked",
            description=text,
            owners=OWNERS,
            kinds={"duckdb"},
            tags=DATA_CLASS_TAGS["pseudonymised"],
            code_version=CODE_VERSION,
            deps=[["pseudonymised", s.name] for s in SOURCES],
        )
        for name, text in _SPECS.items()
    ],
    pool=WAREHOUSE_POOL,
)
def linked_tables(context: dg.AssetExecutionContext, ipc: IPCResource):
    """Load the pseudonymised Parquet into DuckDB and run the linkage cascade.

    The warehouse reads the pseudonymised files through copies pinned when they are
    linked (hard links in ``pseudonymised/linked-*``), and the views, the links and the
    spine's version change in one transaction. A later run whose pseudonymisation of
    one source succeeds while another's fails replaces the step's own files, never what
    the warehouse was linked from: the warehouse stays as the last successful link left
    it. The keyed fingerprints are pinned the same way, so the leak scans keep knowing
    the identifiers of the data the warehouse holds."""
    settings = ipc.settings()
    folder = settings.warehouse_dir / "pseudonymised"
    fingerprints = settings.restricted_dir / "fingerprints"
    inputs = [
        folder / f"{s.name}.{suffix}" for s in SOURCES for suffix in ("parquet", "report.json")
    ]
    pinned = pinned_copies(inputs, folder)
    pinned_fingerprints = pinned_copies(sorted(fingerprints.glob("*.parquet")), fingerprints)
    linked = False
    try:
        with ipc.warehouse_connection() as con:
            with transaction(con):
                key_id, spine_version = _link_pinned(con, pinned)
            linked = True
            report = linkage_report(con)
            row_links = duckdb_table_metadata(con, "linked.row_links")
            spine = duckdb_table_metadata(con, "linked.person_spine")
            report_table = duckdb_table_metadata(con, "linked.linkage_report")
    finally:
        # Keep the pins the warehouse reads now: the new ones once linked, else the old.
        for parent, made in ((folder, pinned), (fingerprints, pinned_fingerprints)):
            if linked:
                remove_other_pins(parent, keep=made)
            else:
                shutil.rmtree(made, ignore_errors=True)
    yield dg.MaterializeResult(
        asset_key=["linked", "row_links"],
        metadata=row_links | {"key_id": key_id, "dagster/column_lineage": _ROW_LINKS_LINEAGE},
    )
    yield dg.MaterializeResult(
        asset_key=["linked", "person_spine"],
        metadata=spine | {"spine_version": spine_version, "dagster/column_lineage": _SPINE_LINEAGE},
    )
    yield dg.MaterializeResult(
        asset_key=["linked", "linkage_report"],
        metadata=report_table | {"by_source": json_metadata(report)},
    )
