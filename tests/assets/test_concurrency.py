"""Two runs launched at once, on one warehouse, with the multiprocess executor.

DuckDB allows one writing process per database file. Every step that opens the
warehouse is in the `duckdb_warehouse` pool, limited to 1 in dagster.yaml. Each run's
executor claims a slot for the step in the instance's storage before starting it, so
the limit holds across runs with the default run coordinator and no daemon; these tests
use the project's instance configuration (SQLite under DAGSTER_HOME).
"""

import itertools
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from delivery.manifest import verify_manifest
from pipelines import resources
from pipelines.cli import PROJECT_ROOT, full_run_job
from pipelines.resources import WAREHOUSE_POOL, connect_warehouse
from pseudonymise.keys import Keyring, read_key_file
from tests.conftest import worked_example_delivery

RUN = [sys.executable, "-m", "pipelines.cli", "run", "--executor", "multiprocess"]
LOCK_ERRORS = ("Could not set lock on file", "Conflicting lock")
FINISHED = (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)


def _step_pools() -> dict[str, str | None]:
    """Every step of the full run (one op each) and the pool it is in."""
    return {node.name: node.definition.pool for node in full_run_job().graph.nodes}


def _step_intervals(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step's (start, end) as recorded in the run's event log."""
    started: dict[str, float] = {}
    intervals = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.event_type in FINISHED:
            intervals[event.step_key] = (started[event.step_key], entry.timestamp)
    return intervals


def test_every_step_but_pseudonymisation_is_in_the_warehouse_pool() -> None:
    pools = _step_pools()
    outside = sorted(key for key, pool in pools.items() if pool != WAREHOUSE_POOL)
    assert outside == sorted(key for key in pools if key.startswith("pseudonymised__"))
    assert len(outside) == 7
    inside = {key for key, pool in pools.items() if pool == WAREHOUSE_POOL}
    assert {"reference_tables", "linked_tables", "costing__activity", "exports"} <= inside


def test_a_step_waits_while_a_process_outside_the_pool_holds_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ipc.duckdb"
    script = (
        f"import duckdb, time\ncon = duckdb.connect({str(path)!r})\n"
        "print('holding', flush=True)\ntime.sleep(1.5)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == b"holding\n"
        monkeypatch.setattr(resources, "WAREHOUSE_LOCK_WAIT_SECONDS", 0.0)
        with pytest.raises(duckdb.IOException, match="Could not set lock"):
            connect_warehouse(path)
        monkeypatch.setattr(resources, "WAREHOUSE_LOCK_WAIT_SECONDS", 30.0)
        connect_warehouse(path).close()  # once the other process lets go
    assert holder.returncode == 0


@pytest.mark.slow
def test_two_runs_at_once_share_the_warehouse_one_step_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = worked_example_delivery(tmp_path, period_end="2025-03-31", recipients="site")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = delivery.environment(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # dagster.yaml's storage reads it
    # The instance exists before anything is launched, as on a deployed host.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.event_log_storage.supports_global_concurrency_limits
        logs = [tmp_path / f"run{i}.log" for i in (1, 2)]
        processes = []
        for log in logs:
            with log.open("w") as out:
                processes.append(
                    subprocess.Popen(RUN, env=env, stdout=out, stderr=subprocess.STDOUT)
                )
        deadline = time.monotonic() + 180
        try:
            for process in processes:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            for process in processes:
                if process.poll() is None:  # timed out: leave nothing running
                    process.kill()
                    process.wait()
        output = "\n".join(log.read_text() for log in logs)
        assert [p.returncode for p in processes] == [0, 0], output
        # Not even a wait for the lock was logged (connect_warehouse): the pool did it.
        assert not any(error in output for error in LOCK_ERRORS)

        records = instance.get_run_records()
        assert len(records) == 2
        assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records)
        first, second = sorted(records, key=lambda r: r.start_time or 0)
        assert second.start_time is not None and first.end_time is not None
        assert second.start_time < first.end_time, "the two runs did not overlap"

        pools = _step_pools()
        in_pool = []
        blocked = 0
        for record in records:
            run_id = record.dagster_run.run_id
            entries = instance.all_logs(run_id)
            messages = " ".join(e.message or "" for e in entries)
            assert not any(error in messages for error in LOCK_ERRORS)
            assert not [e for e in entries if e.dagster_event_type == "STEP_FAILURE"]
            blocked += messages.count(f"Step blocked by limit for pool {WAREHOUSE_POOL}")
            intervals = _step_intervals(instance, run_id)
            assert set(intervals) == set(pools)
            in_pool += [
                (start, end, run_id, key)
                for key, (start, end) in intervals.items()
                if pools[key] == WAREHOUSE_POOL
            ]
        # The pool did the work: steps waited for it, and no two steps that open the
        # warehouse (in either run) were ever running at the same time.
        assert blocked > 0
        in_pool.sort()
        for before, after in itertools.pairwise(in_pool):
            assert after[0] >= before[1], f"{before[2:]} and {after[2:]} overlapped"

    secret, _ = read_key_file(delivery.key_file)
    key = Keyring.from_secret(secret).purpose("manifest")
    published = delivery.export_dir.resolve()
    assert verify_manifest(published, key) == []
    assert verify_manifest(published / "linked" / "site", key) == []
