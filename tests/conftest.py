"""Shared fixtures: real Dagster materialisations on real DuckDB files and Parquet."""

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import settings

from pipelines.definitions import ALL_ASSETS
from pipelines.partitions import all_years_tags
from pipelines.resources import IPCResource
from pseudonymise.keys import write_key_file

TESTS = Path(__file__).parent
_EXIT_STATUS = pytest.StashKey[int]()
WORKED_EXAMPLE = TESTS / "data" / "worked_example"

# Property tests: no per-example deadline (speed is the benchmark's business, never a
# test's, and a loaded CI machine is slow); under CI (CI set, as .ci/run does) a fixed
# sequence of examples, so a red build can always be reproduced; on a developer's machine
# new examples every run. HYPOTHESIS_PROFILE=explore searches ten times as many.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=1000)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


@dataclass
class Delivery:
    """One pipeline run's folders, and the resource that points at them."""

    root: Path
    landing: Path
    reference: Path
    key_file: Path
    resource: IPCResource

    @property
    def export_dir(self) -> Path:
        return self.root / "exports"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "ipc.duckdb"

    @property
    def restricted(self) -> Path:
        return self.root / "restricted"

    def environment(self, dagster_home: Path) -> dict[str, str]:
        """The environment of an `ipc run` process on this delivery: its IPC_* settings
        (the same as the resource's) and ``dagster_home``."""
        settings = {
            "IPC_ENV" if field == "environment" else f"IPC_{field.upper()}": value
            for field in IPCResource.model_fields
            if field != "rekey_from_key_id" and (value := getattr(self.resource, field)) is not None
        }
        return dict(os.environ) | settings | {"DAGSTER_HOME": str(dagster_home)}

    def materialize(
        self,
        selection: dg.AssetSelection | None = None,
        partitions: dict[str, str] | None = None,
        **overrides: str,
    ) -> dg.ExecuteInProcessResult:
        """Materialise ``selection`` (every asset) for ``partitions`` (tags of a key
        range; every financial year by default), on a fresh ephemeral instance."""
        fields = {
            name: getattr(self.resource, name)
            for name in IPCResource.model_fields
            if getattr(self.resource, name) is not None
        }
        resource = IPCResource(**(fields | overrides))
        with dg.DagsterInstance.ephemeral() as instance:
            return dg.materialize(
                ALL_ASSETS,
                selection=selection,
                resources={"ipc": resource},
                instance=instance,
                raise_on_error=False,
                tags=all_years_tags() if partitions is None else partitions,
            )


def make_delivery(
    root: Path,
    landing: Path,
    reference: Path,
    *,
    period_end: str | None = None,
    recipients: str = "site_a,site_b",
) -> Delivery:
    """Copy landing and reference folders under ``root`` and make a key for them."""
    shutil.copytree(landing, root / "landing")
    shutil.copytree(reference, root / "reference")
    key_file = root / "keys" / "test.key"
    write_key_file(key_file)
    resource = IPCResource(
        landing_dir=str(root / "landing"),
        reference_dir=str(root / "reference"),
        warehouse=str(root / "warehouse" / "ipc.duckdb"),
        export_dir=str(root / "exports"),
        restricted_dir=str(root / "restricted"),
        key_file=str(key_file),
        # Blank means "the contract's default", and keeps a developer's IPC_* out.
        period_start="",
        period_end=period_end or "",
        environment="production",
        recipients=recipients,
    )
    return Delivery(root, root / "landing", root / "reference", key_file, resource)


def worked_example_delivery(
    root: Path, *, period_end: str | None = None, recipients: str = "site"
) -> Delivery:
    """The worked example's landing and reference folders as a delivery under ``root``."""
    return make_delivery(
        root,
        WORKED_EXAMPLE / "landing",
        WORKED_EXAMPLE / "reference",
        period_end=period_end,
        recipients=recipients,
    )


@pytest.fixture(scope="session")
def worked_example(tmp_path_factory: pytest.TempPathFactory) -> Delivery:
    """The worked example, materialised once with every asset and check."""
    delivery = make_delivery(
        tmp_path_factory.mktemp("worked_example"),
        WORKED_EXAMPLE / "landing",
        WORKED_EXAMPLE / "reference",
        period_end="2025-03-31",
    )
    result = delivery.materialize()
    assert result.success, "the worked example run failed"
    return delivery


@pytest.fixture(autouse=True)
def _no_ipc_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set their own folders: a developer's IPC_* variables must not leak in."""
    for name in list(os.environ):
        if name.startswith("IPC_"):
            monkeypatch.delenv(name)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """End the process once pytest is done, so its summary is the last line printed.

    duckdb's nanobind bindings print a benign "nanobind: leaked ..." list while the
    interpreter shuts down (duckdb-python issue #522 era; no memory is lost), which
    would otherwise follow, and bury, the test summary.
    """
    status = config.stash.get(_EXIT_STATUS, None)
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
