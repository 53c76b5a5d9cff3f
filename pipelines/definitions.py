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
from pipelines.schedules import build_monthly_refresh
from pipelines.sensors import build_landing_sensor

ALL_ASSETS: list[dg.AssetsDefinition | dg.AssetSpec] = [
    *LANDING_SPECS,
    *PSEUDONYMISED_ASSETS,
    reference_tables,
    linked_tables,
    *COSTING_ASSETS,
    exports,
]

#: Everything for the current settings: what `ipc run` materialises, over every
#: financial-year partition in one run (pipelines.partitions.all_years_tags); the job
#: is partitioned by financial year, as its costing assets are.
full_run = dg.define_asset_job(
    "ipc_full_run",
    selection=dg.AssetSelection.all(),
    description="Pseudonymise every landing extract, link, cost every financial year and "
    "publish the exports.",
)

#: The monthly refresh finance teams run (off until an operator turns it on): the year
#: of the month just ended, or every year when the inputs changed (pipelines.schedules).
monthly_refresh = build_monthly_refresh(
    full_run, [key for asset in [*COSTING_ASSETS, exports] for key in asset.keys]
)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[full_run],
    schedules=[monthly_refresh],
    sensors=[build_landing_sensor(full_run)],
    resources={"ipc": IPCResource()},
)
