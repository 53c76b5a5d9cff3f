"""Financial-year partitions of the costing assets.

A partition is one financial year: a time window from 1 April to the next 1 April (UK
time, as the schedule runs), keyed by the date it starts, so ``2024-04-01`` is 2024/25.
Partitions run from :data:`FIRST_FINANCIAL_YEAR` to the financial year in progress;
which of them hold rows is decided by the costing period (IPC_PERIOD_START/END, see
:mod:`costing.period`): a partition outside it is materialised empty.
"""

import datetime as dt

import dagster as dg

from costing.period import fy_label, fy_start_year

#: The first financial year a partition exists for: Integrated Personal Commissioning
#: began in 2015/16. A costing period starting earlier stops the costing step with a
#: message saying so (move this, and every year from it gets a partition).
FIRST_FINANCIAL_YEAR = 2015

#: Dagster's tags for a run over a range of partitions (one run, every year in it).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

FINANCIAL_YEARS = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 4 *",
    start=f"{FIRST_FINANCIAL_YEAR}-04-01",
    fmt="%Y-%m-%d",
    timezone="Europe/London",
    # The year in progress is a partition too: the monthly refresh computes it.
    end_offset=1,
)


def partition_key(start_year: int) -> str:
    """``2024`` -> ``2024-04-01``, the key of financial year 2024/25."""
    return f"{start_year}-04-01"


def partition_start_year(key: str) -> int:
    """``2024-04-01`` -> ``2024``."""
    return int(key[:4])


def partition_labels(keys: list[str]) -> list[str]:
    """Partition keys as the financial years the contract writes (``2024/25``)."""
    return [fy_label(partition_start_year(k)) for k in keys]


def current_year_key(day: dt.date) -> str:
    """The partition of the financial year holding ``day``."""
    return partition_key(fy_start_year(day))


def all_years_tags() -> dict[str, str]:
    """Tags for one run over every financial-year partition (``ipc run``, the sensor)."""
    keys = FINANCIAL_YEARS.get_partition_keys()
    return {RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]}
