"""An IG lead can audit lineage from the running UI, not only from the Python objects.

Starts the real Dagster webserver on the code location (``make ui`` serves the same
one) and asks its GraphQL endpoint, the API behind the UI's asset graph, what an IG
lead would: does every landing extract flow into every export, is every asset in its
layer's group, and do the blocking checks guard the exports.

Column lineage (``dagster/column_lineage``) is emitted when an asset materialises, so
it is in the event log of a run, not in this static graph; it is not asserted here.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.sources import SOURCE_NAMES

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 60.0

EXPORTS = {
    "exports/person_costs",
    "exports/individual_statements",
    "exports/cohort_reference_costs",
    "exports/cohort_funding_bands",
    "exports/reconciliation",
    "exports/linked_dataset",
}

#: The blocking checks on the exports (assets/exports.py): nothing is published unless
#: they pass.
EXPORT_CHECKS = {
    ("exports/cohort_reference_costs", "disclosure_control"),
    ("exports/cohort_funding_bands", "disclosure_control"),
    ("exports/linked_dataset", "no_identifiers"),
    ("exports/linked_dataset", "k_anonymity"),
    ("exports/person_costs", "manifests_verify"),
}

ASSET_NODES = """
{
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    tags { key value }
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name blocking } }
      ... on AssetCheckNeedsMigrationError { message }
      ... on AssetCheckNeedsUserCodeUpgrade { message }
      ... on AssetCheckNeedsAgentUpgradeError { message }
    }
  }
}
"""

WORKSPACE = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _graphql(base_url: str, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body["errors"]
    return body["data"]


def _location_loaded(base_url: str) -> bool:
    """True once the code location has loaded; fails at once if it failed to load."""
    workspace = _graphql(base_url, WORKSPACE)["workspaceOrError"]
    assert workspace["__typename"] == "Workspace", workspace
    entries = workspace["locationEntries"]
    for entry in entries:
        location = entry["locationOrLoadError"]
        if location and location["__typename"] == "PythonError":
            pytest.fail(f"code location {entry['name']} failed to load: {location['message']}")
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


def _wait_until_serving(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"dagster-webserver exited with {process.returncode} before serving:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        try:
            if _location_loaded(base_url):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet
        time.sleep(0.25)
    pytest.fail(
        f"dagster-webserver did not serve {base_url} within {STARTUP_TIMEOUT_S:.0f} s:\n"
        + log.read_text(errors="replace")[-4000:]
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the webserver and the code server it started (its own process group)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real ``dagster-webserver`` on the code location, on a free local port."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPC_")}
    env["DAGSTER_HOME"] = str(home)
    log = home / "webserver.log"
    command = [
        str(Path(sys.executable).with_name("dagster-webserver")),
        *("-m", "pipelines.definitions", "-p", str(port), "-h", "127.0.0.1"),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_until_serving(process, base_url, log)
            yield base_url
        finally:
            _stop(process)


@pytest.fixture(scope="module")
def asset_nodes(webserver: str) -> dict[str, dict[str, Any]]:
    nodes = _graphql(webserver, ASSET_NODES)["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): n for n in nodes}


def _upstream(nodes: dict[str, dict[str, Any]], key: str) -> set[str]:
    """Every asset ``key`` depends on, directly or through others, from the served graph."""
    seen: set[str] = set()
    todo = [key]
    while todo:
        for dep in nodes[todo.pop()]["dependencyKeys"]:
            name = "/".join(dep["path"])
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def test_every_landing_extract_flows_into_every_export(
    asset_nodes: dict[str, dict[str, Any]],
) -> None:
    landing = {k for k in asset_nodes if k.startswith("landing/")}
    assert landing == {f"landing/{s}" for s in SOURCE_NAMES}
    assert len(landing) == 7
    assert {k for k in asset_nodes if k.startswith("exports/")} == EXPORTS
    for export in sorted(EXPORTS):
        missing = landing - _upstream(asset_nodes, export)
        assert not missing, f"{export} has no path from {sorted(missing)}"


def test_every_asset_is_in_its_layers_group(asset_nodes: dict[str, dict[str, Any]]) -> None:
    layers = {"landing", "pseudonymised", "reference", "linked", "costing", "exports"}
    assert {key.split("/")[0] for key in asset_nodes} == layers
    for key, node in asset_nodes.items():
        assert node["groupName"] == key.split("/")[0], key


def test_only_landing_is_tagged_identifiable(asset_nodes: dict[str, dict[str, Any]]) -> None:
    data_class = {
        key: {t["value"] for t in node["tags"] if t["key"] == "data_class"}
        for key, node in asset_nodes.items()
    }
    identifiable = {k for k, v in data_class.items() if v == {"identifiable"}}
    assert identifiable == {k for k in asset_nodes if k.startswith("landing/")}
    assert all(len(v) == 1 for v in data_class.values()), data_class


def test_blocking_checks_guard_the_exports(asset_nodes: dict[str, dict[str, Any]]) -> None:
    checks: dict[tuple[str, str], bool] = {}
    for key, node in asset_nodes.items():
        result = node["assetChecksOrError"]
        assert result["__typename"] == "AssetChecks", result
        for check in result["checks"]:
            checks[key, check["name"]] = check["blocking"]
    on_exports = {c for c in checks if c[0].startswith("exports/")}
    assert on_exports == EXPORT_CHECKS
    assert all(checks[c] for c in EXPORT_CHECKS)
    for source in SOURCE_NAMES:
        assert checks[f"pseudonymised/{source}", "rows_reconcile"] is True
        assert checks[f"pseudonymised/{source}", "no_raw_identifiers"] is True
