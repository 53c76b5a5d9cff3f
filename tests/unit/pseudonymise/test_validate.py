"""Which landing rows are quarantined, and why (data-contract.md "Which rows are quarantined").

Each rule is shown on a small inline extract with the reasons worked out by hand;
the worked example then checks every row of a whole delivery, and hypothesis checks
the date and number parsers on values no one thought to write down.
"""

import string
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pseudonymise.landing import (
    FILE_COLUMN,
    FILE_INDEX_COLUMN,
    ROW_NUMBER_COLUMN,
    RawSource,
    read_source,
)
from pseudonymise.validate import (
    REASONS_COLUMN,
    REPLACED_COLUMN,
    parse_accepted,
    parse_date,
    parse_number,
    quarantine_reasons,
    summarise,
)
from schemas.sources import SOURCE_BY_NAME, SOURCES, SourceSpec

WORKED_EXAMPLE = Path(__file__).parents[2] / "data" / "worked_example"

#: A valid value for every column of every source; tests change only what they test.
DEFAULTS = {
    "nhs_number": "9990000018",
    "local_patient_id": "L1",
    "date_of_birth": "1950-01-02",
    "sex": "2",
    "postcode": "TS1 1AA",
    "given_name": "Ann",
    "family_name": "Smith",
    "activity_id": "A1",
    "package_id": "P1",
    "contact_id": "C1",
    "record_id": "R1",
    "event_id": "E1",
    "service_id": "S1",
    "provider_code": "RVW",
    "practice_code": "A81001",
    "pod": "EL",
    "hrg_code": "DZ65K",
    "primary_diagnosis": "",
    "care_setting": "HOME",
    "funding_stream": "CHC",
    "service": "PODIATRY",
    "contact_mode": "F2F",
    "attended": "Y",
    "record_type": "CONTACT",
    "cpa": "N",
    "staff_type": "GP",
    "mode": "SURGERY",
    "register": "COPD",
    "service_type": "HOME_CARE",
    "unit_type": "HOUR",
    "start_date": "2024-01-01",
    "end_date": "",
    "contact_date": "2024-01-01",
    "event_date": "2024-01-01",
    "diagnosis_date": "2010-01-01",
    "weekly_cost": "100.00",
    "duration_minutes": "15",
    "planned_units_per_week": "7",
    "unit_cost": "20.00",
    "client_contribution_weekly": "",
}


def extract(spec: SourceSpec, rows: list[dict[str, str]]) -> str:
    lines = [",".join(spec.required_columns)]
    lines += [",".join({**DEFAULTS, **row}[c] for c in spec.required_columns) for row in rows]
    return "\n".join(lines) + "\n"


def land(tmp_path: Path, spec: SourceSpec, files: dict[str, str]) -> RawSource:
    """Write one extract (``{"": text}``) or a folder of them, then read it."""
    for name, text in files.items():
        path = tmp_path / f"{spec.name}.csv" if name == "" else tmp_path / spec.name / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return read_source(tmp_path, spec)


def reasons_of(tmp_path: Path, source: str, rows: list[dict[str, str]]) -> list[str]:
    spec = SOURCE_BY_NAME[source]
    raw = land(tmp_path, spec, {"": extract(spec, rows)})
    return quarantine_reasons(raw)[REASONS_COLUMN].fill_null("").to_list()


# --- each reason code --------------------------------------------------------------


def test_a_clean_row_is_accepted_in_every_source(tmp_path: Path) -> None:
    for spec in SOURCES:
        assert reasons_of(tmp_path / spec.name, spec.name, [{}]) == [""], spec.name


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "unparseable_date:date_of_birth"),  # required and blank
        ("2024-02-30", "unparseable_date:date_of_birth"),  # not a real day
        ("2023-02-29", "unparseable_date:date_of_birth"),  # not a leap year
        ("2024-2-03", "unparseable_date:date_of_birth"),  # not zero-padded
        ("03/02/2024", "unparseable_date:date_of_birth"),
        ("2024-02-03T00:00", "unparseable_date:date_of_birth"),
        ("0000-01-01", "unparseable_date:date_of_birth"),
        ("2024-02-29", ""),  # a leap day
        (" 2024-02-03 ", ""),  # surrounding whitespace is stripped
    ],
)
def test_required_dates(tmp_path: Path, value: str, reason: str) -> None:
    assert reasons_of(tmp_path, "acute", [{"date_of_birth": value}]) == [reason]


