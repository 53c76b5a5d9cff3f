"""Landing models follow schemas.sources; the committed data dictionary is up to date."""

from pathlib import Path

import polars as pl
import pytest

from schemas import dictionary
from schemas.landing import LANDING_MODELS
from schemas.reference import REFERENCE_MODELS
from schemas.sources import SOURCES

REPO = Path(__file__).parents[3]
WORKED_LANDING = REPO / "tests" / "data" / "worked_example" / "landing"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_landing_model_matches_sources(source) -> None:
    schema = LANDING_MODELS[source.name].to_schema()

    assert tuple(schema.columns) == source.required_columns
    assert schema.name == source.file_name
    assert not schema.strict  # extra columns are ignored, not refused
    for name, column in schema.columns.items():
        assert str(column.dtype) == "String"
        assert column.nullable
        assert column.description, name
        assert column.description.split(".")[0] in {
            "Text",
            "Date `YYYY-MM-DD`",
            "Decimal",
            "Integer",
        }


def test_landing_descriptions_carry_the_quarantine_codes() -> None:
    acute = LANDING_MODELS["acute"].to_schema().columns
    assert "unparseable_date:start_date" in acute["start_date"].description
    assert "end_before_start" in acute["end_date"].description
    assert "duplicate_id" in acute["activity_id"].description
    social = LANDING_MODELS["social_care"].to_schema().columns
    assert "negative:client_contribution_weekly" in social["client_contribution_weekly"].description


@pytest.mark.skipif(not WORKED_LANDING.is_dir(), reason="worked example landing not copied")
@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_worked_example_landing_headers_fit(source) -> None:
    raw = pl.read_csv(WORKED_LANDING / source.file_name, infer_schema=False, n_rows=5)
    LANDING_MODELS[source.name].validate(raw)


def test_every_reference_column_is_described() -> None:
    for model in REFERENCE_MODELS.values():
        for name, column in model.to_schema().columns.items():
            assert column.description, name


def test_committed_data_dictionary_is_up_to_date() -> None:
    committed = (REPO / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert dictionary.render_data_dictionary() == committed, (
        "docs/data-dictionary.md is stale: run `python -m schemas.dictionary`"
    )


def test_dictionary_has_one_table_per_model() -> None:
    text = dictionary.render_data_dictionary()
    for model in LANDING_MODELS.values():
        assert f"### `{model.to_schema().name}`" in text
    for file_name in REFERENCE_MODELS:
        assert f"### `{file_name}`" in text
    assert "### `settings.yaml` (optional)" in text
    assert "| `indicative_budget.basis` | String | no |" in text
    assert "| `net_cost` (optional) | Float64 | no |" in text


def test_check_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "data-dictionary.md"
    assert dictionary.main(["--check", "--output", str(output)]) == 1
    assert "out of date" in capsys.readouterr().err

    assert dictionary.main(["--output", str(output)]) == 0
    assert dictionary.main(["--check", "--output", str(output)]) == 0

    output.write_text(output.read_text() + "edited by hand\n")
    assert dictionary.main(["--check", "--output", str(output)]) == 1
