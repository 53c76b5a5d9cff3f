"""The monthly schedule and the landing-folder sensor, with Dagster's own contexts."""

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import defs


def test_monthly_schedule_runs_the_full_pipeline_in_uk_time() -> None:
    schedule = defs.resolve_schedule_def("ipc_monthly_refresh")
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC)
    )
    requests = schedule.evaluate_tick(context).run_requests or []
    assert len(requests) == 1
    assert schedule.job_name == "ipc_full_run"
    assert schedule.execution_timezone == "Europe/London"


def test_sensor_launches_once_per_new_or_changed_extract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    monkeypatch.setenv("IPC_LANDING_DIR", str(landing))
    sensor = defs.resolve_sensor_def("ipc_landing_files")

    def tick(cursor: str | None):
        with dg.instance_for_test() as instance:
            context = dg.build_sensor_context(instance=instance, cursor=cursor)
            result = sensor.evaluate_tick(context)
            return result.run_requests or [], result.cursor

    assert tick(None)[0] == []  # nothing delivered yet

    (landing / "acute.csv").write_text("nhs_number\n")
    requests, cursor = tick(None)
    assert len(requests) == 1
    assert requests[0].tags["ipc/changed_extracts"] == "acute.csv"
    first_key = requests[0].run_key

    assert tick(cursor)[0] == []  # the same delivery is run once

    (landing / "chc").mkdir()
    (landing / "chc" / "2025-04.csv").write_text("nhs_number\n1\n")
    stat = (landing / "acute.csv").stat()
    os.utime(landing / "acute.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    requests, _ = tick(cursor)
    assert len(requests) == 1
    assert requests[0].tags["ipc/changed_extracts"] == "acute.csv,chc/2025-04.csv"
    assert requests[0].run_key != first_key
