"""Keyed hashing: RFC 4231 vectors, both implementations against the standard library."""

import hashlib
import hmac
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pseudonymise import hashing
from pseudonymise.hashing import (
    PSEUDONYM_HEX_CHARS,
    hmac_sha256,
    pseudonymise_expr,
    pseudonymise_series,
    text_key,
)

VECTORS = Path(__file__).parents[2] / "data" / "vectors"
RFC4231 = json.loads((VECTORS / "rfc4231" / "rfc4231_hmac_sha256.json").read_text())["cases"]

LINKAGE_KEY = bytes(range(100, 132))  # stands in for a derived 32-byte key


def _reference(key: bytes, value: str | bytes | None) -> str | None:
    """The definition: first 16 bytes of HMAC-SHA256(key, UTF-8 value), as hex."""
    if value is None:
        return None
    message = value if isinstance(value, bytes) else value.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_CHARS]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _case_id(case: dict[str, object]) -> str:
    return f"rfc4231-case-{case['case']}"


# --- RFC 4231 ----------------------------------------------------------------------


@pytest.mark.parametrize("case", RFC4231, ids=_case_id)
def test_rfc4231_hmac_sha256(case: dict[str, str]) -> None:
    digest = hmac_sha256(bytes.fromhex(case["key_hex"]), bytes.fromhex(case["data_hex"]))
    expected = bytes.fromhex(case["hmac_sha256_hex"])
    assert digest[: len(expected)] == expected
    assert len(digest) == 32


@pytest.mark.parametrize("case", RFC4231, ids=_case_id)
def test_rfc4231_through_pseudonymise_series(case: dict[str, str]) -> None:
    """Cases 1, 2, 4, 5 have UTF-8 keys (the plugin path), cases 3, 6, 7 not (the fallback).

    Data that is valid UTF-8 goes in as text, the rest (cases 3, 4) as Binary.
    """
    key = bytes.fromhex(case["key_hex"])
    data = bytes.fromhex(case["data_hex"])
    values = pl.Series("v", [data.decode("utf-8")] if _is_utf8(data) else [data])

    result = pseudonymise_series(key, values)

    assert result.to_list() == [case["hmac_sha256_hex"][:PSEUDONYM_HEX_CHARS]]
    assert (hashing._plugin_key(key) is not None) == _is_utf8(key)


def test_rfc4231_keys_cover_both_paths() -> None:
    utf8_keys = [_is_utf8(bytes.fromhex(case["key_hex"])) for case in RFC4231]
    assert any(utf8_keys)
    assert not all(utf8_keys)


def test_polars_hash_plugin_is_installed_and_used() -> None:
    assert hashing._HAVE_POLARS_HASH
    assert hashing._plugin_key(text_key(LINKAGE_KEY)) == LINKAGE_KEY.hex()


# --- Both implementations equal the standard library --------------------------------

values_strategy = st.lists(st.none() | st.text(), max_size=30)
utf8_keys = st.text(max_size=80).map(lambda text: text.encode("utf-8"))


@given(key=utf8_keys, values=values_strategy)
def test_plugin_path_equals_stdlib_hmac_on_the_same_key_bytes(
    key: bytes, values: list[str | None]
) -> None:
    key_text = hashing._plugin_key(key)
    assert key_text is not None
    result = hashing._hash_with_plugin(key_text, pl.Series(values, dtype=pl.String))
    assert result.to_list() == [_reference(key, v) for v in values]


@given(key=st.binary(max_size=150), values=values_strategy)
def test_fallback_path_equals_stdlib_hmac(key: bytes, values: list[str | None]) -> None:
    result = hashing._hash_unique_values(key, pl.Series(values, dtype=pl.String))
    assert result.to_list() == [_reference(key, v) for v in values]


@given(key=st.binary(max_size=150), values=values_strategy)
def test_pseudonymise_series_equals_stdlib_hmac_for_any_key(
    key: bytes, values: list[str | None]
) -> None:
    result = pseudonymise_series(key, pl.Series("id", values, dtype=pl.String))
    assert result.name == "id"
    assert result.dtype == pl.String
    assert result.to_list() == [_reference(key, v) for v in values]


@given(key=st.binary(max_size=80), values=st.lists(st.none() | st.binary(), max_size=20))
def test_binary_values_are_hashed_as_they_are(key: bytes, values: list[bytes | None]) -> None:
    result = pseudonymise_series(key, pl.Series(values, dtype=pl.Binary))
    assert result.to_list() == [_reference(key, v) for v in values]


@given(st.binary(min_size=32, max_size=32))
def test_text_keys_take_the_plugin_path(derived: bytes) -> None:
    key = text_key(derived)
    assert key == derived.hex().encode("ascii")
    assert len(key) == 64
    assert hashing._plugin_key(key) is not None


