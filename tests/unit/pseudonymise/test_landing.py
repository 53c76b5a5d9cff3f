"""Reading landing extracts (data-contract.md section 2, "Incoming extracts").

Small files written byte for byte into ``tmp_path``: encodings, byte-order marks,
line endings, RFC 4180 quoting, malformed rows, folders of re-deliveries, and the
errors a site sees (which must name the file and column, never a cell value).
"""

import csv
import io
import tempfile
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pseudonymise.landing import (
    FILE_COLUMN,
    FILE_INDEX_COLUMN,
    MALFORMED_COLUMN,
    ROW_NUMBER_COLUMN,
    UTF8,
    WINDOWS_1252,
    LandingError,
    RawSource,
    read_source,
    source_files,
)
from schemas.sources import SOURCE_BY_NAME, SourceSpec

CHC = SOURCE_BY_NAME["chc"]
HEADER = ",".join(CHC.required_columns)
ROW_1 = "9990000018,CHC1,1950-01-02,2,TS1 1AA,P1,HOME,CHC,2024-01-01,,100.00"
ROW_2 = "9990000026,CHC2,1951-03-04,1,TS2 2BB,P2,CARE_HOME,FNC,2024-02-01,2024-03-01,250"
#: A tiny source for property tests: the five identifier columns and one of its own.
MINI = SourceSpec(
    name="mini",
    setting="acute",
    id_columns=("rid",),
    activity_columns=("rid",),
    required_dates=("date_of_birth",),
)


