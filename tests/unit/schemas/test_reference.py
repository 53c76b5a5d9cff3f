"""The reference-table loader (schemas.reference): the worked example loads; every broken
rule names the file, the row (1 = first data row) and the column; absent optional files
give the documented defaults."""

import shutil
from pathlib import Path

import polars as pl
import pytest

from schemas.reference import (
    DEFAULT_SETTINGS,
    AcuteTariff,
    BlockContracts,
    ReferenceError,
    ReferenceTables,
    UnitCosts,
    default_cohorts_yaml,
    financial_years,
    load_reference_tables,
    polars_schema,
)

WORKED_EXAMPLE = Path(__file__).parents[2] / "data" / "worked_example" / "reference"
TARIFF_HEADER = "financial_year,hrg_code,pod,price,trim_point_days,excess_bed_day_price"


@pytest.fixture
def reference_dir(tmp_path: Path) -> Path:
    """A copy of the worked example's reference folder to break."""
    folder = tmp_path / "reference"
    shutil.copytree(WORKED_EXAMPLE, folder)
    return folder


def write_tariff(folder: Path, *rows: str, header: str = TARIFF_HEADER) -> None:
    (folder / "acute_tariff.csv").write_text("\n".join([header, *rows]) + "\n")


def load_error(folder: Path) -> ReferenceError:
    with pytest.raises(ReferenceError) as caught:
        load_reference_tables(folder)
    return caught.value


# -- the worked example ----------------------------------------------------------------


def test_worked_example_loads_with_typed_columns() -> None:
    tables = load_reference_tables(WORKED_EXAMPLE)

    assert isinstance(tables, ReferenceTables)
    assert tables.acute_tariff.height == 66
    assert tables.acute_pod_default.height == 12
    assert tables.unit_costs.height == 50
    assert tables.block_contracts.height == 2
    assert tables.acute_tariff.schema == polars_schema(AcuteTariff)
    assert tables.unit_costs.schema == polars_schema(UnitCosts)
    assert tables.block_contracts.schema == polars_schema(BlockContracts)


def test_worked_example_values_are_cast() -> None:
    tables = load_reference_tables(WORKED_EXAMPLE)

    dz65k = tables.acute_tariff.filter(
        (pl.col("financial_year") == "2024/25") & (pl.col("hrg_code") == "DZ65K")
    ).row(0, named=True)
    assert dz65k["price"] == 3336.0
    assert dz65k["trim_point_days"] == 14
    assert dz65k["excess_bed_day_price"] == 330.0
    assert dz65k["reference"] is None  # the file has no reference column

    block = tables.block_contracts.row(1, named=True)
    assert (block["provider_code"], block["service"], block["contract_value"]) == (
        "RTR",
        "PODIATRY",
        4360.0,
    )


def test_blank_mode_is_null_and_reference_kept() -> None:
    unit_costs = load_reference_tables(WORKED_EXAMPLE).unit_costs
    district_nursing = unit_costs.filter(
        (pl.col("financial_year") == "2023/24") & (pl.col("service") == "DISTRICT_NURSING")
    )
    assert district_nursing["mode"].to_list() == [None, "TEL"]
    assert district_nursing["reference"].str.starts_with("synthetic acceptance figure").all()


def test_financial_years_earliest_first() -> None:
    unit_costs = load_reference_tables(WORKED_EXAMPLE).unit_costs
    assert financial_years(unit_costs) == ["2023/24", "2024/25"]


# -- a bad tariff file: file, row and column named ---------------------------------------


def test_negative_price_names_file_row_and_column(reference_dir: Path) -> None:
    write_tariff(
        reference_dir,
        "2024/25,DZ65K,NEL,3336,14,330",
        "2024/25,DZ65H,NEL,2110,9,320",
        "2024/25,DZ11R,NEL,-2487,11,314",
    )
    error = load_error(reference_dir)

    [problem] = error.problems
    assert (problem.file, problem.row, problem.column) == ("acute_tariff.csv", 3, "price")
    assert problem.value == "-2487"
    message = str(error)
    assert "acute_tariff.csv" in message
    assert "row 3" in message
    assert "column 'price'" in message
    assert "0 or more" in message


@pytest.mark.parametrize("year", ["2024/26", "2024-25", "24/25", "2024/2X", "FY2024"])
def test_bad_financial_year(reference_dir: Path, year: str) -> None:
    write_tariff(reference_dir, "2024/25,DZ65K,NEL,3336,14,330", f"{year},DZ65H,NEL,2110,9,320")
    error = load_error(reference_dir)

    [problem] = error.problems
    assert (problem.file, problem.row, problem.column) == (
        "acute_tariff.csv",
        2,
        "financial_year",
    )
    assert "YYYY/YY" in str(error)


def test_financial_year_across_a_century_is_fine(reference_dir: Path) -> None:
    write_tariff(reference_dir, "2099/00,DZ65K,NEL,3336,14,330")
    assert load_reference_tables(reference_dir).acute_tariff["financial_year"].to_list() == [
        "2099/00"
    ]


