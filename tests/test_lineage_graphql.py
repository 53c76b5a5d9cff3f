"""An IG lead can audit lineage from the running UI, not only from the Python objects.

Starts the real Dagster webserver on the code location (``make ui`` serves the same
one) and asks its GraphQL endpoint, the API behind the UI's asset graph, what an IG
lead would: does every landing extract flow into every export, is every asset in its
layer's group, and do the blocking checks guard the exports.

Column lineage (``dagster/column_lineage``) is emitted when an asset materialises, so
it is in the event log of a run, not in this static graph; it is not asserted here.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from pipelines.webserver import graphql, running_webserver
from schemas.sources import SOURCE_NAMES

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


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real ``dagster-webserver`` on the code location, on a free local port."""
    with running_webserver(tmp_path_factory.mktemp("webserver"), STARTUP_TIMEOUT_S) as url:
        yield url


@pytest.fixture(scope="module")
def asset_nodes(webserver: str) -> dict[str, dict[str, Any]]:
    nodes = graphql(webserver, ASSET_NODES)["assetNodes"]
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
