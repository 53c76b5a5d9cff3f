"""Normalising and validating identifiers before they are pseudonymised.

Each rule is a polars expression (vectorised, for whole columns) with a scalar
twin for single values; the two agree, which the tests check. The rules follow
costing-method.md section 1 and data-contract.md section 4:

* NHS number: spaces and hyphens removed; valid when 10 digits with a correct
  modulus 11 check digit (not 10) and not ten identical digits;
* names: accents folded to ASCII, upper case, A-Z only;
* postcodes: upper case without whitespace; district = the outward code;
* sex: the contract's codes ``1``, ``2``, ``9``, anything else ``0``;
* date of birth: kept only as birth year and whether the birthday falls after
  1 April, enough for the age on 1 April of any financial year.
"""

import re
import unicodedata
from datetime import date

import polars as pl

__all__ = [
    "AGE_BANDS",
    "age_band",
    "age_band_value",
    "age_on_1_april",
    "age_on_1_april_value",
    "birth_year",
    "birth_year_value",
    "born_after_1_april",
    "born_after_1_april_value",
    "is_valid_nhs_number",
    "nhs_number_is_valid",
    "normalise_name",
    "normalise_name_text",
    "normalise_nhs_number",
    "normalise_nhs_number_text",
    "normalise_postcode",
    "normalise_postcode_text",
    "normalise_sex",
    "normalise_sex_text",
    "postcode_district",
    "postcode_district_text",
]

# Unicode White_Space, spelled out so that polars (Rust regex) and Python's re
# remove exactly the same characters.
_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# ASCII hyphen plus the Unicode hyphens and dashes word processors substitute.
_HYPHENS = "\\-\u2010-\u2015\u2212"

_NHS_SEPARATORS = f"[{_WHITESPACE}{_HYPHENS}]+"
_NHS_SEPARATORS_RE = re.compile(_NHS_SEPARATORS)
_TEN_DIGITS = "^[0-9]{10}$"
_TEN_DIGITS_RE = re.compile(_TEN_DIGITS)
_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_REPDIGIT = 1_111_111_111  # ten identical digits are exactly the multiples of this

# Letters NFKD does not decompose, folded as costing-method.md section 1 says.
# Beyond its list: capital sharp s (the upper case of ß) and eth (Icelandic and
# Faroese, written d in English), which would otherwise vanish.
_NAME_FOLDS = {
    "ß": "SS",
    "ẞ": "SS",
    "Æ": "AE",
    "æ": "AE",
    "Œ": "OE",
    "œ": "OE",
    "Ø": "O",
    "ø": "O",
    "Ł": "L",
    "ł": "L",
    "Đ": "D",
    "đ": "D",
    "Ð": "D",
    "ð": "D",
    "Þ": "TH",
    "þ": "TH",
}
_NAME_FOLD_TABLE = str.maketrans(_NAME_FOLDS)
_NOT_A_TO_Z = "[^A-Z]+"
_NOT_A_TO_Z_RE = re.compile(_NOT_A_TO_Z)

_POSTCODE_WHITESPACE = f"[{_WHITESPACE}]+"
_POSTCODE_WHITESPACE_RE = re.compile(_POSTCODE_WHITESPACE)
# Shape of a full UK postcode once normalised: outward code (area letters, a
# district digit, an optional digit or letter) then inward code (digit, two
# letters); GIR 0AA is the one historic exception.
_FULL_POSTCODE = "^(?:[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}|GIR0AA)$"
_FULL_POSTCODE_RE = re.compile(_FULL_POSTCODE)
_INWARD_CHARS = 3

_SEX_CODES = ("1", "2", "9")
_SEX_UNKNOWN = "0"
_EDGE_WHITESPACE = f"^[{_WHITESPACE}]+|[{_WHITESPACE}]+$"
_EDGE_WHITESPACE_RE = re.compile(_EDGE_WHITESPACE)

AGE_BANDS = ("0-17", "18-64", "65-74", "75-84", "85+")
_BAND_UPPER_AGES = (17, 64, 74, 84)


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.len_bytes() > 0).then(expr)