def test_each_sources_activity_date_is_required(tmp_path: Path) -> None:
    for source, col in [
        ("acute", "start_date"),
        ("community", "contact_date"),
        ("primary_care_events", "event_date"),
        ("primary_care_registers", "diagnosis_date"),
    ]:
        got = reasons_of(tmp_path / source, source, [{col: ""}, {col: "yesterday"}])
        assert got == [f"unparseable_date:{col}"] * 2, source


def test_an_optional_end_date_may_be_blank_but_not_wrong(tmp_path: Path) -> None:
    rows = [{"end_date": ""}, {"end_date": "  "}, {"end_date": "2024-13-01", "activity_id": "A2"}]
    assert reasons_of(
        tmp_path, "acute", [{**r, "activity_id": f"A{i}"} for i, r in enumerate(rows)]
    ) == [
        "",
        "",
        "unparseable_date:end_date",
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "unparseable_number:weekly_cost"),
        ("n/a", "unparseable_number:weekly_cost"),
        ('"1,000"', "unparseable_number:weekly_cost"),  # quoted in the file
        ("£100", "unparseable_number:weekly_cost"),
        ("1e3", "unparseable_number:weekly_cost"),
        ("nan", "unparseable_number:weekly_cost"),
        ("-inf", "unparseable_number:weekly_cost"),
        ("-5", "negative:weekly_cost"),
        ("-0.01", "negative:weekly_cost"),
        ("-0", ""),
        ("0", ""),
        (".5", ""),
        ("12.", ""),
        ("+12.50", ""),
        (" 12.50 ", ""),
    ],
)
def test_required_numbers(tmp_path: Path, value: str, reason: str) -> None:
    assert reasons_of(tmp_path, "chc", [{"weekly_cost": value}]) == [reason]


def test_community_duration_and_social_care_numbers(tmp_path: Path) -> None:
    assert reasons_of(tmp_path / "c", "community", [{"duration_minutes": "-15"}]) == [
        "negative:duration_minutes"
    ]
    rows = [
        {"service_id": "S1", "planned_units_per_week": ""},
        {"service_id": "S2", "unit_cost": "-1"},
        {"service_id": "S3", "client_contribution_weekly": ""},  # blank means 0
        {"service_id": "S4", "client_contribution_weekly": "none"},
        {"service_id": "S5", "client_contribution_weekly": "-2.50"},
    ]
    assert reasons_of(tmp_path / "s", "social_care", rows) == [
        "unparseable_number:planned_units_per_week",
        "negative:unit_cost",
        "",
        "unparseable_number:client_contribution_weekly",
        "negative:client_contribution_weekly",
    ]


def test_end_before_start(tmp_path: Path) -> None:
    rows = [
        {"package_id": "P1", "start_date": "2024-02-01", "end_date": "2024-01-31"},
        {"package_id": "P2", "start_date": "2024-02-01", "end_date": "2024-02-01"},  # same day
        {"package_id": "P3", "start_date": "bad", "end_date": "2024-01-31"},  # can't compare
    ]
    assert reasons_of(tmp_path, "chc", rows) == [
        "end_before_start",
        "",
        "unparseable_date:start_date",
    ]


def test_several_faults_are_joined_in_the_contracts_order(tmp_path: Path) -> None:
    row = {
        "date_of_birth": "1950-02-30",
        "start_date": "2024-01-10",
        "end_date": "2024-01-01",
        "planned_units_per_week": "seven",
        "unit_cost": "-1",
        "client_contribution_weekly": "-2",
    }
    assert reasons_of(tmp_path, "social_care", [row]) == [
        "unparseable_date:date_of_birth;"
        "unparseable_number:planned_units_per_week;"
        "negative:unit_cost;negative:client_contribution_weekly;"
        "end_before_start"
    ]


