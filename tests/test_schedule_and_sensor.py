"""The monthly schedule and the landing-folder sensor, with Dagster's own contexts."""

import datetime as dt
import os
import uuid
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import defs
from pipelines.partitions import FINANCIAL_YEARS, RANGE_END_TAG, RANGE_START_TAG
from pipelines.sensors import INPUTS_STATE_TAG


def _folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("landing", "reference"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(f"IPC_{name.upper()}_DIR", str(tmp_path / name))
    (tmp_path / "landing" / "acute.csv").write_text("nhs_number\n")
    (tmp_path / "reference" / "unit_costs.csv").write_text("financial_year\n")


def _refresh(instance: dg.DagsterInstance, when: dt.datetime) -> dg.RunRequest:
    schedule = defs.resolve_schedule_def("ipc_monthly_refresh")
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        repository_def=defs.get_repository_def(),
    )
    [request] = schedule.evaluate_tick(context).run_requests or []
    return request


def _record_success(instance: dg.DagsterInstance, tags: dict[str, str]) -> None:
    """A successful run of the full-run job, as the sensor or `ipc run` leaves one."""
    instance.add_run(
        dg.DagsterRun(
            job_name="ipc_full_run",
            run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.SUCCESS,
            tags=tags,
        )
    )


def test_monthly_schedule_refreshes_everything_when_the_inputs_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _folders(tmp_path, monkeypatch)
    schedule = defs.resolve_schedule_def("ipc_monthly_refresh")
    assert schedule.job_name == "ipc_full_run"
    assert schedule.execution_timezone == "Europe/London"
    with dg.instance_for_test() as instance:
        # Nothing run yet, then a run from other inputs: every financial year, one run.
        for previous in (None, "aabbccdd00112233"):
            if previous is not None:
                _record_success(instance, {INPUTS_STATE_TAG: previous})
            request = _refresh(instance, dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC))
            assert request.partition_key is None and request.asset_selection is None
            keys = FINANCIAL_YEARS.get_partition_keys()
            assert request.tags[RANGE_START_TAG] == keys[0] == "2015-04-01"
            assert request.tags[RANGE_END_TAG] == keys[-1]
            assert request.tags[INPUTS_STATE_TAG] != "aabbccdd00112233"


def test_monthly_schedule_refreshes_the_year_of_the_month_just_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _folders(tmp_path, monkeypatch)
    with dg.instance_for_test() as instance:
        state = _refresh(instance, dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC)).tags[
            INPUTS_STATE_TAG
        ]
        _record_success(instance, {INPUTS_STATE_TAG: state})
        # 2 December: November is in 2026/27. 2 April: March closed 2025/26.
        for when, key in [
            (dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC), "2026-04-01"),
            (dt.datetime(2026, 4, 2, 5, 0, tzinfo=dt.UTC), "2025-04-01"),
        ]:
            request = _refresh(instance, when)
            assert request.partition_key == key
            assert RANGE_START_TAG not in request.tags
            selected = {k.to_user_string() for k in request.asset_selection or []}
            assert "costing/activity" in selected and "costing/reconciliation" in selected
            assert "exports/person_costs" in selected
            assert not any(k.startswith(("pseudonymised/", "linked/")) for k in selected)

        # A changed extract: every year again.
        (tmp_path / "landing" / "acute.csv").write_text("nhs_number\n9994561235\n")
        request = _refresh(instance, dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC))
        assert request.partition_key is None and RANGE_START_TAG in request.tags


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
    # The full run: every financial-year partition, in one run.
    assert requests[0].tags[RANGE_START_TAG] == FINANCIAL_YEARS.get_partition_keys()[0]
    assert requests[0].tags[RANGE_END_TAG] == FINANCIAL_YEARS.get_partition_keys()[-1]
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