# --- NHS number -----------------------------------------------------------------


def normalise_nhs_number(expr: pl.Expr) -> pl.Expr:
    """Remove whitespace and hyphens; a blank result is null. Nothing else changes."""
    return _blank_to_null(expr.str.replace_all(_NHS_SEPARATORS, ""))


def normalise_nhs_number_text(value: str | None) -> str | None:
    """Scalar twin of :func:`normalise_nhs_number`."""
    if value is None:
        return None
    return _NHS_SEPARATORS_RE.sub("", value) or None


def nhs_number_is_valid(expr: pl.Expr) -> pl.Expr:
    """True for a valid NHS number; False otherwise, including for null.

    The value is normalised first (normalising is idempotent, so an already
    normalised column gives the same answer). Valid means: exactly 10 digits;
    check digit = 11 - (sum of the first nine digits weighted 10..2 mod 11),
    where 11 means 0 and 10 means no valid check digit exists; not ten identical
    digits (``0000000000``, ``9999999999`` are placeholders).
    """
    normalised = normalise_nhs_number(expr)
    number = (
        pl.when(normalised.str.contains(_TEN_DIGITS)).then(normalised).str.to_integer(strict=False)
    )
    weighted = pl.sum_horizontal(
        ((number // 10 ** (9 - position)) % 10) * weight
        for position, weight in enumerate(_NHS_WEIGHTS)
    )
    check = (11 - weighted % 11) % 11
    valid = (check != 10) & (check == number % 10) & (number % _REPDIGIT != 0)
    return valid.fill_null(False)


def is_valid_nhs_number(value: str | None) -> bool:
    """Scalar twin of :func:`nhs_number_is_valid` (normalises ``value`` itself)."""
    normalised = normalise_nhs_number_text(value)
    if normalised is None or not _TEN_DIGITS_RE.match(normalised):
        return False
    digits = [int(c) for c in normalised]
    if len(set(digits)) == 1:
        return False
    check = (11 - sum(d * w for d, w in zip(digits, _NHS_WEIGHTS, strict=False)) % 11) % 11
    return check != 10 and check == digits[9]


# --- Names -----------------------------------------------------------------------


def normalise_name(expr: pl.Expr) -> pl.Expr:
    """Fold accents to ASCII, upper-case and keep A-Z only; a blank result is null.

    Unicode NFKD with combining marks dropped, plus ß/ẞ→SS, Æ→AE, Œ→OE, Ø→O, Ł→L,
    Đ/Ð→D, Þ→TH (either case). ``"Zoë O'Brien-Smith"`` → ``"ZOEOBRIENSMITH"``.
    """
    folded = (
        expr.str.normalize("NFKD")
        .str.replace_many(_NAME_FOLDS)
        .str.to_uppercase()
        .str.replace_all(_NOT_A_TO_Z, "")
    )
    return _blank_to_null(folded)


def normalise_name_text(value: str | None) -> str | None:
    """Scalar twin of :func:`normalise_name`."""
    if value is None:
        return None
    folded = unicodedata.normalize("NFKD", value).translate(_NAME_FOLD_TABLE).upper()
    return _NOT_A_TO_Z_RE.sub("", folded) or None


# --- Postcodes -------------------------------------------------------------------


def normalise_postcode(expr: pl.Expr) -> pl.Expr:
    """Upper case with all whitespace removed (``ts18 1ab`` → ``TS181AB``); blank is null."""
    return _blank_to_null(expr.str.to_uppercase().str.replace_all(_POSTCODE_WHITESPACE, ""))


def normalise_postcode_text(value: str | None) -> str | None:
    """Scalar twin of :func:`normalise_postcode`."""
    if value is None:
        return None
    return _POSTCODE_WHITESPACE_RE.sub("", value.upper()) or None


def postcode_district(expr: pl.Expr) -> pl.Expr:
    """The outward code (``TS18 1AB`` → ``TS18``), or null when not a full UK postcode.

    The value is normalised first; it must then have the shape of a full
    postcode (5 to 7 characters: outward code then digit and two letters), and
    the district is all but its last 3 characters. Only the shape is checked,
    not whether the area exists.
    """
    normalised = normalise_postcode(expr)
    return pl.when(normalised.str.contains(_FULL_POSTCODE)).then(
        normalised.str.slice(0, normalised.str.len_chars() - _INWARD_CHARS)
    )


def postcode_district_text(value: str | None) -> str | None:
    """Scalar twin of :func:`postcode_district`."""
    normalised = normalise_postcode_text(value)
    if normalised is None or not _FULL_POSTCODE_RE.match(normalised):
        return None
    return normalised[:-_INWARD_CHARS]


# --- Sex -------------------------------------------------------------------------


def normalise_sex(expr: pl.Expr) -> pl.Expr:
    """``1``, ``2`` or ``9`` (surrounding whitespace ignored); anything else ``0``.

    Integer columns are read as their digits. Never null.
    """
    trimmed = expr.cast(pl.String).str.replace_all(_EDGE_WHITESPACE, "")
    return (
        pl.when(trimmed.is_in(_SEX_CODES))
        .then(trimmed)
        .otherwise(pl.lit(_SEX_UNKNOWN, dtype=pl.String))
    )


def normalise_sex_text(value: str | None) -> str:
    """Scalar twin of :func:`normalise_sex`."""
    if value is None:
        return _SEX_UNKNOWN
    trimmed = _EDGE_WHITESPACE_RE.sub("", value)
    return trimmed if trimmed in _SEX_CODES else _SEX_UNKNOWN


# --- Date of birth and age -------------------------------------------------------


def birth_year(expr: pl.Expr) -> pl.Expr:
    """Year of a Date column, as Int32."""
    return expr.dt.year().cast(pl.Int32)


def birth_year_value(date_of_birth: date) -> int:
    """Scalar twin of :func:`birth_year`."""
    return date_of_birth.year


def born_after_1_april(expr: pl.Expr) -> pl.Expr:
    """Whether the birthday (month and day) falls after 1 April, from a Date column.

    Together with the birth year this gives the age on 1 April of any year
    without keeping the date of birth. Born on 1 April: False; 29 February: False.
    """
    month = expr.dt.month()
    return (month > 4) | ((month == 4) & (expr.dt.day() > 1))


def born_after_1_april_value(date_of_birth: date) -> bool:
    """Scalar twin of :func:`born_after_1_april`."""
    return (date_of_birth.month, date_of_birth.day) > (4, 1)


def age_on_1_april(birth_year: pl.Expr, born_after_1_april: pl.Expr, year: int) -> pl.Expr:
    """Age in whole years on 1 April of ``year`` (Int32), and 0 for anyone born after it.

    ``year - birth_year``, less one when the birthday falls after 1 April.
    """
    age = (
        pl.lit(year, dtype=pl.Int32) - birth_year.cast(pl.Int32) - born_after_1_april.cast(pl.Int32)
    )
    return age.clip(lower_bound=0)


def age_on_1_april_value(birth_year: int, born_after_1_april: bool, year: int) -> int:
    """Scalar twin of :func:`age_on_1_april`."""
    return max(0, year - birth_year - int(born_after_1_april))


def age_band(age: pl.Expr) -> pl.Expr:
    """The contract's age band of an age: ``0-17``, ``18-64``, ``65-74``, ``75-84``, ``85+``.

    Null stays null.
    """
    band: pl.Expr = pl.lit(AGE_BANDS[-1], dtype=pl.String)
    for upper, label in reversed(list(zip(_BAND_UPPER_AGES, AGE_BANDS, strict=False))):
        band = pl.when(age <= upper).then(pl.lit(label, dtype=pl.String)).otherwise(band)
    return pl.when(age.is_not_null()).then(band)


def age_band_value(age: int) -> str:
    """Scalar twin of :func:`age_band`."""
    for upper, label in zip(_BAND_UPPER_AGES, AGE_BANDS, strict=False):
        if age <= upper:
            return label
    return AGE_BANDS[-1]