def test_duplicate_key_names_both_rows(reference_dir: Path) -> None:
    write_tariff(
        reference_dir,
        "2024/25,DZ65K,NEL,3336,14,330",
        "2024/25,DZ65H,NEL,2110,9,320",
        "2024/25,DZ65K,NEL,3400,14,330",
    )
    error = load_error(reference_dir)

    [problem] = error.problems
    assert (problem.file, problem.row) == ("acute_tariff.csv", 3)
    assert problem.column == "financial_year, hrg_code, pod"
    assert "repeats row 1" in str(error)


def test_missing_column_names_file_and_column(reference_dir: Path) -> None:
    write_tariff(
        reference_dir,
        "2024/25,DZ65K,NEL,14,330",
        header="financial_year,hrg_code,pod,trim_point_days,excess_bed_day_price",
    )
    error = load_error(reference_dir)

    [problem] = error.problems
    assert (problem.file, problem.row, problem.column) == ("acute_tariff.csv", None, "price")
    assert "acute_tariff.csv" in str(error)
    assert "'price'" in str(error)
    assert "missing" in str(error)


def test_every_problem_is_reported_in_row_order(reference_dir: Path) -> None:
    write_tariff(
        reference_dir,
        "2024/25,DZ65K,XX,3336,14,330",  # pod not a point of delivery
        "2024/25,,NEL,abc,9.5,320",  # blank hrg_code, price not a number, trim not whole
        ",,,,,",  # a spreadsheet's empty row: skipped but counted
        "2024/25,DZ11R,NEL,nan,11,inf",  # NaN and infinity are not prices
    )
    error = load_error(reference_dir)

    found = [(p.row, p.column) for p in error.problems]
    assert found == [
        (1, "pod"),
        (2, "hrg_code"),
        (2, "price"),
        (2, "trim_point_days"),
        (4, "price"),
        (4, "excess_bed_day_price"),
    ]
    rules = {(p.row, p.column): p.rule for p in error.problems}
    assert "EL, NEL, DC, OPFA, OPFU, AE" in rules[(1, "pod")]
    assert rules[(2, "hrg_code")] == "must not be blank"
    assert rules[(2, "price")] == "must be a number"
    assert rules[(2, "trim_point_days")] == "must be a whole number"


def test_cells_are_trimmed_and_extra_columns_ignored(reference_dir: Path) -> None:
    write_tariff(
        reference_dir,
        " 2024/25 , DZ65K ,NEL, 3336 ,14,330,ignored",
        header=TARIFF_HEADER + ",local_note",
    )
    tariff = load_reference_tables(reference_dir).acute_tariff
    assert tariff.row(0)[:4] == ("2024/25", "DZ65K", "NEL", 3336.0)
    assert "local_note" not in tariff.columns


def test_byte_order_mark_and_windows_1252(reference_dir: Path) -> None:
    (reference_dir / "acute_pod_default.csv").write_bytes(
        "\ufefffinancial_year,pod,price,reference\n2024/25,EL,3650,£ per spell\n".encode()
    )
    (reference_dir / "block_contracts.csv").write_bytes(
        (
            "financial_year,source,provider_code,service,contract_value,reference\n"
            "2024/25,community,RTR,PODIATRY,4360,£4,360 contract\n"
        ).encode("cp1252")
    )
    # The unquoted comma above makes a ragged row: reported with its row number.
    error = load_error(reference_dir)
    assert [(p.file, p.row) for p in error.problems] == [("block_contracts.csv", 1)]

    (reference_dir / "block_contracts.csv").write_bytes(
        (
            "financial_year,source,provider_code,service,contract_value,reference\n"
            '2024/25,community,RTR,PODIATRY,4360,"£4,360 contract"\n'
        ).encode("cp1252")
    )
    tables = load_reference_tables(reference_dir)
    assert tables.acute_pod_default["reference"].to_list() == ["£ per spell"]
    assert tables.block_contracts["reference"].to_list() == ["£4,360 contract"]


def test_unit_cost_rules(reference_dir: Path) -> None:
    (reference_dir / "unit_costs.csv").write_text(
        "financial_year,source,service,mode,unit,cost\n"
        "2024/25,community,PODIATRY,,CONTACT,48.6\n"
        "2024/25,acute,PODIATRY,,CONTACT,48.6\n"  # acute is priced by tariff
        "2024/25,community,PODIATRY,,VISIT,48.6\n"  # not a unit
        "2024/25,community,PODIATRY,,CONTACT,50\n"  # repeats row 1: blank modes are equal
    )
    error = load_error(reference_dir)
    assert [(p.file, p.row, p.column) for p in error.problems] == [
        ("unit_costs.csv", 2, "source"),
        ("unit_costs.csv", 3, "unit"),
        ("unit_costs.csv", 4, "financial_year, source, service, mode, unit"),
    ]


def test_block_contracts_only_for_settings_priced_by_unit_costs(reference_dir: Path) -> None:
    """A block replaces a national unit cost: community, mental health or primary care,
    never acute (tariff) or CHC and social care (packages)."""
    (reference_dir / "block_contracts.csv").write_text(
        "financial_year,source,provider_code,service,contract_value\n"
        "2024/25,acute,RTR,NEL,1000\n"
        "2024/25,primary_care,Y001,GP,1000\n"
    )
    error = load_error(reference_dir)
    [problem] = error.problems
    assert (problem.file, problem.row, problem.column) == ("block_contracts.csv", 1, "source")