# --- Behaviour of pseudonyms --------------------------------------------------------


@given(st.text(), st.text())
def test_same_value_same_pseudonym_and_different_value_different_pseudonym(a: str, b: str) -> None:
    pseudonyms = pseudonymise_series(text_key(LINKAGE_KEY), pl.Series([a, b, a])).to_list()
    assert pseudonyms[0] == pseudonyms[2]
    assert (pseudonyms[0] == pseudonyms[1]) == (a == b)


@given(st.text(min_size=1))
def test_pseudonym_depends_on_the_key(value: str) -> None:
    other_key = text_key(bytes(32))
    values = pl.Series([value])
    assert (
        pseudonymise_series(text_key(LINKAGE_KEY), values).item()
        != pseudonymise_series(other_key, values).item()
    )


def test_pseudonyms_are_32_lowercase_hex_and_nulls_stay_null() -> None:
    values = pl.Series("nhs_number", ["9994561235", None, "", "9994561235", None])
    result = pseudonymise_series(text_key(LINKAGE_KEY), values)

    assert result.len() == 5
    assert result.null_count() == 2
    assert result[0] == result[3]
    assert result.str.contains(f"^[0-9a-f]{{{PSEUDONYM_HEX_CHARS}}}$").to_list() == [
        True,
        None,
        True,
        True,
        None,
    ]


def test_text_key_pseudonym_recomputed_by_hand() -> None:
    """What a key holder does to recompute a pipeline pseudonym (module docstring)."""
    by_hand = hmac.new(LINKAGE_KEY.hex().encode(), b"9994561235", "sha256").hexdigest()[:32]
    assert pseudonymise_series(text_key(LINKAGE_KEY), pl.Series(["9994561235"])).item() == by_hand


def test_raw_and_text_key_give_different_pseudonyms() -> None:
    values = pl.Series(["9994561235"])
    assert (
        pseudonymise_series(LINKAGE_KEY, values).item()
        != pseudonymise_series(text_key(LINKAGE_KEY), values).item()
    )


@pytest.mark.parametrize("key", [text_key(LINKAGE_KEY), b"\xaa" * 131], ids=["plugin", "fallback"])
@pytest.mark.parametrize(
    "values",
    [
        pl.Series("x", [], dtype=pl.String),
        pl.Series("x", [None, None], dtype=pl.String),
        pl.Series("x", [None, None]),
        pl.Series("x", ["b", "a", None, "b"], dtype=pl.Categorical),
        pl.Series("x", ["b", "a", None, "b"], dtype=pl.Enum(["a", "b"])),
    ],
    ids=["empty", "all-null", "null-dtype", "categorical", "enum"],
)
def test_edge_columns(key: bytes, values: pl.Series) -> None:
    result = pseudonymise_series(key, values)
    assert result.dtype == pl.String
    assert result.name == "x"
    as_text = values.cast(pl.String).to_list()
    assert result.to_list() == [_reference(key, v) for v in as_text]


@pytest.mark.parametrize(
    "values", [pl.Series([1, 2]), pl.Series([1.5]), pl.Series([True])], ids=str
)
def test_non_text_columns_are_refused(values: pl.Series) -> None:
    with pytest.raises(TypeError, match="text"):
        pseudonymise_series(text_key(LINKAGE_KEY), values)


def test_order_is_kept_with_many_repeats_on_the_fallback_path() -> None:
    values = pl.Series([str(i % 7) if i % 5 else None for i in range(1000)])
    key = b"\xff" + LINKAGE_KEY
    assert pseudonymise_series(key, values).to_list() == [
        _reference(key, v) for v in values.to_list()
    ]


# --- Expression form ---------------------------------------------------------------


@pytest.mark.parametrize("key", [text_key(LINKAGE_KEY), b"\xaa" * 131], ids=["plugin", "fallback"])
def test_pseudonymise_expr_matches_the_series_function(key: bytes) -> None:
    frame = pl.DataFrame(
        {"nhs_number": ["9994561235", None, "9990000018", "9994561235"], "n": [1, 2, 3, 4]}
    )
    result = (
        frame.lazy().with_columns(person=pseudonymise_expr(key, pl.col("nhs_number"))).collect()
    )

    assert result.columns == ["nhs_number", "n", "person"]
    assert result["person"].to_list() == pseudonymise_series(key, frame["nhs_number"]).to_list()


def test_the_key_does_not_show_in_a_query_plan() -> None:
    key = text_key(LINKAGE_KEY)
    query = pl.LazyFrame({"v": ["a"]}).with_columns(p=pseudonymise_expr(key, pl.col("v")))
    assert key.decode() not in query.explain()
    assert key.decode() not in str(pseudonymise_expr(key, pl.col("v")))
