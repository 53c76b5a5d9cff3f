"""The ``IPC_*`` environment of data-contract.md section 1, read once into a value.

Paths and options only: the key itself is read by :mod:`pseudonymise.keys` when the
pseudonymisation step runs, never here and never at import time.
"""

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RECIPIENT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class SettingsError(ValueError):
    """An IPC_* variable holds something the contract does not allow."""


def _date(name: str, value: str | None) -> dt.date | None:
    if value is None or value.strip() == "":
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a date written YYYY-MM-DD") from None


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    reference_dir: Path
    warehouse: Path
    export_dir: Path
    restricted_dir: Path
    key_file: Path | None
    period_start: dt.date | None
    period_end: dt.date | None
    environment: str
    recipients: tuple[str, ...]

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def warehouse_dir(self) -> Path:
        """Parquet files of the pseudonymised zone live beside the DuckDB file."""
        return self.warehouse.parent

    @property
    def demo_key_path(self) -> Path:
        return self.restricted_dir / "demo-key.hex"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read the contract's variables, with its defaults (relative to the cwd)."""
        e = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            value = e.get(name, "").strip()
            return value or default

        environment = get("IPC_ENV", "demo")
        if environment not in ("demo", "production"):
            raise SettingsError("IPC_ENV must be 'demo' or 'production'")
        recipients = tuple(r.strip() for r in get("IPC_RECIPIENTS", "demo_site").split(","))
        bad = [r for r in recipients if not RECIPIENT_NAME.match(r)]
        if bad or not recipients:
            raise SettingsError(
                "IPC_RECIPIENTS must be comma-separated names of letters, digits, _ and -"
            )
        if len(set(recipients)) != len(recipients):
            raise SettingsError("IPC_RECIPIENTS names a recipient twice")
        key_file = e.get("IPC_KEY_FILE", "").strip()
        settings = cls(
            landing_dir=Path(get("IPC_LANDING_DIR", "data/sample/landing")),
            reference_dir=Path(get("IPC_REFERENCE_DIR", "data/sample/reference")),
            warehouse=Path(get("IPC_WAREHOUSE", "data/warehouse/ipc.duckdb")),
            export_dir=Path(get("IPC_EXPORT_DIR", "data/exports")),
            restricted_dir=Path(get("IPC_RESTRICTED_DIR", "data/restricted")),
            key_file=Path(key_file) if key_file else None,
            period_start=_date("IPC_PERIOD_START", e.get("IPC_PERIOD_START")),
            period_end=_date("IPC_PERIOD_END", e.get("IPC_PERIOD_END")),
            environment=environment,
            recipients=recipients,
        )
        if settings.production and settings.key_file is None:
            raise SettingsError(
                "IPC_ENV=production needs IPC_KEY_FILE: the path of a key file made by "
                "`ipc keygen PATH` (the pipeline never runs on a demo key in production)"
            )
        return settings