def write(folder: Path, name: str, content: bytes | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read_chc(tmp_path: Path, content: bytes | str) -> RawSource:
    write(tmp_path, "chc.csv", content)
    return read_source(tmp_path, CHC)


def column(raw: RawSource, name: str) -> list[str]:
    return raw.frame[name].to_list()


# --- shape of what is read ---------------------------------------------------------


def test_reads_required_columns_as_text_exactly_as_written(tmp_path: Path) -> None:
    padded = ROW_2.replace("P2", " P2 ")
    raw = read_chc(tmp_path, f"{HEADER}\n{ROW_1}\n{padded}\n")

    assert raw.frame.columns == [
        *CHC.required_columns,
        FILE_COLUMN,
        FILE_INDEX_COLUMN,
        ROW_NUMBER_COLUMN,
        MALFORMED_COLUMN,
    ]
    assert raw.frame.schema[FILE_INDEX_COLUMN] == pl.Int32
    assert raw.frame.schema[ROW_NUMBER_COLUMN] == pl.Int64
    assert raw.frame.schema[MALFORMED_COLUMN] == pl.Boolean
    assert all(raw.frame.schema[c] == pl.String for c in CHC.required_columns)
    assert column(raw, "package_id") == ["P1", " P2 "]  # no trimming
    assert column(raw, "end_date") == ["", "2024-03-01"]  # empty is "", not null
    assert column(raw, "weekly_cost") == ["100.00", "250"]  # no number parsing
    assert column(raw, FILE_COLUMN) == ["chc.csv", "chc.csv"]
    assert column(raw, FILE_INDEX_COLUMN) == [0, 0]
    assert column(raw, ROW_NUMBER_COLUMN) == [1, 2]
    assert column(raw, MALFORMED_COLUMN) == [False, False]
    assert raw.rows_read == 2
    assert raw.encoding == UTF8
    assert [(f.path.name, f.file_index, f.encoding, f.rows) for f in raw.files] == [
        ("chc.csv", 0, UTF8, 2)
    ]


def test_columns_matched_by_name_in_any_order_extra_columns_dropped(tmp_path: Path) -> None:
    names = list(CHC.required_columns)
    values = ROW_1.split(",")
    order = list(reversed(range(len(names))))
    header = ",".join(["site_note", *[f" {names[i]} " for i in order]])
    row = ",".join(["anything", *[values[i] for i in order]])

    raw = read_chc(tmp_path, f"{header}\n{row}\n")

    assert "site_note" not in raw.frame.columns
    assert raw.frame.select(CHC.required_columns).row(0) == tuple(values)


def test_crlf_line_endings_with_and_without_final_newline(tmp_path: Path) -> None:
    for ending in ("\r\n", ""):
        raw = read_chc(tmp_path, f"{HEADER}\r\n{ROW_1}\r\n{ROW_2}{ending}")
        assert raw.rows_read == 2
        assert column(raw, "weekly_cost") == ["100.00", "250"]  # no "\r" left
        assert column(raw, MALFORMED_COLUMN) == [False, False]


def test_no_final_newline(tmp_path: Path) -> None:
    raw = read_chc(tmp_path, f"{HEADER}\n{ROW_1}")
    assert column(raw, "weekly_cost") == ["100.00"]


def test_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    raw = read_chc(tmp_path, b"\xef\xbb\xbf" + f"{HEADER}\r\n{ROW_1}\r\n".encode())
    assert column(raw, "nhs_number") == ["9990000018"]
    assert raw.encoding == UTF8


def test_quoted_fields_hold_commas_quotes_and_line_breaks(tmp_path: Path) -> None:
    rows = [
        ROW_1.replace("HOME", '"HOME, with ""support"""'),
        ROW_2.replace("CARE_HOME", '"CARE\r\nHOME"'),
        ROW_1.replace("P1", '"P3"').replace(",,", ',"",'),
        ROW_1.replace("P1", "P4"),
    ]
    raw = read_chc(tmp_path, HEADER + "\r\n" + "\r\n".join(rows) + "\r\n")

    assert raw.rows_read == 4
    assert column(raw, MALFORMED_COLUMN) == [False] * 4
    assert column(raw, ROW_NUMBER_COLUMN) == [1, 2, 3, 4]  # a quoted break is no new row
    assert column(raw, "care_setting")[0] == 'HOME, with "support"'
    assert column(raw, "care_setting")[1].replace("\r\n", "\n") == "CARE\nHOME"
    assert column(raw, "package_id") == ["P1", "P2", "P3", "P4"]
    assert column(raw, "end_date")[2] == ""


def test_quoted_header(tmp_path: Path) -> None:
    header = ",".join(f'"{c}"' for c in CHC.required_columns)
    raw = read_chc(tmp_path, f"{header}\n{ROW_1}\n")
    assert column(raw, "package_id") == ["P1"]


def test_irregular_quoting_is_read_as_the_csv_module_reads_it(tmp_path: Path) -> None:
    # a quote inside an unquoted field is a literal character
    mid_quote = ROW_1.replace("HOME", 'HO"ME')
    raw = read_chc(tmp_path, f"{HEADER}\n{mid_quote}\n{ROW_2}\n")
    assert column(raw, "care_setting") == ['HO"ME', "CARE_HOME"]
    assert column(raw, MALFORMED_COLUMN) == [False, False]
    # text after a closing quote is kept (the whole file goes through the csv module)
    after_quote = ROW_1.replace("HOME", '"HO"ME')
    raw = read_chc(tmp_path, f"{HEADER}\n{after_quote}\n{ROW_2}\n")
    assert column(raw, "care_setting") == ["HOME", "CARE_HOME"]
    assert column(raw, ROW_NUMBER_COLUMN) == [1, 2]


def test_a_stray_quote_swallows_the_rest_of_the_file_into_one_malformed_row(
    tmp_path: Path,
) -> None:
    stray = ROW_2.replace("P2", '"P2')
    raw = read_chc(tmp_path, f"{HEADER}\n{ROW_1}\n{stray}\n{ROW_1}\n")
    assert column(raw, MALFORMED_COLUMN) == [False, True]


def test_trailing_blank_lines_are_not_rows_but_inner_ones_are_malformed(tmp_path: Path) -> None:
    raw = read_chc(tmp_path, f"{HEADER}\n{ROW_1}\n\n{ROW_2}\n\n\r\n\n")
    assert raw.rows_read == 3
    assert column(raw, MALFORMED_COLUMN) == [False, True, False]
    assert column(raw, ROW_NUMBER_COLUMN) == [1, 2, 3]


# --- malformed rows ----------------------------------------------------------------


def test_rows_with_more_or_fewer_fields_are_malformed_with_blank_values(tmp_path: Path) -> None:
    too_many = ROW_2 + ","  # a trailing comma
    too_few = ROW_1.rsplit(",", 1)[0]  # truncated
    comma_in_name = ROW_1.replace("HOME", "HOME, Jnr")  # an unquoted comma
    raw = read_chc(tmp_path, "\n".join([HEADER, ROW_1, too_many, too_few, comma_in_name, ROW_2]))

    assert column(raw, MALFORMED_COLUMN) == [False, True, True, True, False]
    assert raw.rows_malformed == 3
    assert column(raw, ROW_NUMBER_COLUMN) == [1, 2, 3, 4, 5]
    malformed = raw.frame.filter(pl.col(MALFORMED_COLUMN))
    for name in CHC.required_columns:
        assert malformed[name].to_list() == ["", "", ""]
    assert column(raw, "package_id")[-1] == "P2"


def test_quoted_rows_can_be_malformed_too(tmp_path: Path) -> None:
    raw = read_chc(tmp_path, f'{HEADER}\n"{ROW_1}"\n{ROW_1},"x,y"\n{ROW_2}\n')
    assert column(raw, MALFORMED_COLUMN) == [True, True, False]


# --- encodings ---------------------------------------------------------------------


def test_a_file_that_is_not_utf8_is_read_as_windows_1252(tmp_path: Path) -> None:
    header = ",".join(SOURCE_BY_NAME["social_care"].required_columns)
    row = b",SC1,1950-01-02,2,TS1 1AA,Zo\xeb,Caf\x80\x81,S1,HOME_CARE,2024-01-01,,7,HOUR,20.00,"
    write(tmp_path, "social_care.csv", header.encode() + b"\r\n" + row + b"\r\n")

    raw = read_source(tmp_path, SOURCE_BY_NAME["social_care"])

    assert column(raw, "given_name") == ["Zoë"]
    assert column(raw, "family_name") == ["Caf€\x81"]  # 0x81 is undefined: kept as C1
    assert raw.encoding == WINDOWS_1252
    assert raw.files[0].encoding == WINDOWS_1252


def test_utf8_names_stay_utf8(tmp_path: Path) -> None:
    header = ",".join(SOURCE_BY_NAME["social_care"].required_columns)
    row = ",SC1,1950-01-02,2,TS1 1AA,Zoë,Ó Súilleabháin,S1,HOME_CARE,2024-01-01,,7,HOUR,20,"
    write(tmp_path, "social_care.csv", f"\ufeff{header}\n{row}\n")

    raw = read_source(tmp_path, SOURCE_BY_NAME["social_care"])

    assert column(raw, "family_name") == ["Ó Súilleabháin"]
    assert raw.encoding == UTF8


def test_nul_bytes_do_not_stop_the_read(tmp_path: Path) -> None:
    with_nul = ROW_1.replace("HOME", "HO\x00ME")
    raw = read_chc(tmp_path, f"{HEADER}\n{with_nul}\n{ROW_2}\n")
    assert column(raw, "care_setting") == ["HO\x00ME", "CARE_HOME"]


# --- folders -----------------------------------------------------------------------


def test_a_folder_is_read_in_byte_order_of_file_names(tmp_path: Path) -> None:
    folder = tmp_path / "chc"
    write(folder, "b_2024-05.csv", f"{HEADER}\n{ROW_2}\n")
    write(folder, "a_2024-04.csv", f"{HEADER}\n{ROW_1}\n{ROW_2}\n")
    write(folder, "B_upper.csv", f"{HEADER}\n{ROW_1}\n")  # "B" < "a" in bytes
    write(folder, "notes.txt", "not an extract")
    write(folder, ".hidden.csv", "")

    raw = read_source(tmp_path, CHC)

    assert [f.path.name for f in raw.files] == ["B_upper.csv", "a_2024-04.csv", "b_2024-05.csv"]
    assert [f.rows for f in raw.files] == [1, 2, 1]
    assert column(raw, FILE_COLUMN) == [
        "B_upper.csv",
        "a_2024-04.csv",
        "a_2024-04.csv",
        "b_2024-05.csv",
    ]
    assert column(raw, FILE_INDEX_COLUMN) == [0, 1, 1, 2]
    assert column(raw, ROW_NUMBER_COLUMN) == [1, 1, 2, 1]  # numbered per file


def test_a_folder_may_mix_encodings(tmp_path: Path) -> None:
    folder = tmp_path / "chc"
    write(folder, "1.csv", f"{HEADER}\n{ROW_1}\n")
    accented = ROW_2.replace("CARE_HOME", "CAR\xc9")
    write(folder, "2.csv", f"{HEADER}\n{accented}\n".encode("cp1252"))

    raw = read_source(tmp_path, CHC)

    assert [f.encoding for f in raw.files] == [UTF8, WINDOWS_1252]
    assert raw.encoding == f"{UTF8};{WINDOWS_1252}"
    assert column(raw, "care_setting") == ["HOME", "CARÉ"]


def test_folder_files_may_order_columns_differently(tmp_path: Path) -> None:
    folder = tmp_path / "chc"
    names = list(CHC.required_columns)
    write(folder, "1.csv", f"{HEADER}\n{ROW_1}\n")
    write(
        folder,
        "2.csv",
        ",".join(reversed(names)) + "\n" + ",".join(reversed(ROW_2.split(","))) + "\n",
    )
    raw = read_source(tmp_path, CHC)
    assert column(raw, "package_id") == ["P1", "P2"]


# --- errors: clear, and never a cell value -----------------------------------------


def assert_no_cell_values(message: str, values: Sequence[str]) -> None:
    """No value long enough to mean anything (a code like ``2`` is in any message)."""
    for value in values:
        if len(value) >= 4:
            assert value not in message, "an error message holds a cell value"


def test_missing_extract(tmp_path: Path) -> None:
    with pytest.raises(LandingError, match=r"chc\.csv or a folder chc/"):
        read_source(tmp_path, CHC)


def test_file_and_folder_both_present(tmp_path: Path) -> None:
    write(tmp_path, "chc.csv", f"{HEADER}\n")
    write(tmp_path / "chc", "1.csv", f"{HEADER}\n")
    with pytest.raises(LandingError, match="both"):
        read_source(tmp_path, CHC)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "chc").mkdir()
    with pytest.raises(LandingError, match=r"chc/ holds no \.csv files"):
        source_files(tmp_path, CHC)


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n\r\n", b"\xef\xbb\xbf"])
def test_an_empty_file_stops_the_read_naming_it(tmp_path: Path, content: bytes) -> None:
    write(tmp_path, "chc.csv", content)
    with pytest.raises(LandingError, match=r"chc\.csv.*empty"):
        read_source(tmp_path, CHC)


