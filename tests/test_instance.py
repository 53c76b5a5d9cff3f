"""The project's SQLite instance (dagster.yaml): one warehouse slot means one holder,
even when two processes ask for it at the same moment."""

import multiprocessing
import os
import shutil
from multiprocessing.synchronize import Barrier
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import PROJECT_ROOT
from pipelines.instance import SerialisedPoolSqliteEventLogStorage, storage_database_urls
from pipelines.resources import WAREHOUSE_POOL

ROUNDS = 12


def _claim_in_rounds(
    home: str, run_id: str, barrier: Barrier, results: "multiprocessing.Queue[tuple[int, bool]]"
) -> None:
    """In each round: ask for the slot together with the other process, say whether it
    was granted, and give it back once both have asked."""

    os.environ["DAGSTER_HOME"] = home
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        for round_number in range(ROUNDS):
            step = f"step_{round_number}"
            barrier.wait()
            claimed = storage.claim_concurrency_slot(WAREHOUSE_POOL, run_id, step).is_claimed
            results.put((round_number, claimed))
            barrier.wait()
            storage.free_concurrency_slot_for_step(run_id, step)
            barrier.wait()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_the_instance_keeps_event_logs_where_dagsters_default_sqlite_storage_does(
    home: Path,
) -> None:
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, SerialisedPoolSqliteEventLogStorage)
        assert instance.event_log_storage.supports_global_concurrency_limits
    assert (home / "history" / "runs" / "index.db").is_file()


def test_runs_from_the_ui_schedule_and_sensor_are_queued_one_at_a_time(home: Path) -> None:
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1


def test_two_processes_asking_at_once_never_both_hold_the_one_slot(home: Path) -> None:
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
        assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == 1
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results: multiprocessing.Queue[tuple[int, bool]] = context.Queue()
    workers = [
        context.Process(target=_claim_in_rounds, args=(str(home), run_id, barrier, results))
        for run_id in ("run_a", "run_b")
    ]
    for worker in workers:
        worker.start()
    granted = [0] * ROUNDS
    for _ in range(2 * ROUNDS):
        round_number, claimed = results.get(timeout=120)
        granted[round_number] += claimed
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    # Each round: exactly one of the two was granted the slot.
    assert granted == [1] * ROUNDS


def test_the_sqlite_instance_has_no_storage_database(home: Path) -> None:
    assert storage_database_urls(home) == []


def test_the_postgres_instance_names_its_database_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copyfile(PROJECT_ROOT / "dagster-postgres.yaml", tmp_path / "dagster.yaml")
    settings = {
        "DAGSTER_PG_HOST": "db.example",
        "DAGSTER_PG_PORT": "5433",
        "DAGSTER_PG_USERNAME": "ipc",
        "DAGSTER_PG_PASSWORD": "p@ss word",
        "DAGSTER_PG_DB": "ipc_dagster",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    assert storage_database_urls(tmp_path) == [
        "postgresql+psycopg2://ipc:p%40ss%20word@db.example:5433/ipc_dagster"
    ]
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    with pytest.raises(ValueError, match="DAGSTER_PG_PASSWORD is not set"):
        storage_database_urls(tmp_path)