def test_dates_in_table_order_then_numbers(tmp_path: Path) -> None:
    row = {"date_of_birth": "", "start_date": "x", "end_date": "y", "weekly_cost": ""}
    assert reasons_of(tmp_path, "chc", [row]) == [
        "unparseable_date:date_of_birth;unparseable_date:start_date;"
        "unparseable_date:end_date;unparseable_number:weekly_cost"
    ]


def test_a_malformed_row_carries_malformed_row_alone(tmp_path: Path) -> None:
    spec = SOURCE_BY_NAME["chc"]
    text = extract(spec, [{}, {}])
    lines = text.splitlines()
    lines[2] = lines[2] + ",extra"  # same id as row 1, and bad in every way once split
    raw = land(tmp_path, spec, {"": "\n".join(lines) + "\n"})

    reasons = quarantine_reasons(raw)

    assert reasons[REASONS_COLUMN].to_list() == [None, "malformed_row"]
    assert reasons[REPLACED_COLUMN].to_list() == [False, False]


# --- duplicate ids -----------------------------------------------------------------


def test_the_first_of_duplicates_in_one_file_wins(tmp_path: Path) -> None:
    rows = [
        {"package_id": "P1"},
        {"package_id": "P2"},
        {"package_id": "P1"},
        {"package_id": " P1 "},
    ]
    spec = SOURCE_BY_NAME["chc"]
    reasons = quarantine_reasons(land(tmp_path, spec, {"": extract(spec, rows)}))
    assert reasons[REASONS_COLUMN].to_list() == [None, None, "duplicate_id", "duplicate_id"]
    assert reasons[REPLACED_COLUMN].to_list() == [False] * 4


def test_a_redelivery_replaces_what_it_repeats(tmp_path: Path) -> None:
    spec = SOURCE_BY_NAME["chc"]
    raw = land(
        tmp_path,
        spec,
        {
            "2024-04.csv": extract(spec, [{"package_id": "P1"}, {"package_id": "P2"}]),
            "2024-05.csv": extract(
                spec,
                [
                    {"package_id": "P3"},
                    {"package_id": "P1", "weekly_cost": "120"},
                    {"package_id": "P1"},
                ],
            ),
        },
    )

    reasons = quarantine_reasons(raw)

    assert reasons.select(
        FILE_COLUMN, ROW_NUMBER_COLUMN, REASONS_COLUMN, REPLACED_COLUMN
    ).rows() == [
        ("2024-04.csv", 1, "duplicate_id", True),  # lost to the re-delivery
        ("2024-04.csv", 2, None, False),
        ("2024-05.csv", 1, None, False),
        ("2024-05.csv", 2, None, False),  # the first such row of the latest file wins
        ("2024-05.csv", 3, "duplicate_id", False),  # lost within its own file
    ]
    outcome = summarise(raw, reasons)
    assert (outcome.rows_read, outcome.rows_accepted, outcome.rows_quarantined) == (5, 3, 2)
    assert outcome.rows_replaced == 1


def test_rows_with_other_faults_do_not_compete(tmp_path: Path) -> None:
    spec = SOURCE_BY_NAME["chc"]
    rows = [
        {"package_id": "P1", "start_date": "2024-02-30"},
        {"package_id": "P1"},
        {"package_id": "P1", "weekly_cost": "-1"},
    ]
    raw = land(
        tmp_path,
        spec,
        {
            "1.csv": extract(spec, rows),
            "2.csv": extract(spec, [{"package_id": "P1", "date_of_birth": ""}]),
        },
    )
    reasons = quarantine_reasons(raw)
    assert reasons[REASONS_COLUMN].to_list() == [
        "unparseable_date:start_date",
        None,  # the only fault-free row: it wins although a later file repeats its id
        "negative:weekly_cost",
        "unparseable_date:date_of_birth",
    ]
    assert not reasons[REPLACED_COLUMN].any()


