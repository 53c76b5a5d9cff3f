"""Reference tables: tariffs, unit costs, block contracts, cohorts and settings.

Assets of their own, so that a changed price or cohort definition shows every cost
built on it as stale in the UI.
"""

import json

import dagster as dg

from assets.common import CODE_VERSION, DATA_CLASS_TAGS, OWNERS, duckdb_table_metadata
from pipelines.resources import WAREHOUSE_POOL, IPCResource
from schemas.reference import load_reference_tables

_TABLES = {
    "acute_tariff": "Acute tariff per financial year, HRG and point of delivery, with "
    "trim points and excess bed day prices.",
    "acute_pod_default": "Price per point of delivery, used when an HRG/POD pair is not "
    "in the tariff.",
    "unit_costs": "National unit costs for community, mental health and primary care "
    "activity, per contact or bed day.",
    "block_contracts": "Local block contracts: their value replaces the national unit "
    "cost for that provider and service (optional file).",
}
_DOCUMENTS = {
    "cohorts": "The cohort definitions (cohorts.yaml): who counts as an older person "
    "with long-term conditions, a child with complex needs, and so on.",
    "settings": "Cashable settings, disclosure threshold and k for k-anonymity "
    "(settings.yaml, every default documented).",
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["reference", name],
            group_name="reference",
            description=text,
            owners=OWNERS,
            kinds={"duckdb", "csv"},
            tags=DATA_CLASS_TAGS["reference"],
            code_version=CODE_VERSION,
        )
        for name, text in (_TABLES | _DOCUMENTS).items()
    ],
    pool=WAREHOUSE_POOL,
)
def reference_tables(context: dg.AssetExecutionContext, ipc: IPCResource):
    """Load and check every reference table into the warehouse's `reference` schema."""
    tables = load_reference_tables(ipc.settings().reference_dir)
    with ipc.warehouse_connection() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS reference")
        for name in _TABLES:
            frame = getattr(tables, name)
            con.register("incoming", frame.to_arrow())
            con.execute(f"CREATE OR REPLACE TABLE reference.{name} AS SELECT * FROM incoming")
            con.unregister("incoming")
            yield dg.MaterializeResult(
                asset_key=["reference", name],
                metadata=duckdb_table_metadata(con, f"reference.{name}"),
            )
        con.execute("CREATE OR REPLACE TABLE reference.documents (name VARCHAR, content VARCHAR)")
        con.execute(
            "INSERT INTO reference.documents VALUES ('cohorts', ?), ('settings', ?)",
            [tables.cohorts_yaml, json.dumps(tables.settings)],
        )
    yield dg.MaterializeResult(
        asset_key=["reference", "cohorts"],
        metadata={"cohorts.yaml": dg.MetadataValue.md(f"```yaml\n{tables.cohorts_yaml}\n```")},
    )
    yield dg.MaterializeResult(
        asset_key=["reference", "settings"],
        metadata={"settings": dg.MetadataValue.json(tables.settings)},
    )
