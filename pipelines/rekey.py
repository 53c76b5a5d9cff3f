"""Re-keying: move the warehouse and exports from one secret key to another.

Pseudonyms are keyed hashes, so they cannot be converted without the identifiers: a
rekey re-runs the pipeline from the landing files under the new key (which the key-id
guard allows only for this run), then pairs each landing row's old and new person id.
That mapping is the one place old and new pseudonyms meet; it is written only to the
restricted zone. Re-key with the same landing files the warehouse was built from.
"""

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipelines.settings import Settings
from pseudonymise.keys import Keyring, read_key_file


class RekeyError(RuntimeError):
    """The rekey cannot start: wrong old key, same key twice, or no warehouse."""


@dataclass(frozen=True)
class RekeyPlan:
    settings: Settings
    old_key_id: str
    new_key_id: str
    old_links: pl.DataFrame


def _key_id(path: Path) -> str:
    secret, _ = read_key_file(path)
    return Keyring.from_secret(secret).key_id


def warehouse_key_ids(settings: Settings) -> set[str]:
    """Key ids recorded beside the pseudonymised tables."""
    import json

    folder = settings.warehouse_dir / "pseudonymised"
    return {json.loads(p.read_text()).get("key_id", "") for p in folder.glob("*.report.json")}


def prepare_rekey(old_key_file: Path, new_key_file: Path) -> RekeyPlan:
    settings = Settings.from_env()
    old_id, new_id = _key_id(old_key_file), _key_id(new_key_file)
    if old_id == new_id:
        raise RekeyError("the old and new key files hold the same key")
    built_with = warehouse_key_ids(settings)
    if built_with != {old_id}:
        raise RekeyError(
            f"the warehouse was built with key id(s) {sorted(built_with) or 'none'}, "
            f"not {old_id}: --from must be the key it was built with"
        )
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        links = con.sql(
            "SELECT source, file, row_number, person_id AS old_person_id FROM linked.row_links"
        ).pl()
    finally:
        con.close()
    return RekeyPlan(settings, old_id, new_id, links)


def person_id_mapping(plan: RekeyPlan) -> pl.DataFrame:
    con = duckdb.connect(str(plan.settings.warehouse), read_only=True)
    try:
        new = con.sql(
            "SELECT source, file, row_number, person_id AS new_person_id FROM linked.row_links"
        ).pl()
    finally:
        con.close()
    return (
        plan.old_links.join(new, on=["source", "file", "row_number"], how="inner")
        .select("old_person_id", "new_person_id")
        .unique()
        .sort("old_person_id")
    )


def write_mapping(plan: RekeyPlan, mapping: pl.DataFrame) -> Path:
    folder = plan.settings.restricted_dir / "rekey"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{plan.old_key_id}-to-{plan.new_key_id}.parquet"
    mapping.write_parquet(path)
    path.chmod(0o600)
    return path