def test_the_registers_id_is_the_triple(tmp_path: Path) -> None:
    rows = [
        {"nhs_number": "999 000 0018", "local_patient_id": "GP1", "register": "COPD"},
        {"nhs_number": "9990000018", "local_patient_id": "GP1", "register": "COPD"},  # same
        {"nhs_number": "999-000-0018", "local_patient_id": "GP1", "register": "ASTHMA"},
        {"nhs_number": "9990000018", "local_patient_id": "GP2", "register": "COPD"},
        {"nhs_number": "", "local_patient_id": "GP3", "register": "COPD"},
        {"nhs_number": " ", "local_patient_id": "GP3", "register": "COPD"},  # blank again
        {"nhs_number": "", "local_patient_id": "GP3", "register": "CKD"},
    ]
    assert reasons_of(tmp_path, "primary_care_registers", rows) == [
        "",
        "duplicate_id",
        "",
        "",
        "",
        "duplicate_id",
        "",
    ]


def test_a_blank_record_id_is_an_id_like_any_other(tmp_path: Path) -> None:
    rows = [{"activity_id": ""}, {"activity_id": "  "}, {"activity_id": "A2"}]
    assert reasons_of(tmp_path, "acute", rows) == ["", "duplicate_id", ""]


# --- outputs -----------------------------------------------------------------------


def test_reasons_keep_row_order_and_bookkeeping_columns(tmp_path: Path) -> None:
    spec = SOURCE_BY_NAME["chc"]
    raw = land(tmp_path, spec, {"": extract(spec, [{"package_id": f"P{i}"} for i in range(5)])})
    reasons = quarantine_reasons(raw)
    assert reasons.columns == [
        FILE_COLUMN,
        FILE_INDEX_COLUMN,
        ROW_NUMBER_COLUMN,
        REASONS_COLUMN,
        REPLACED_COLUMN,
    ]
    assert reasons.schema[REASONS_COLUMN] == pl.String
    assert reasons.schema[REPLACED_COLUMN] == pl.Boolean
    assert reasons[ROW_NUMBER_COLUMN].to_list() == [1, 2, 3, 4, 5]


def test_a_source_with_zero_rows(tmp_path: Path) -> None:
    spec = SOURCE_BY_NAME["social_care"]
    raw = land(tmp_path, spec, {"": extract(spec, [])})
    reasons = quarantine_reasons(raw)
    accepted = parse_accepted(raw, reasons)
    assert reasons.height == 0
    assert accepted.height == 0
    assert accepted.schema["start_date"] == pl.Date
    assert accepted.schema["unit_cost"] == pl.Float64
    outcome = summarise(raw, reasons)
    assert (outcome.rows_read, outcome.rows_accepted, outcome.rows_quarantined) == (0, 0, 0)


def test_parse_accepted_types_and_strips_the_accepted_rows(tmp_path: Path) -> None:
    spec = SOURCE_BY_NAME["social_care"]
    rows = [
        {
            "service_id": " S1 ",
            "given_name": " Ann ",
            "start_date": " 2024-01-05",
            "end_date": "",
            "planned_units_per_week": "7.5",
            "unit_cost": " 20 ",
            "client_contribution_weekly": "",
        },
        {"service_id": "S2", "unit_cost": "-1"},  # quarantined
        {
            "service_id": "S3",
            "end_date": "2024-03-31",
            "client_contribution_weekly": "12.25",
        },
    ]
    raw = land(tmp_path, spec, {"": extract(spec, rows)})
    accepted = parse_accepted(raw, quarantine_reasons(raw))

    assert accepted.columns == [
        *spec.required_columns,
        FILE_COLUMN,
        FILE_INDEX_COLUMN,
        ROW_NUMBER_COLUMN,
    ]
    assert accepted[ROW_NUMBER_COLUMN].to_list() == [1, 3]
    assert accepted["service_id"].to_list() == ["S1", "S3"]
    assert accepted["given_name"].to_list() == ["Ann", "Ann"]
    assert accepted["start_date"].to_list() == [date(2024, 1, 5), date(2024, 1, 1)]
    assert accepted["end_date"].to_list() == [None, date(2024, 3, 31)]
    assert accepted["date_of_birth"].dtype == pl.Date
    assert accepted["planned_units_per_week"].to_list() == [7.5, 7.0]
    assert accepted["unit_cost"].to_list() == [20.0, 20.0]
    assert accepted["client_contribution_weekly"].to_list() == [0.0, 12.25]