def test_an_empty_file_in_a_folder_is_named(tmp_path: Path) -> None:
    write(tmp_path / "chc", "2024-04.csv", f"{HEADER}\n{ROW_1}\n")
    write(tmp_path / "chc", "2024-05.csv", b"")
    with pytest.raises(LandingError, match=r"2024-05\.csv"):
        read_source(tmp_path, CHC)


def test_a_header_with_no_rows_is_a_source_with_zero_rows(tmp_path: Path) -> None:
    for content in (HEADER, f"{HEADER}\n", f"{HEADER}\r\n\r\n"):
        raw = read_chc(tmp_path, content)
        assert raw.rows_read == 0
        assert raw.frame.columns[: len(CHC.required_columns)] == list(CHC.required_columns)
        assert raw.frame.schema[ROW_NUMBER_COLUMN] == pl.Int64


def test_a_missing_column_names_the_file_and_column_and_no_value(tmp_path: Path) -> None:
    header = HEADER.replace(",weekly_cost", "").replace("date_of_birth,", "")
    row = ROW_1.replace(",100.00", "").replace("1950-01-02,", "")
    write(tmp_path / "chc", "2024-04.csv", f"{header}\n{row}\n")

    with pytest.raises(LandingError) as caught:
        read_source(tmp_path, CHC)

    message = str(caught.value)
    assert "2024-04.csv" in message
    assert "date_of_birth" in message
    assert "weekly_cost" in message
    assert_no_cell_values(message, row.split(","))


