"""Dagster resources: the pipeline's settings, its key and its DuckDB warehouse.

Settings are read from the ``IPC_*`` environment when a step runs (never at import
time); a field set on the resource overrides the variable of the same name, which
is how tests and the UI's launchpad point a run somewhere else. The key file's
contents are read only inside :meth:`IPCResource.keyring`.
"""

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from pipelines.rekey import warehouse_key_ids
from pipelines.settings import Settings
from pseudonymise.keys import Keyring, load_secret
from schemas.reference import read_settings

#: Every asset that opens the warehouse runs in this pool (limit 1 in dagster.yaml):
#: DuckDB allows one writing process per database file.
WAREHOUSE_POOL = "duckdb_warehouse"

#: DuckDB's own default is 80% of the machine's memory; capped, it spills large sorts
#: and joins to `<warehouse>.tmp/` instead, so a whole site's run stays within a
#: laptop's means beside the Python side of the step (benchmarks/results.md).
WAREHOUSE_MEMORY_LIMIT = "3GB"

#: How long a step waits for a process outside the pool to let go of the warehouse (a run
#: on another Dagster instance, `ipc rekey`, an analyst's DuckDB session) before failing
#: with DuckDB's lock error. Steps of runs on one instance never wait here.
WAREHOUSE_LOCK_WAIT_SECONDS = 60.0


def connect_warehouse(path: Path, **kwargs: Any) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect``, waiting while another process holds the file's lock."""
    deadline = time.monotonic() + WAREHOUSE_LOCK_WAIT_SECONDS
    waiting = False
    while True:
        try:
            return duckdb.connect(str(path), **kwargs)
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc) or time.monotonic() >= deadline:
                raise
            if not waiting:
                dg.get_dagster_logger().warning(f"waiting for the warehouse: {exc}")
                waiting = True
            time.sleep(0.5)


class KeyMismatchError(RuntimeError):
    """The key in use is not the one the warehouse was built with."""


def legacy_recipients(settings: Settings) -> dict[str, dict[str, Any]]:
    """Recipients configured for Open Pseudonymiser ids in settings.yaml (and named in
    IPC_RECIPIENTS): name -> {salt_file: ...}. The salt itself lives in its own file."""
    configured = read_settings(settings.reference_dir / "settings.yaml")[
        "recipients_open_pseudonymiser"
    ]
    legacy = {name: cfg for name, cfg in configured.items() if name in settings.recipients}
    for name, cfg in legacy.items():
        if not isinstance(cfg, dict) or not isinstance(cfg.get("salt_file"), str):
            raise ValueError(
                f"settings.yaml: recipients_open_pseudonymiser.{name} needs `salt_file: PATH` "
                "(the salt is read from that file, never written in configuration)"
            )
    return legacy


class IPCResource(dg.ConfigurableResource):
    """Where the pipeline reads and writes, and which key it pseudonymises with."""

    landing_dir: str | None = None
    reference_dir: str | None = None
    warehouse: str | None = None
    export_dir: str | None = None
    restricted_dir: str | None = None
    key_file: str | None = None
    period_start: str | None = None
    period_end: str | None = None
    environment: str | None = None
    recipients: str | None = None
    #: Set only by `ipc rekey`: the key id the warehouse may have been built with.
    rekey_from_key_id: str | None = None

    def settings(self) -> Settings:
        overrides = {
            "IPC_LANDING_DIR": self.landing_dir,
            "IPC_REFERENCE_DIR": self.reference_dir,
            "IPC_WAREHOUSE": self.warehouse,
            "IPC_EXPORT_DIR": self.export_dir,
            "IPC_RESTRICTED_DIR": self.restricted_dir,
            "IPC_KEY_FILE": self.key_file,
            "IPC_PERIOD_START": self.period_start,
            "IPC_PERIOD_END": self.period_end,
            "IPC_ENV": self.environment,
            "IPC_RECIPIENTS": self.recipients,
        }
        env = dict(os.environ) | {k: v for k, v in overrides.items() if v is not None}
        return Settings.from_env(env)

    def keyring(self) -> Keyring:
        settings = self.settings()
        secret = load_secret(
            settings.key_file,
            environment=settings.environment,
            demo_key_path=settings.demo_key_path,
        )
        return Keyring.from_secret(secret)

    def checked_keyring(self) -> Keyring:
        """The keyring, refused if the warehouse was built with another key (unless
        this run is the rekey from that key)."""
        keyring = self.keyring()
        built_with = warehouse_key_ids(self.settings())
        allowed = {keyring.key_id, self.rekey_from_key_id} - {None}
        unexpected = built_with - allowed
        if unexpected:
            raise KeyMismatchError(
                f"the warehouse was built with key id {', '.join(sorted(unexpected))} but "
                f"the current key's id is {keyring.key_id}; use `ipc rekey --from OLD_KEY "
                "--to NEW_KEY` to move to a new key (or point IPC_WAREHOUSE at a new one)"
            )
        return keyring

    @contextlib.contextmanager
    def warehouse_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the DuckDB warehouse, closed however the block ends."""
        path = self.settings().warehouse
        path.parent.mkdir(parents=True, exist_ok=True)
        con = connect_warehouse(path, config={"memory_limit": WAREHOUSE_MEMORY_LIMIT})
        try:
            yield con
        finally:
            con.close()
