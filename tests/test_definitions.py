"""The code location loads, and holds the assets, checks, jobs and schedules we expect."""

import dagster as dg

from pipelines.definitions import defs
from pipelines.partitions import FINANCIAL_YEARS
from pipelines.resources import WAREHOUSE_POOL
from schemas.sources import SOURCE_NAMES


def _asset_graph():
    return defs.resolve_asset_graph()


def test_every_layer_has_its_assets_in_its_group() -> None:
    graph = _asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    expected = (
        {f"landing/{s}" for s in SOURCE_NAMES}
        | {f"pseudonymised/{s}" for s in SOURCE_NAMES}
        | {
            "reference/acute_tariff",
            "reference/acute_pod_default",
            "reference/unit_costs",
            "reference/block_contracts",
            "reference/cohorts",
            "reference/settings",
            "linked/row_links",
            "linked/person_spine",
            "linked/linkage_report",
            "costing/activity",
            "costing/person_costs",
            "costing/cohort_membership",
            "costing/cohort_reference_costs",
            "costing/funding_bands",
            "costing/statements",
            "costing/reconciliation",
            "exports/person_costs",
            "exports/individual_statements",
            "exports/cohort_reference_costs",
            "exports/cohort_funding_bands",
            "exports/reconciliation",
            "exports/linked_dataset",
        }
    )
    assert keys == expected
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name == key.path[0]
        assert node.tags.get("data_class") in {
            "identifiable",
            "pseudonymised",
            "aggregate",
            "reference",
        }
        assert node.owners


def test_only_landing_assets_are_identifiable() -> None:
    graph = _asset_graph()
    identifiable = {
        k.path[0]
        for k in graph.get_all_asset_keys()
        if graph.get(k).tags.get("data_class") == "identifiable"
    }
    assert identifiable == {"landing"}


def test_blocking_checks_guard_reconciliation_identifiers_and_disclosure() -> None:
    names = {(c.asset_key.to_user_string(), c.name) for c in _asset_graph().asset_check_keys}
    for source in SOURCE_NAMES:
        assert (f"pseudonymised/{source}", "rows_reconcile") in names
        assert (f"pseudonymised/{source}", "no_raw_identifiers") in names
    assert ("costing/reconciliation", "totals_reconcile") in names
    assert ("costing/activity", "costs_non_negative") in names
    assert ("exports/cohort_reference_costs", "disclosure_control") in names
    assert ("exports/cohort_funding_bands", "disclosure_control") in names
    assert ("exports/linked_dataset", "no_identifiers") in names


def test_every_path_from_landing_reaches_the_exports() -> None:
    graph = _asset_graph()
    for source in SOURCE_NAMES:
        reached = {
            k.to_user_string()
            for k in dg.AssetSelection.assets(["landing", source]).downstream().resolve(graph)
        }
        assert "exports/linked_dataset" in reached
        assert "exports/cohort_reference_costs" in reached


def test_every_asset_opening_the_warehouse_is_in_the_duckdb_pool() -> None:
    graph = _asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_executable:
            continue
        pools = {op.pool for op in node.assets_def.node_def.iterate_op_defs()}
        in_pool = WAREHOUSE_POOL in pools
        assert in_pool == (key.path[0] != "pseudonymised"), key.to_user_string()


def test_job_and_schedule() -> None:
    job = defs.resolve_job_def("ipc_full_run")
    assert job is not None
    assert job.partitions_def == FINANCIAL_YEARS
    schedule = defs.resolve_schedule_def("ipc_monthly_refresh")
    assert schedule.execution_timezone == "Europe/London"


def test_costing_is_partitioned_by_financial_year_and_the_rest_is_not() -> None:
    graph = _asset_graph()
    yearly = {
        "costing/activity",
        "costing/person_costs",
        "costing/cohort_membership",
        "costing/cohort_reference_costs",
        "costing/funding_bands",
        "costing/statements",
    }
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if key.to_user_string() in yearly:
            assert node.partitions_def == FINANCIAL_YEARS
            # One run computes a whole range of years (ipc run, a backfill).
            assert node.backfill_policy == dg.BackfillPolicy.single_run()
        else:  # the spine, reference tables, reconciliation and exports: every year
            assert node.partitions_def is None, key.to_user_string()
    keys = FINANCIAL_YEARS.get_partition_keys()
    assert keys[:2] == ["2015-04-01", "2016-04-01"]  # 2015/16, 2016/17: 1 April each
    window = FINANCIAL_YEARS.time_window_for_partition_key("2024-04-01")
    assert (window.start.date().isoformat(), window.end.date().isoformat()) == (
        "2024-04-01",
        "2025-04-01",
    )
    assert str(window.start.tzinfo) == "Europe/London"