def test_name_columns_are_optional_and_read_as_blank_when_absent(tmp_path: Path) -> None:
    """The contract's name columns are optional: a social care file without them is read,
    its names blank (so its rows cannot match on names), and nothing else changes."""
    social = SOURCE_BY_NAME["social_care"]
    columns = [c for c in social.required_columns if c not in ("given_name", "family_name")]
    values = {
        "nhs_number": "9991234567",
        "local_patient_id": "SC1",
        "date_of_birth": "1950-01-02",
        "sex": "1",
        "postcode": "TS18 1AB",
        "service_id": "S1",
        "service_type": "HOME_CARE",
        "start_date": "2024-04-01",
        "planned_units_per_week": "7",
        "unit": "HOUR",
        "unit_cost": "20",
    }
    row = ",".join(values.get(c, "") for c in columns)
    write(tmp_path, "social_care.csv", ",".join(columns) + "\n" + row + "\n")
    raw = read_source(tmp_path, social)
    assert raw.frame.columns[: len(social.required_columns)] == list(social.required_columns)
    assert column(raw, "given_name") == [""] and column(raw, "family_name") == [""]
    assert column(raw, "local_patient_id") == ["SC1"]
    assert raw.files[0].extra_columns == ()
    # A required column is still required.
    write(tmp_path, "social_care.csv", ",".join(columns[1:]) + "\n" + row + "\n")
    with pytest.raises(LandingError, match=r"missing required column.*nhs_number"):
        read_source(tmp_path, social)


