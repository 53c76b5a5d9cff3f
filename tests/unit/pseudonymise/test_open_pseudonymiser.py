"""Open Pseudonymiser compatibility digests: the library's published vectors, both forms.

The vectors (tests/data/vectors/openpseudonymiser, see ORIGIN.txt) come from the
library's own tests and its website FAQ. The FAQ prints its digests in lower-case
hex while the library emits upper case, so those two are compared
case-insensitively. The helper vectors for RoundDownDate are not used: the
application applies it to output columns, never to the fields it hashes.
"""

import hashlib
import json
import os
import string
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pseudonymise.identifiers import is_valid_nhs_number
from pseudonymise.open_pseudonymiser import (
    WEAKER_THAN_DEFAULT,
    SaltFileError,
    _unsalted_message,
    _unsalted_message_expr,
    digest,
    digest_expr,
    digest_field_order,
    dob_open_pseudonymiser_format,
    dob_open_pseudonymiser_format_value,
    nhs_number_digits,
    nhs_number_digits_text,
    read_salt_file,
)

VECTORS = json.loads(
    (
        Path(__file__).parents[2]
        / "data"
        / "vectors"
        / "openpseudonymiser"
        / "openpseudonymiser_published_test_vectors.json"
    ).read_text()
)
DIGESTS: list[dict[str, Any]] = VECTORS["digest_vectors"]
HELPERS: dict[str, list[list[Any]]] = VECTORS["helper_vectors"]
SALTED = [v for v in DIGESTS if v["salt"] is not None]
UNSALTED = [v for v in DIGESTS if v["salt"] is None]
#: The NHS number and date of birth of Open Pseudonymiser's own published test vector
#: (tests/data/vectors/openpseudonymiser/ORIGIN.txt), read from the vector file: a real
#: library's test value, used only where the published digest is checked.
PUBLISHED_NHS = DIGESTS[0]["inputs"]["NHSNumber"]
PUBLISHED_DIGITS = PUBLISHED_NHS.replace(" ", "")
PUBLISHED_DOB = DIGESTS[0]["inputs"]["DOB"]
#: A made-up number in the 999 test range, for tests that need no published digest.
TEST_RANGE_NHS = "9994561235"

any_text = st.text(st.characters(exclude_categories=("Cs", "Cn")), max_size=30)
field_name = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12)


def _assert_matches(vector: dict[str, Any], got: str | None) -> None:
    """Exact for the library's own (upper-case) vectors; case-insensitive for the FAQ's."""
    printed: str = vector["digest"]
    assert got is not None
    if printed.islower():  # printed lower-case on the website
        assert got.upper() == printed.upper()
    else:
        assert got == printed


def _digest_frame(fields: dict[str, str | None], salt: str) -> str | None:
    """:func:`digest_expr` over a one-row frame whose columns are named c0, c1, ..."""
    names = list(fields)
    frame = pl.DataFrame(
        {f"c{i}": pl.Series([fields[name]], dtype=pl.String) for i, name in enumerate(names)}
    )
    columns = {name: pl.col(f"c{i}") for i, name in enumerate(names)}
    result: str | None = frame.select(digest_expr(columns, salt)).item()
    return result


# --- Published vectors ---------------------------------------------------------------


def test_vectors_are_all_accounted_for() -> None:
    assert len(SALTED) == 3
    assert len(UNSALTED) == 1
    # Two are printed in lower case (the website FAQ); the library's own are upper case.
    assert sum(v["digest"].islower() for v in DIGESTS) == 2


@pytest.mark.parametrize("vector", SALTED, ids=lambda v: f"{v['inputs']}+{v['salt']}")
def test_salted_vectors_scalar(vector: dict[str, Any]) -> None:
    got = digest(vector["inputs"], vector["salt"])
    _assert_matches(vector, got)
    assert len(got) == 64 and got == got.upper()


@pytest.mark.parametrize("vector", SALTED, ids=lambda v: f"{v['inputs']}+{v['salt']}")
def test_salted_vectors_expr(vector: dict[str, Any]) -> None:
    _assert_matches(vector, _digest_frame(vector["inputs"], vector["salt"]))


