"""Export models (schemas.exports): a correct small frame passes; each contract rule broken
fails; extra columns pass; identifier-named columns fail."""

import io
import json
from typing import Any

import pandera.polars as pa
import polars as pl
import pytest

from schemas.exports import (
    EXPORT_MODELS,
    EXPORT_PATHS,
    Activity,
    CohortFundingBands,
    CohortReferenceCosts,
    IndividualStatement,
    PersonCosts,
    Persons,
    Reconciliation,
    polars_schema,
)
from schemas.sources import SETTINGS

SIX = list(SETTINGS)


def frame(model: type[pa.DataFrameModel], rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows typed as the model says, so only the values are under test."""
    return pl.DataFrame(rows, schema=polars_schema(model))


def failed_checks(model: type[pa.DataFrameModel], data: pl.DataFrame) -> set[str]:
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        model.validate(data, lazy=True)
    return set(caught.value.failure_cases["check"].to_list())


def activity_row(**changes: Any) -> dict[str, Any]:
    row = {
        "person_id": "p-1",
        "source": "social_care",
        "setting": "social_care",
        "service": "HOME_CARE",
        "activity_month": "2024-04",
        "financial_year": "2024/25",
        "cost": 700.0,
        "cost_basis": "package",
        "net_cost": 600.0,
        "units": 30.0,
    }
    return row | changes


def person_costs_row(**changes: Any) -> dict[str, Any]:
    costs = {f"cost_{s}": 0.0 for s in SIX} | {"cost_acute": 100.0, "cost_chc": 0.5}
    row = {
        "person_id": "x",
        "financial_year": "2023/24",
        "age_band": "65-74",
        "sex": "1",
        **costs,
        "cost_total": 100.5,
        "cohorts": ["older_ltc", "multimorbidity"],
    }
    return row | changes


def reconciliation_row(**changes: Any) -> dict[str, Any]:
    row = {
        "source": "social_care",
        "encoding": "utf-8",
        "rows_read": 65,
        "rows_accepted": 60,
        "rows_quarantined": 5,
        "rows_replaced": 0,
        "rows_linked_nhs_number": 34,
        "rows_linked_other": 19,
        "rows_linked_local_id": 2,
        "rows_linked_demographic": 17,
        "rows_unlinked": 7,
        "open_spells": 0,
        "rows_out_of_period": 0,
        "rows_unpriced": 0,
        "cost_total": 731338.26,
        "net_cost_total": 676903.692857,
    }
    return row | changes


# -- activity --------------------------------------------------------------------------


def test_activity_accepts_a_correct_frame_with_extra_columns() -> None:
    unpriced = activity_row(cost_basis="unpriced", cost=0.0, net_cost=0.0, units=None)
    data = frame(Activity, [activity_row(), unpriced])
    data = data.with_columns(record_number=pl.lit(1))
    Activity.validate(data)


def test_activity_optional_columns_may_be_absent() -> None:
    Activity.validate(frame(Activity, [activity_row()]).drop("net_cost", "units"))


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"cost": -1.0}, "in_range(0, inf)"),
        ({"cost": float("nan")}, "in_range(0, inf)"),
        ({"cost_basis": "guess"}, "isin"),
        ({"setting": "housing"}, "isin"),
        ({"activity_month": "2024-4"}, "str_matches"),
        ({"activity_month": "2024-04-01"}, "str_matches"),
        ({"financial_year": "2024/26"}, "financial year"),
        ({"net_cost": 800.0}, "net_cost is more than cost"),
    ],
)
def test_activity_rejects(changes: dict[str, Any], check: str) -> None:
    failed = failed_checks(Activity, frame(Activity, [activity_row(**changes)]))
    assert any(check in name for name in failed), failed


def test_activity_rejects_missing_column_and_wrong_type() -> None:
    data = frame(Activity, [activity_row()])
    assert "column_in_dataframe" in failed_checks(Activity, data.drop("cost_basis"))
    wrong = data.with_columns(pl.col("cost").cast(pl.String))
    assert any("dtype" in c for c in failed_checks(Activity, wrong))


@pytest.mark.parametrize("column", ["nhs_number", "date_of_birth", "postcode", "start_date"])
def test_exports_refuse_identifier_named_columns(column: str) -> None:
    data = frame(Activity, [activity_row()]).with_columns(pl.lit("x").alias(column))
    failed = failed_checks(Activity, data)
    assert any("identifier" in c for c in failed), failed


# -- persons and person costs ----------------------------------------------------------


def test_persons_accepts_generalised_quasi_identifiers() -> None:
    rows: list[dict[str, Any]] = [
        {
            "person_id": "a",
            "financial_year": "2024/25",
            "age_band": "85+",
            "sex": "2",
            "postcode_district": "TS18",
            "cohorts": ["older_ltc"],
        },
        {
            "person_id": "b",
            "financial_year": "2024/25",
            "age_band": "65+",
            "sex": "0",
            "postcode_district": None,
            "cohorts": [],
        },
        {
            "person_id": "c",
            "financial_year": "2024/25",
            "age_band": None,
            "sex": "0",
            "postcode_district": None,
            "cohorts": [],
        },
    ]
    Persons.validate(frame(Persons, rows))


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"postcode_district": "TS18 1AA"}, "outward code"),
        ({"age_band": "60-69"}, "isin"),
        ({"sex": "M"}, "isin"),
    ],
)
def test_persons_rejects(changes: dict[str, Any], check: str) -> None:
    row = {
        "person_id": "a",
        "financial_year": "2024/25",
        "age_band": "18-64",
        "sex": "1",
        "postcode_district": "DL5",
        "cohorts": [],
    } | changes
    failed = failed_checks(Persons, frame(Persons, [row]))
    assert any(check in c for c in failed), failed


def test_persons_one_row_per_person_and_year() -> None:
    row = {
        "person_id": "a",
        "financial_year": "2024/25",
        "age_band": "18-64",
        "sex": "1",
        "postcode_district": "DL5",
        "cohorts": [],
    }
    failed = failed_checks(Persons, frame(Persons, [row, row]))
    assert "multiple_fields_uniqueness" in failed


def test_person_costs_accepts_and_checks_the_total() -> None:
    PersonCosts.validate(frame(PersonCosts, [person_costs_row()]))
    failed = failed_checks(PersonCosts, frame(PersonCosts, [person_costs_row(cost_total=100.0)]))
    assert "cost_total differs from the sum of the settings" in failed


def test_person_costs_age_band_is_never_coarsened() -> None:
    failed = failed_checks(PersonCosts, frame(PersonCosts, [person_costs_row(age_band="65+")]))
    assert any("isin" in c for c in failed)


# -- aggregates ------------------------------------------------------------------------


def reference_costs_row(**changes: Any) -> dict[str, Any]:
    figures = {
        "people": 190,
        "mean_cost": 4289.78,
        "median_cost": 2020.0,
        "p25_cost": 934.0,
        "p75_cost": 4284.0,
        "p90_cost": 6943.27,
    } | {f"mean_cost_{s}": 10.0 for s in SIX}
    return {"cohort": "older_ltc", "financial_year": "2023/24", **figures, "suppressed": False} | (
        changes
    )


def test_cohort_reference_costs_suppressed_and_empty_rows() -> None:
    figures = ["people", "mean_cost", "median_cost", "p25_cost", "p75_cost", "p90_cost"]
    blank = dict.fromkeys([*figures, *[f"mean_cost_{s}" for s in SIX]])
    rows = [
        reference_costs_row(),
        reference_costs_row(cohort="older_copd", **blank, suppressed=True),
        reference_costs_row(cohort="children_complex", **(blank | {"people": 0})),
    ]
    CohortReferenceCosts.validate(frame(CohortReferenceCosts, rows))


def test_cohort_reference_costs_suppressed_row_must_be_blank() -> None:
    data = frame(CohortReferenceCosts, [reference_costs_row(suppressed=True)])
    assert "a suppressed row shows a count or figure" in failed_checks(CohortReferenceCosts, data)


def band_rows(suppressed: bool = False) -> list[dict[str, Any]]:
    bounds = [0.0, 297.3, 824.1, 1181.0, 6810.9, None]
    return [
        {
            "cohort": "older_ltc",
            "financial_year": "2023/24",
            "band": band,
            "people": None if suppressed else 10,
            "lower": None if suppressed else bounds[band - 1],
            "upper": None if suppressed else bounds[band],
            "mean_cashable_cost": None if suppressed else 100.0 * band,
            "suppressed": suppressed,
        }
        for band in range(1, 6)
    ]


def test_cohort_funding_bands_accepts_published_and_suppressed() -> None:
    CohortFundingBands.validate(frame(CohortFundingBands, band_rows()))
    CohortFundingBands.validate(frame(CohortFundingBands, band_rows(suppressed=True)))


def test_cohort_funding_bands_rules() -> None:
    rows = band_rows()
    rows[4]["upper"] = 9000.0  # the top band publishes no upper bound
    assert "band 5 shows an upper boundary" in failed_checks(
        CohortFundingBands, frame(CohortFundingBands, rows)
    )
    rows = band_rows()
    rows[0]["band"] = 6
    assert any(
        "in_range" in c for c in failed_checks(CohortFundingBands, frame(CohortFundingBands, rows))
    )


# -- reconciliation --------------------------------------------------------------------


def test_reconciliation_accepts_the_worked_example() -> None:
    Reconciliation.validate(frame(Reconciliation, [reconciliation_row()]))


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"rows_read": 66}, "rows_accepted + rows_quarantined differs from rows_read"),
        (
            {"rows_unlinked": 8},
            "rows_linked_nhs_number + rows_linked_other + rows_unlinked differs from rows_accepted",
        ),
        (
            {"rows_linked_local_id": 3},
            "rows_linked_local_id + rows_linked_demographic differs from rows_linked_other",
        ),
        ({"rows_replaced": 6}, "rows_replaced exceeds rows_quarantined"),
        ({"rows_unpriced": -1}, "greater_than_or_equal_to(0)"),
        ({"source": "primary_care"}, "isin"),
    ],
)
def test_reconciliation_rejects(changes: dict[str, Any], check: str) -> None:
    failed = failed_checks(Reconciliation, frame(Reconciliation, [reconciliation_row(**changes)]))
    assert any(c.startswith(check) for c in failed), failed


# -- individual statements -------------------------------------------------------------


def statement(**changes: Any) -> dict[str, Any]:
    costs = dict.fromkeys([*SIX, "total"], 0.0)
    return {
        "person_id": "x",
        "financial_year": "2023/24",
        "cohorts": ["older_ltc", "older_copd"],
        "primary_cohort": "older_ltc",
        "age_band": "65-74",
        "profile": {
            "cohort": "older_ltc",
            "age_band": "65-74",
            "people": 80,
            "fallback_to_cohort": False,
        },
        "profile_mean_cost": costs | {"total": 3172.5},
        "own_cost": costs,
        "indicative_budget": {
            "amount": 0.0,
            "band": None,
            "band_lower": None,
            "band_upper": None,
            "basis": "none",
            "cashable_settings": ["chc", "social_care", "community"],
        },
    } | changes


def read_statements(*objects: dict[str, Any]) -> pl.DataFrame:
    lines = "".join(json.dumps(o) + "\n" for o in objects)
    return pl.read_ndjson(io.StringIO(lines), schema=polars_schema(IndividualStatement))


def test_statement_jsonl_validates() -> None:
    IndividualStatement.validate(read_statements(statement()))


def test_statement_rejects_unknown_budget_basis() -> None:
    bad = statement()
    bad["indicative_budget"] = bad["indicative_budget"] | {"basis": "guess"}
    with pytest.raises(pa.errors.SchemaErrors):
        IndividualStatement.validate(read_statements(bad), lazy=True)


# -- the registry ----------------------------------------------------------------------


def test_every_export_has_a_path_and_described_columns() -> None:
    assert set(EXPORT_MODELS) == set(EXPORT_PATHS)
    for model in EXPORT_MODELS.values():
        schema = model.to_schema()
        assert not schema.strict, f"{schema.name}: the contract says 'at least these columns'"
        for name, column in schema.columns.items():
            assert column.description, f"{schema.name}.{name} has no description"


def test_export_models_empty_frames_have_the_contract_columns() -> None:
    person_costs = pl.DataFrame(schema=polars_schema(PersonCosts))
    assert person_costs.columns == [
        "person_id",
        "financial_year",
        "age_band",
        "sex",
        *[f"cost_{s}" for s in SIX],
        "cost_total",
        "cohorts",
    ]
    assert person_costs.schema["cohorts"] == pl.List(pl.String)
    PersonCosts.validate(person_costs)
