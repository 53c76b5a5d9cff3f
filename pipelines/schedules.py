"""The monthly refresh: the financial year in progress, or everything when it must be.

On the 2nd of each month at 06:00 UK time the finance team expects the month just ended
to be costed and published. What a refresh must recompute depends on what changed:

* The spine and the reference tables are built from the whole delivery, and every
  year's figures depend on them. If the landing extracts or the reference files changed
  since the last full run (by name, size or modification time; contents are never
  read here) the refresh is a full run: every financial year, in one run, so the
  export it publishes never mixes years computed against two spines or two price lists.
* Otherwise only the financial year of the month just ended is recomputed (on
  2 April that is the year just closed, at year end), then the reconciliation and the
  exports, which gather every year; earlier years are left as they were.

"The last full run" is the latest successful run of the job tagged with the state of
the inputs it started from (the sensor's and ``ipc run``'s runs, and this schedule's).
"""

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.partitions import current_year_key
from pipelines.sensors import INPUTS_STATE_TAG, full_run_tags, inputs_state
from pipelines.settings import Settings, SettingsError

UK = ZoneInfo("Europe/London")


def month_just_ended(when: dt.datetime) -> dt.date:
    """The last day of the month before ``when`` (in UK time)."""
    return when.astimezone(UK).date().replace(day=1) - dt.timedelta(days=1)


def last_inputs_state(instance: dg.DagsterInstance, job_name: str) -> str | None:
    """The inputs' state of the latest successful run that recorded one."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=job_name, statuses=[dg.DagsterRunStatus.SUCCESS]),
        limit=50,
    )
    for run in runs:  # newest first
        if INPUTS_STATE_TAG in run.tags:
            return run.tags[INPUTS_STATE_TAG]
    return None


def build_monthly_refresh(job: Any, year_refresh: Sequence[dg.AssetKey]) -> dg.ScheduleDefinition:
    """The schedule for ``job`` (the full-run asset job); ``year_refresh`` is what a
    refresh of one year materialises: the costing assets (that year's partitions, and
    the reconciliation) and the exports."""

    @dg.schedule(
        name="ipc_monthly_refresh",
        job=job,
        cron_schedule="0 6 2 * *",
        execution_timezone="Europe/London",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=(
            "On the 2nd of each month at 06:00 UK time, after month-end extracts land: "
            "the financial year of the month just ended, the reconciliation and the "
            "exports; every year when the extracts or reference files changed since "
            "the last full run."
        ),
    )
    def monthly_refresh(context: dg.ScheduleEvaluationContext):
        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            return dg.SkipReason(f"settings are not valid: {exc}")
        when = context.scheduled_execution_time or dt.datetime.now(tz=UK)
        month = month_just_ended(when)
        state = inputs_state(settings)
        if last_inputs_state(context.instance, job.name) != state:
            return dg.RunRequest(
                tags=full_run_tags(settings)
                | {"ipc/refresh": f"every year (inputs changed), month {month:%Y-%m}"},
            )
        return dg.RunRequest(
            partition_key=current_year_key(month),
            asset_selection=list(year_refresh),
            tags={INPUTS_STATE_TAG: state, "ipc/refresh": f"one year, month {month:%Y-%m}"},
        )

    return monthly_refresh
