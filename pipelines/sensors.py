"""Notice a new or changed extract in the landing folder and run the pipeline for it.

The sensor looks only at file names, sizes and modification times (never contents),
keeps them as its cursor, and asks for one run per distinct state of the folder: the
run key is a digest of that state, so a delivery is run once however often it looks.
The run is the full run: every financial-year partition, in one run. It is tagged with
the state of the landing and reference folders it starts from (:func:`full_run_tags`),
which the monthly refresh reads to tell whether the warehouse is up to date.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg

from pipelines.partitions import all_years_tags
from pipelines.settings import Settings, SettingsError

#: The state (names, sizes, modification times) of the landing and reference folders a
#: full run started from.
INPUTS_STATE_TAG = "ipc/inputs_state"


def landing_state(landing_dir: Path) -> dict[str, list[int]]:
    """Every CSV under the landing folder: relative path -> [size, mtime in ns]."""
    if not landing_dir.is_dir():
        return {}
    state = {}
    for path in sorted(landing_dir.rglob("*")):
        if path.is_file() and path.suffix.lower() == ".csv" and not path.name.startswith("."):
            stat = path.stat()
            state[path.relative_to(landing_dir).as_posix()] = [stat.st_size, stat.st_mtime_ns]
    return state


def _folder_state(folder: Path) -> dict[str, list[int]]:
    """Every file under a folder (reference tables, cohorts, settings): path -> [size,
    mtime in ns]."""
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(folder).as_posix(): [path.stat().st_size, path.stat().st_mtime_ns]
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def inputs_state(settings: Settings) -> str:
    """A digest of the landing extracts' and reference files' names, sizes and
    modification times (contents are never read)."""
    state = {
        "landing": landing_state(settings.landing_dir),
        "reference": _folder_state(settings.reference_dir),
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


def full_run_tags(settings: Settings) -> dict[str, str]:
    """Tags of a full run: every financial-year partition, and the inputs' state."""
    return all_years_tags() | {INPUTS_STATE_TAG: inputs_state(settings)}


def build_landing_sensor(job: Any) -> dg.SensorDefinition:
    """The sensor for ``job`` (the full-run asset job)."""

    @dg.sensor(
        name="ipc_landing_files",
        job=job,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Runs the pipeline once when an extract in IPC_LANDING_DIR is added or changed "
            "(by name, size and modification time; contents are never read here)."
        ),
    )
    def landing_files(context: dg.SensorEvaluationContext):
        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            return dg.SkipReason(f"settings are not valid: {exc}")
        landing_dir = settings.landing_dir
        state = landing_state(landing_dir)
        encoded = json.dumps(state, sort_keys=True)
        if not state:
            return dg.SkipReason(f"no extracts in {landing_dir}")
        if context.cursor == encoded:
            return dg.SkipReason("no new or changed extract")
        previous = json.loads(context.cursor) if context.cursor else {}
        changed = sorted(name for name in state if state[name] != previous.get(name))
        context.update_cursor(encoded)
        return dg.RunRequest(
            run_key=hashlib.sha256(encoded.encode()).hexdigest()[:16],
            tags={"ipc/changed_extracts": ",".join(changed)[:200]} | full_run_tags(settings),
        )

    return landing_files