def test_a_file_without_header_names_columns_never_values(tmp_path: Path) -> None:
    write(tmp_path, "chc.csv", f"{ROW_1}\n{ROW_2}\n")
    with pytest.raises(LandingError, match="missing required column") as caught:
        read_source(tmp_path, CHC)
    assert_no_cell_values(str(caught.value), ROW_1.split(",") + ROW_2.split(","))


def test_a_runaway_quoted_field_fails_without_quoting_it(tmp_path: Path) -> None:
    secret = "SECRETNAME"
    body = "\n".join([ROW_1.replace("HOME", f'"{secret}')] + [ROW_2.replace("P2", secret)] * 20000)
    write(tmp_path, "chc.csv", f"{HEADER}\n{body}\n")
    with pytest.raises(LandingError, match=r"chc\.csv") as caught:
        read_source(tmp_path, CHC)
    assert_no_cell_values(str(caught.value), [secret, "9990000018", "CHC1", "TS1 1AA"])
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_column_named_twice_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "chc.csv", f"{HEADER},package_id\n{ROW_1},P9\n")
    with pytest.raises(LandingError, match="package_id"):
        read_source(tmp_path, CHC)


# --- the fast path reads what Python's csv module reads ----------------------------

FIELD_TEXT = st.text(
    alphabet=st.sampled_from(list('ab ,"\n\r\téZ1')) | st.characters(codec="utf-8"),
    max_size=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.lists(FIELD_TEXT, min_size=4, max_size=8),
        max_size=12,
    ),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    terminator=st.sampled_from(["\n", "\r\n"]),
)
def test_property_values_and_field_counts_match_the_csv_module(
    rows: list[list[str]], quoting: int, terminator: str
) -> None:
    if terminator == "\n":
        # csv.writer quotes only the terminator's characters: a lone CR would go unquoted
        rows = [[f.replace("\r", "") for f in r] for r in rows]
    header = list(MINI.required_columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=quoting, lineterminator=terminator)
    writer.writerow(header)
    writer.writerows(rows)
    expected_malformed = [len(r) != len(header) for r in rows]
    with tempfile.TemporaryDirectory() as folder:
        write(Path(folder), "mini.csv", buffer.getvalue())
        raw = read_source(Path(folder), MINI)

    assert column(raw, MALFORMED_COLUMN) == expected_malformed
    for i, name in enumerate(header):
        want = ["" if bad else r[i] for r, bad in zip(rows, expected_malformed, strict=True)]
        got = column(raw, name)
        # a quoted CR LF inside a field may come back as LF; nothing else changes
        assert [g.replace("\r\n", "\n") for g in got] == [w.replace("\r\n", "\n") for w in want]


def csv_module_reading(text: str, width: int) -> list[list[str] | None]:
    """What Python's csv module reads: each row's fields, or None for a malformed row."""
    records = list(csv.reader(io.StringIO(text, newline="")))[1:]
    while records and not records[-1]:
        records.pop()
    return [r if len(r) == width else None for r in records]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.text(alphabet=st.sampled_from(list('ab,,,,"\n\r é')), max_size=60))
def test_property_any_text_is_read_as_the_csv_module_reads_it(body: str) -> None:
    header = list(MINI.required_columns)
    text = ",".join(header) + "\n" + body
    expected = csv_module_reading(text, len(header))
    with tempfile.TemporaryDirectory() as folder:
        write(Path(folder), "mini.csv", text)
        raw = read_source(Path(folder), MINI)

    assert column(raw, MALFORMED_COLUMN) == [r is None for r in expected]
    assert column(raw, ROW_NUMBER_COLUMN) == list(range(1, len(expected) + 1))
    for i, name in enumerate(header):
        want = ["" if r is None else r[i] for r in expected]
        assert [v.replace("\r\n", "\n") for v in column(raw, name)] == [
            w.replace("\r\n", "\n") for w in want
        ]