@pytest.mark.parametrize("name", ["acute_tariff.csv", "acute_pod_default.csv", "unit_costs.csv"])
def test_missing_required_file(reference_dir: Path, name: str) -> None:
    (reference_dir / name).unlink()
    error = load_error(reference_dir)
    assert name in str(error)
    assert "missing" in str(error)


def test_empty_and_header_only_files(reference_dir: Path) -> None:
    (reference_dir / "acute_tariff.csv").write_text("")
    assert "empty" in str(load_error(reference_dir))

    write_tariff(reference_dir)
    assert "no rows" in str(load_error(reference_dir))


def test_missing_reference_folder(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nowhere")
    assert "nowhere" in str(error)


# -- defaults for the optional files ------------------------------------------------------


def test_absent_optional_files_give_defaults(reference_dir: Path) -> None:
    for name in ("block_contracts.csv", "cohorts.yaml"):
        (reference_dir / name).unlink()
    assert not (reference_dir / "settings.yaml").exists()

    tables = load_reference_tables(reference_dir)

    assert tables.block_contracts.height == 0
    assert tables.block_contracts.schema == polars_schema(BlockContracts)
    assert tables.cohorts_yaml == default_cohorts_yaml()
    assert tables.settings == {
        "cashable_settings": ["chc", "social_care", "community"],
        "disclosure": {"threshold": 7, "rounding": 5, "override": None},
        "k_anonymity": {"k": 5, "override": None},
        "recipients_open_pseudonymiser": {},
    }


def test_default_cohorts_is_the_shipped_eight() -> None:
    assert default_cohorts_yaml() == (WORKED_EXAMPLE / "cohorts.yaml").read_text()


def test_cohorts_yaml_is_read_when_present(reference_dir: Path) -> None:
    (reference_dir / "cohorts.yaml").write_text("cohorts: []\n")
    assert load_reference_tables(reference_dir).cohorts_yaml == "cohorts: []\n"


def test_settings_merge_over_defaults(reference_dir: Path) -> None:
    (reference_dir / "settings.yaml").write_text(
        "cashable_settings: [chc, social_care]\n"
        "disclosure:\n"
        "  threshold: 10\n"
        "k_anonymity: {k: 3, override: small pilot agreed with the IG lead}\n"
        "recipients_open_pseudonymiser: {legacy_site: {salt_file: salts/legacy.txt}}\n"
    )
    settings = load_reference_tables(reference_dir).settings

    assert settings == {
        "cashable_settings": ["chc", "social_care"],
        "disclosure": {"threshold": 10, "rounding": 5, "override": None},
        "k_anonymity": {"k": 3, "override": "small pilot agreed with the IG lead"},
        "recipients_open_pseudonymiser": {"legacy_site": {"salt_file": "salts/legacy.txt"}},
    }
    assert DEFAULT_SETTINGS["disclosure"]["threshold"] == 7  # defaults not mutated


def test_empty_settings_file_gives_defaults(reference_dir: Path) -> None:
    (reference_dir / "settings.yaml").write_text("# nothing set\n")
    assert load_reference_tables(reference_dir).settings == DEFAULT_SETTINGS


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        ("colour: blue\n", "colour"),
        ("disclosure: {threshold: 7, colour: blue}\n", "disclosure.colour"),
        ("disclosure: {threshold: 5}\n", "disclosure.threshold"),
        ("disclosure: {rounding: 1}\n", "disclosure.rounding"),
        ("k_anonymity: {k: 2}\n", "k_anonymity.k"),
        ("k_anonymity: {k: five}\n", "k_anonymity.k"),
        ("cashable_settings: [chc, housing]\n", "cashable_settings"),
        ("cashable_settings: []\n", "cashable_settings"),
        ("disclosure: 7\n", "disclosure"),
        ("recipients_open_pseudonymiser: {'bad name': {}}\n", "recipients_open_pseudonymiser"),
    ],
)
def test_bad_settings_name_the_setting(reference_dir: Path, text: str, setting: str) -> None:
    (reference_dir / "settings.yaml").write_text(text)
    error = load_error(reference_dir)
    assert [(p.file, p.column) for p in error.problems] == [("settings.yaml", setting)]
    assert "settings.yaml" in str(error)
    assert f"'{setting}'" in str(error)


def test_lowered_threshold_with_override_is_allowed(reference_dir: Path) -> None:
    (reference_dir / "settings.yaml").write_text(
        "disclosure: {threshold: 5, override: approved by the IG lead on 2025-01-10}\n"
    )
    assert load_reference_tables(reference_dir).settings["disclosure"]["threshold"] == 5


def test_settings_not_yaml(reference_dir: Path) -> None:
    (reference_dir / "settings.yaml").write_text("disclosure: [unclosed\n")
    assert "not valid YAML" in str(load_error(reference_dir))