@pytest.mark.parametrize("vector", UNSALTED, ids=lambda v: str(v["inputs"]))
def test_unsalted_faq_vector_both_forms(vector: dict[str, Any]) -> None:
    """The FAQ's unsalted illustration: our digest refuses a blank salt, so check the
    message it builds, hashed without a salt, in both forms (case-insensitively)."""
    scalar = hashlib.sha256(_unsalted_message(vector["inputs"]).encode()).hexdigest()
    assert scalar.upper() == vector["digest"].upper()

    frame = pl.DataFrame({k: [v] for k, v in vector["inputs"].items()})
    columns = {k: pl.col(k) for k in vector["inputs"]}
    expr = frame.select(_unsalted_message_expr(columns).chash.sha2_256()).item()  # type: ignore[attr-defined]
    assert expr.upper() == vector["digest"].upper()


def test_published_vector_in_a_column_with_other_rows() -> None:
    frame = pl.DataFrame(
        {
            "nhs": [PUBLISHED_NHS, PUBLISHED_DIGITS, None, PUBLISHED_DIGITS],
            "dob": [date(1973, 11, 29), date(1973, 11, 29), date(1973, 11, 29), None],
        }
    )
    columns = {"NHSNumber": pl.col("nhs"), "DOB": dob_open_pseudonymiser_format(pl.col("dob"))}
    got = frame.select(digest_expr(columns, "mackerel")).to_series().to_list()
    published = DIGESTS[0]["digest"]
    assert got == [published, published, None, None]


@pytest.mark.parametrize(("given_", "expected"), HELPERS["RemoveBlanks"])
def test_remove_blanks_vector(given_: str, expected: str) -> None:
    assert _unsalted_message({"f": given_}) == expected
    frame = pl.DataFrame({"f": [given_]})
    assert frame.select(_unsalted_message_expr({"f": pl.col("f")})).item() == expected


#: Open Pseudonymiser's published ProcessNHSNumber and IsValidNHSNumber vectors use
#: valid NHS numbers outside the 999 test range; the same shapes on a 999-range number.
OUR_VALID_SHAPES = [
    "999-456-123-5",  # separators where the library's own vector had them
    "999 456 1235",
    "999-456-1235",
    TEST_RANGE_NHS,
]


@pytest.mark.parametrize("given_", OUR_VALID_SHAPES)
def test_process_nhs_number_removes_separators(given_: str) -> None:
    expected = TEST_RANGE_NHS
    assert nhs_number_digits_text(given_) == expected
    assert pl.DataFrame({"v": [given_]}).select(nhs_number_digits(pl.col("v"))).item() == expected


@pytest.mark.parametrize(
    ("given_", "expected"),
    HELPERS["IsValidNHSNumber_after_ProcessNHSNumber"] + [[v, True] for v in OUR_VALID_SHAPES],
)
def test_library_validity_vectors_agree_with_ours(given_: str, expected: bool) -> None:
    assert is_valid_nhs_number(nhs_number_digits_text(given_)) is expected


# --- Order, blanks and salt ------------------------------------------------------------


def test_field_order_swaps_case() -> None:
    assert digest_field_order(["NHSNumber", "DOB"]) == ["DOB", "NHSNumber"]
    # Swapped, "abc" is "ABC" and "ABD" is "abd": upper case sorts first.
    assert digest_field_order(["ABD", "abc"]) == ["abc", "ABD"]
    assert digest_field_order(["b", "A", "a", "B"]) == ["a", "b", "A", "B"]


def test_field_order_refuses_nothing_and_clashes() -> None:
    with pytest.raises(ValueError, match="at least one field"):
        digest_field_order([])
    with pytest.raises(ValueError, match="same name"):
        digest_field_order(["ß", "ss"])  # both swap to "SS"
    with pytest.raises(ValueError, match="at least one field"):
        digest({}, "mackerel")
    with pytest.raises(ValueError, match="at least one field"):
        digest_expr({}, "mackerel")


def test_order_not_mapping_order_decides() -> None:
    forward = {"NHSNumber": TEST_RANGE_NHS, "DOB": "29.11.1973"}
    backward = dict(reversed(forward.items()))
    assert digest(forward, "mackerel") == digest(backward, "mackerel")
    assert digest({"a": "1", "B": "2"}, "s") == digest({"x": "1", "y": "2"}, "s")
    assert digest({"A": "1", "b": "2"}, "s") == digest({"x": "2", "y": "1"}, "s")


def test_salt_is_trimmed_at_the_edges_only() -> None:
    fields = DIGESTS[0]["inputs"]
    published = DIGESTS[0]["digest"]
    assert digest(fields, " \tmackerel\r\n") == published
    assert _digest_frame(fields, "mackerel\n") == published
    # Blanks inside the salt are kept: the salt is appended after blanks are removed.
    expected = hashlib.sha256((PUBLISHED_DOB + PUBLISHED_DIGITS + "mac kerel").encode()).hexdigest()
    assert digest(fields, "mac kerel") == expected.upper()
    assert _digest_frame(fields, "mac kerel") == expected.upper()