def test_parse_accepted_refuses_reasons_of_another_source(tmp_path: Path) -> None:
    spec = SOURCE_BY_NAME["chc"]
    raw = land(tmp_path, spec, {"": extract(spec, [{}])})
    with pytest.raises(ValueError, match="chc"):
        parse_accepted(raw, quarantine_reasons(raw).head(0))


# --- the worked example: every row of a whole delivery -----------------------------


def test_worked_example_every_rows_reason_and_reconciliation_counts() -> None:
    expected_rows = pl.read_csv(
        WORKED_EXAMPLE / "expected" / "row_outcomes.csv", infer_schema=False
    ).with_columns(pl.col("row_number").cast(pl.Int64), pl.col("quarantine_reason").fill_null(""))
    reconciliation = {
        r["source"]: r
        for r in pl.read_csv(WORKED_EXAMPLE / "expected" / "reconciliation.csv").iter_rows(
            named=True
        )
    }
    assert set(reconciliation) == {s.name for s in SOURCES}

    for spec in SOURCES:
        raw = read_source(WORKED_EXAMPLE / "landing", spec)
        reasons = quarantine_reasons(raw)
        got = reasons.select(
            pl.col(FILE_COLUMN).alias("file"),
            pl.col(ROW_NUMBER_COLUMN).alias("row_number"),
            pl.col(REASONS_COLUMN).fill_null("").alias("quarantine_reason"),
        )
        want = expected_rows.filter(pl.col("source") == spec.name).select(
            "file", "row_number", "quarantine_reason"
        )
        assert got.rows() == want.rows(), spec.name

        outcome = summarise(raw, reasons)
        expected = reconciliation[spec.name]
        assert outcome.encoding == expected["encoding"], spec.name
        assert outcome.rows_read == expected["rows_read"], spec.name
        assert outcome.rows_accepted == expected["rows_accepted"], spec.name
        assert outcome.rows_quarantined == expected["rows_quarantined"], spec.name
        assert outcome.rows_replaced == expected["rows_replaced"], spec.name
        assert parse_accepted(raw, reasons).height == expected["rows_accepted"], spec.name


# --- the parsers, on values no one wrote down ---------------------------------------


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_property_every_real_date_parses_to_itself(day: date) -> None:
    assert parse_date(day.isoformat()) == day
    assert parse_date(f" {day.isoformat()}\t") == day


@given(st.text(max_size=16))
def test_property_a_parsed_date_is_exactly_the_text_it_came_from(text: str) -> None:
    parsed = parse_date(text)
    assert parsed is None or parsed.isoformat() == text.strip()


@given(st.dates(), st.integers(min_value=1, max_value=40))
def test_property_impossible_days_never_parse(day: date, extra: int) -> None:
    first_of_next_month = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    last_day = (first_of_next_month - timedelta(days=1)).day
    impossible_day = last_day + extra
    if impossible_day <= 99:
        assert parse_date(f"{day.year:04d}-{day.month:02d}-{impossible_day:02d}") is None


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=2, min_value=-(10**9), max_value=10**9
    )
)
def test_property_every_plain_decimal_parses_to_its_value(value: Decimal) -> None:
    text = f"{value:f}"
    assert parse_number(text) == pytest.approx(float(text))


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_property_integers_parse_exactly(value: int) -> None:
    assert parse_number(str(value)) == float(value)


@given(st.text(max_size=16))
def test_property_any_text_either_is_a_plain_number_or_is_refused(text: str) -> None:
    parsed = parse_number(text)
    stripped = text.strip()
    if parsed is not None:
        assert stripped and set(stripped) <= set("+-." + string.digits)
        assert parsed == float(stripped)
    for refused in ("e", "E", ",", "_", "£", "n", "i"):
        if refused in stripped:
            assert parsed is None
