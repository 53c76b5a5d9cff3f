"""The one door in: every asset, check, job and schedule of the pipeline.

Start the UI with ``dagster dev -m pipelines.definitions`` (``make ui``).
"""

import dagster as dg

from assets.costing import COSTING_ASSETS
from assets.exports import exports
from assets.linked import linked_tables
from assets.pseudonymised import LANDING_SPECS, PSEUDONYMISED_ASSETS
from assets.reference import reference_tables
from pipelines.resources import IPCResource
from pipelines.sensors import build_landing_sensor

ALL_ASSETS = [
    *LANDING_SPECS,
    *PSEUDONYMISED_ASSETS,
    reference_tables,
    linked_tables,
    *COSTING_ASSETS,
    exports,
]

#: Everything for the current settings: what `ipc run` materialises.
full_run = dg.define_asset_job(
    "ipc_full_run",
    selection=dg.AssetSelection.all(),
    description="Pseudonymise every landing extract, link, cost and publish the exports.",
)

#: The monthly refresh finance teams run (off until an operator turns it on).
monthly_refresh = dg.ScheduleDefinition(
    name="ipc_monthly_refresh",
    job=full_run,
    cron_schedule="0 6 2 * *",
    execution_timezone="Europe/London",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="On the 2nd of each month at 06:00 UK time, after month-end extracts land.",
)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[full_run],
    schedules=[monthly_refresh],
    sensors=[build_landing_sensor(full_run)],
    resources={"ipc": IPCResource()},
)
