"""What every asset module shares: owners, tags and metadata helpers.

Metadata holds counts, schemas and figures only - never a row value.
"""

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pyarrow.parquet as pq

OWNERS = ["team:ipc-finance-data"]

DATA_CLASS_TAGS = {
    "identifiable": {"data_class": "identifiable"},
    "pseudonymised": {"data_class": "pseudonymised"},
    "aggregate": {"data_class": "aggregate"},
    "reference": {"data_class": "reference"},
}

#: Bump when an asset's logic changes so the UI shows what has gone stale.
CODE_VERSION = "2026.12.1"


def table_schema(schema: pl.Schema | dict[str, Any]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name=name, type=str(dtype)) for name, dtype in schema.items()]
    )


def duckdb_table_metadata(
    con: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE"
) -> dict[str, Any]:
    """Row count (of the rows ``where`` selects) and column schema of a warehouse table,
    for the asset's metadata."""
    rows = con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchall()[0][0]
    columns = con.execute(f"DESCRIBE {table}").fetchall()
    return {
        "dagster/row_count": int(rows),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=c[0], type=str(c[1])) for c in columns]
        ),
        "dagster/table_name": table,
    }


def column_lineage(columns: dict[str, list[tuple[list[str], str]]]) -> dg.TableColumnLineage:
    """``dagster/column_lineage`` from {column: [(upstream asset key, its column), ...]}:
    which upstream columns each column is computed from, for an IG lead to trace."""
    return dg.TableColumnLineage(
        deps_by_column={
            column: [dg.TableColumnDep(asset_key=key, column_name=name) for key, name in deps]
            for column, deps in columns.items()
        }
    )


def json_metadata(value: Any) -> dg.JsonMetadataValue:
    return dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))


def write_parquet_atomically(frame: pl.DataFrame, path: Path) -> None:
    """Write next to the target, then rename: a failed run leaves the old file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    frame.write_parquet(tmp, compression="zstd")
    tmp.replace(path)


@contextlib.contextmanager
def parquet_written_atomically(path: Path) -> Iterator[Callable[[pl.DataFrame], None]]:
    """A sink that appends frames (same schema, in order) to one Parquet file, written
    next to the target and renamed into place only when the block ends without error:
    a failed run leaves the old file whole, and no frame is held after it is written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    writer: pq.ParquetWriter | None = None

    def write(frame: pl.DataFrame) -> None:
        nonlocal writer
        table = frame.to_arrow()
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
        writer.write_table(table)

    try:
        yield write
        if writer is None:
            raise ValueError(f"nothing was written for {path.name}")
        writer.close()
        tmp.replace(path)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)


#: Folders of pinned inputs start with this (see :func:`pinned_copies`).
PINNED_PREFIX = "linked-"


def pinned_copies(files: Sequence[Path], folder: Path) -> Path:
    """Hard links to ``files`` (copies where the file system has none) in a new folder
    ``folder/linked-<random>``. A step that replaces a file renames a new one into
    place, so the pinned copy keeps what was there: whoever reads the pinned folder sees
    the files as they were when it was made, whatever a later or failed run writes."""
    pinned = folder / f"{PINNED_PREFIX}{secrets.token_hex(6)}"
    pinned.mkdir(parents=True)
    try:
        for path in files:
            if not path.is_file():
                raise FileNotFoundError(f"{path.name} is missing from {path.parent}")
            try:
                os.link(path, pinned / path.name)
            except OSError:
                shutil.copy2(path, pinned / path.name)
    except BaseException:
        shutil.rmtree(pinned, ignore_errors=True)
        raise
    return pinned


def remove_other_pins(folder: Path, keep: Path) -> None:
    """Remove the pinned folders under ``folder`` other than ``keep``."""
    for old in folder.glob(f"{PINNED_PREFIX}*"):
        if old.is_dir() and old.resolve() != keep.resolve():
            shutil.rmtree(old, ignore_errors=True)


def write_json_atomically(value: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str))
    tmp.replace(path)
