"""Notice a new or changed extract in the landing folder and run the pipeline for it.

The sensor looks only at file names, sizes and modification times (never contents),
keeps them as its cursor, and asks for one run per distinct state of the folder: the
run key is a digest of that state, so a delivery is run once however often it looks.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg

from pipelines.settings import Settings, SettingsError


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
            landing_dir = Settings.from_env().landing_dir
        except SettingsError as exc:
            return dg.SkipReason(f"settings are not valid: {exc}")
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
            tags={"ipc/changed_extracts": ",".join(changed)[:200]},
        )

    return landing_files
