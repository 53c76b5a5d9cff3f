"""The Dagster instance: SQLite event log storage whose pool slots are claimed one
process at a time, and where an instance keeps its storage in a database.

Dagster keeps concurrency-pool slots in the instance's event log storage. Its SQL code
claims a slot by reading a free one and then updating it, relying on ``SELECT ... FOR
UPDATE`` to stop two processes taking the same slot. SQLite ignores ``FOR UPDATE``, so
two runs that ask at the same moment can both be granted the single `duckdb_warehouse`
slot; one then waits on DuckDB's file lock (``connect_warehouse``) instead of queueing
in the pool (seen in CI: about half of simultaneous claims on dagster 1.13.27). This
storage runs every read-then-write on the pool tables under an exclusive file lock
beside the SQLite files, which every process on the host using this DAGSTER_HOME shares.
PostgreSQL storage (dagster-postgres.yaml) honours ``FOR UPDATE`` and needs none of this.

dagster.yaml names it with ``base_dir: {env: DAGSTER_HOME}``: the instance folder, under
which the event logs live where Dagster's default SQLite storage puts them.
"""

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData

#: Where Dagster's default SQLite storage keeps event logs, under DAGSTER_HOME.
EVENT_LOG_FOLDER = os.path.join("history", "runs")
LOCK_FILE_NAME = "concurrency.lock"


class SerialisedPoolSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log storage; the pool bookkeeping holds a host-wide lock."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(os.path.join(base_dir, EVENT_LOG_FOLDER), inst_data=inst_data)
        self._lock_path = os.path.join(self._base_dir, LOCK_FILE_NAME)
        self._lock_guard = threading.RLock()
        self._lock_depth = 0
        self._lock_fd = -1

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> "SerialisedPoolSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    @contextlib.contextmanager
    def _pool_lock(self) -> Iterator[None]:
        """Exclusive across processes (flock), re-entrant within this one: freeing a slot
        assigns the next pending step, which takes the lock again."""
        with self._lock_guard:
            if self._lock_depth == 0:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    os.close(self._lock_fd)  # closing the descriptor releases the lock
                    self._lock_fd = -1

    def claim_concurrency_slot(
        self, concurrency_key: str, run_id: str, step_key: str, priority: int | None = None
    ) -> Any:
        with self._pool_lock():
            return super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)

    def free_concurrency_slot_for_step(self, run_id: str, step_key: str) -> None:
        with self._pool_lock():
            super().free_concurrency_slot_for_step(run_id, step_key)

    def free_concurrency_slots_for_run(self, run_id: str) -> None:
        with self._pool_lock():
            super().free_concurrency_slots_for_run(run_id)

    def assign_pending_steps(self, concurrency_keys: Sequence[str]) -> None:
        with self._pool_lock():
            super().assign_pending_steps(concurrency_keys)

    def initialize_concurrency_limit_to_default(self, concurrency_key: str) -> bool:
        with self._pool_lock():
            return super().initialize_concurrency_limit_to_default(concurrency_key)

    def set_concurrency_slots(self, concurrency_key: str, num: int) -> None:
        with self._pool_lock():
            super().set_concurrency_slots(concurrency_key, num)

    def delete_concurrency_limit(self, concurrency_key: str) -> None:
        with self._pool_lock():
            super().delete_concurrency_limit(concurrency_key)


_STORAGE_KEYS = ("run_storage", "event_log_storage", "schedule_storage")


def _resolved(value: Any, config_file: Path) -> Any:
    """A config value with Dagster's ``{env: NAME}`` sources read from the environment."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            name = str(value["env"])
            if name not in os.environ:
                raise ValueError(f"{config_file}: environment variable {name} is not set")
            return os.environ[name]
        return {key: _resolved(item, config_file) for key, item in value.items()}
    return value


def storage_database_urls(dagster_home: Path) -> list[str]:
    """SQLAlchemy URLs of the PostgreSQL databases holding the instance's run, event
    and schedule storage (`storage: postgres:`, or dagster_postgres classes named per
    storage), read from DAGSTER_HOME's dagster.yaml; none for SQLite storage, whose
    files lie under DAGSTER_HOME. Nothing is connected to or created."""
    config_file = Path(dagster_home) / "dagster.yaml"
    if not config_file.is_file():
        return []
    config = yaml.safe_load(config_file.read_text()) or {}
    postgres_configs = []
    unified = (config.get("storage") or {}).get("postgres")
    if unified:
        postgres_configs.append(unified)
    for key in _STORAGE_KEYS:
        storage = config.get(key) or {}
        if str(storage.get("module", "")).startswith("dagster_postgres"):
            postgres_configs.append(storage.get("config") or {})
    if not postgres_configs:
        return []
    from dagster_postgres.utils import pg_url_from_config

    urls = {pg_url_from_config(_resolved(c, config_file)) for c in postgres_configs}
    return sorted(urls)
