"""What an IG lead reads in the UI: every linked and costing asset reports its rows,
its columns and which upstream columns each column is computed from."""

from pathlib import Path

import dagster as dg

from tests.conftest import worked_example_delivery

_TRACED = {
    ("linked", "row_links"),
    ("linked", "person_spine"),
    ("costing", "activity"),
    ("costing", "person_costs"),
    ("costing", "cohort_membership"),
    ("costing", "cohort_reference_costs"),
    ("costing", "funding_bands"),
    ("costing", "statements"),
}


def test_linked_and_costing_assets_report_rows_columns_and_column_lineage(
    tmp_path: Path,
) -> None:
    delivery = worked_example_delivery(tmp_path, recipients="site")
    result = delivery.materialize()
    assert result.success
    seen: dict[tuple[str, ...], dict] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        seen[tuple(materialization.asset_key.path)] = materialization.metadata
    for key in _TRACED:
        metadata = seen[key]
        assert metadata["dagster/row_count"].value > 0, key
        schema = metadata["dagster/column_schema"].value
        lineage = metadata["dagster/column_lineage"].value
        assert isinstance(lineage, dg.TableColumnLineage), key
        columns = {c.name for c in schema.columns}
        # every traced column is a real column of the table, traced to a real upstream one
        assert set(lineage.deps_by_column) <= columns, key
        assert all(deps for deps in lineage.deps_by_column.values()), key