@pytest.mark.parametrize("salt", ["", "   ", "\r\n\t", "\x00"])
def test_blank_salt_refused(salt: str) -> None:
    fields = DIGESTS[0]["inputs"]
    with pytest.raises(ValueError, match="blank"):
        digest(fields, salt)
    with pytest.raises(ValueError, match="blank"):
        digest_expr({"NHSNumber": pl.col("n")}, salt)


def test_salt_must_be_text() -> None:
    with pytest.raises(TypeError, match="text"):
        digest({"a": "1"}, b"mackerel")  # type: ignore[arg-type]


def test_null_in_any_field_gives_null() -> None:
    assert _digest_frame({"NHSNumber": TEST_RANGE_NHS, "DOB": None}, "mackerel") is None
    assert _digest_frame({"NHSNumber": None, "DOB": "29.11.1973"}, "mackerel") is None


@given(
    fields=st.dictionaries(field_name, any_text, min_size=1, max_size=4),
    salt=any_text.filter(lambda s: s.strip("".join(map(chr, range(0x21)))) != ""),
)
def test_scalar_and_expr_agree(fields: dict[str, str], salt: str) -> None:
    # ASCII names never clash once case is swapped; blanks, control characters and
    # any Unicode go in the values and salt.
    assert _digest_frame(dict(fields), salt) == digest(fields, salt)


@given(value=any_text)
def test_nhs_number_digits_scalar_and_expr_agree(value: str) -> None:
    frame = pl.DataFrame({"v": [value]})
    assert frame.select(nhs_number_digits(pl.col("v"))).item() == nhs_number_digits_text(value)


# --- Date of birth ---------------------------------------------------------------------


def test_dob_format_matches_the_vector() -> None:
    assert dob_open_pseudonymiser_format_value(date(1973, 11, 29)) == "29.11.1973"
    frame = pl.DataFrame({"d": [date(1973, 11, 29), None]})
    got = frame.select(dob_open_pseudonymiser_format(pl.col("d"))).to_series().to_list()
    assert got == ["29.11.1973", None]


@given(value=st.dates())
def test_dob_format_scalar_and_expr_agree(value: date) -> None:
    frame = pl.DataFrame({"d": [value]})
    got = frame.select(dob_open_pseudonymiser_format(pl.col("d"))).item()
    assert got == dob_open_pseudonymiser_format_value(value)


# --- Salt file -------------------------------------------------------------------------


def _salt_file(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "op.salt"
    path.write_bytes(content)
    path.chmod(mode)
    return path


def test_salt_file_is_trimmed(tmp_path: Path) -> None:
    assert read_salt_file(_salt_file(tmp_path, b"mackerel\n")) == "mackerel"
    assert read_salt_file(_salt_file(tmp_path, "\ufeff  mac kerel \r\n".encode())) == "mac kerel"


@pytest.mark.parametrize("content", [b"", b"\n", b"  \t\r\n"])
def test_blank_salt_file_refused(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(ValueError, match="blank"):
        read_salt_file(_salt_file(tmp_path, content))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_salt_file_readable_by_others_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(SaltFileError, match="chmod 600") as caught:
        read_salt_file(_salt_file(tmp_path, b"mackerel-secret\n", mode))
    assert "mackerel" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_salt_file_other_problems(tmp_path: Path) -> None:
    with pytest.raises(SaltFileError, match="does not exist"):
        read_salt_file(tmp_path / "missing.salt")
    with pytest.raises(SaltFileError, match="not a regular file"):
        read_salt_file(tmp_path)
    with pytest.raises(SaltFileError, match="not UTF-8") as caught:
        read_salt_file(_salt_file(tmp_path, b"mackerel\xff"))
    assert "mackerel" not in str(caught.value)


def test_salt_file_round_trip_gives_the_published_digest(tmp_path: Path) -> None:
    salt = read_salt_file(_salt_file(tmp_path, b"mackerel\n"))
    assert digest(DIGESTS[0]["inputs"], salt) == DIGESTS[0]["digest"]


# --- Label -------------------------------------------------------------------------------


def test_weaker_than_default_label() -> None:
    label = WEAKER_THAN_DEFAULT
    assert label.count(".") == 1 and label.endswith(".")  # one sentence
    for phrase in ("salted SHA-256", "HMAC", "salt", "NHS numbers", "legacy Open Pseudonymiser"):
        assert phrase in label
