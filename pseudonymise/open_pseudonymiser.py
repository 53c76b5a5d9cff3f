"""Open Pseudonymiser compatibility digests, for joining with legacy datasets.

Open Pseudonymiser (University of Nottingham; used by many NHS sites) gives each
row the upper-case hex SHA-256 of:

* the chosen fields' values concatenated in the order of their field names
  compared with letter case swapped (its Java library swaps case so that its
  sort order matches the .NET original; ``DOB`` comes before ``NHSNumber``);
* with every space, tab, carriage return and line feed removed from those values;
* then the salt, trimmed, appended (blanks inside the salt are kept).

This is a salted hash, not a keyed HMAC: see :data:`WEAKER_THAN_DEFAULT`. It is
opt-in, for sites that must join to a dataset Open Pseudonymiser already made;
the pipeline's own pseudonyms come from :mod:`pseudonymise.hashing`.

Each rule has a polars expression (whole columns) and a scalar twin that agree,
which the tests check against the library's published vectors.

Never pickle or serialise a lazy query holding :func:`digest_expr`: the salt is a
literal inside the plan.
"""

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import polars as pl
import polars_hash as _polars_hash  # noqa: F401  (registers the `chash` namespace)

__all__ = [
    "WEAKER_THAN_DEFAULT",
    "SaltFileError",
    "digest",
    "digest_expr",
    "digest_field_order",
    "dob_open_pseudonymiser_format",
    "dob_open_pseudonymiser_format_value",
    "nhs_number_digits",
    "nhs_number_digits_text",
    "read_salt_file",
]

WEAKER_THAN_DEFAULT = (
    "Open Pseudonymiser compatibility digest: a salted SHA-256, not the pipeline's "
    "keyed HMAC, so anyone holding the salt can recompute it for every one of the "
    "about 300 million valid NHS numbers in minutes; use it only to join with a "
    "legacy Open Pseudonymiser dataset."
)

# What Open Pseudonymiser's RemoveBlanks deletes from the values (not the salt).
# The same pattern works in Python's re and polars' Rust regex.
_BLANKS = r"[\r\n\t ]"
_BLANKS_RE = re.compile(_BLANKS)
# Java's String.trim(), which the library applies to the salt, removes every
# character up to U+0020 from both ends (and nothing else, e.g. not U+00A0).
_JAVA_TRIM = "".join(chr(code) for code in range(0x21))
# The library's ProcessNHSNumber keeps ASCII digits only.
_NOT_ASCII_DIGIT = "[^0-9]"
_NOT_ASCII_DIGIT_RE = re.compile(_NOT_ASCII_DIGIT)
_DOB_FORMAT = "%d.%m.%Y"


class SaltFileError(ValueError):
    """A salt file is missing, unreadable, blank or readable by others.

    Messages name the file and say what to do; they never contain the salt.
    """


# --- Salt ------------------------------------------------------------------------


def _trimmed_salt(salt: str) -> str:
    """The salt as the library uses it; a blank salt is refused, as the library does."""
    if not isinstance(salt, str):
        raise TypeError(f"the Open Pseudonymiser salt must be text, not {type(salt).__name__}")
    trimmed = salt.strip(_JAVA_TRIM)
    if not trimmed:
        raise ValueError("the Open Pseudonymiser salt is blank; it must be set and non-blank")
    return trimmed


def read_salt_file(path: Path) -> str:
    """Read the salt from a UTF-8 text file, trimmed as the library trims it.

    The salt is as sensitive as a key (it is all that stands between a digest and
    the NHS number), so the file must be readable by its owner only, as key files
    are.

    Raises:
        SaltFileError (a ValueError): the file is missing, not a regular file,
            accessible by group or others (POSIX), not UTF-8, or blank.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SaltFileError(f"Salt file {path} does not exist") from None
    except OSError as exc:
        raise SaltFileError(f"Salt file {path} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise SaltFileError(f"Salt file {path} is not a regular file")
    if os.name == "posix" and mode & 0o077:
        raise SaltFileError(
            f"Salt file {path} is accessible by group or others "
            f"(permissions {stat.S_IMODE(mode):04o}); "
            f"make it readable by its owner only: chmod 600 {path}"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SaltFileError(f"Salt file {path} cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SaltFileError(f"Salt file {path} is not UTF-8 text") from None
    trimmed = text.strip(_JAVA_TRIM)
    if not trimmed:
        raise SaltFileError(
            f"Salt file {path} is blank; it must hold the salt the legacy dataset was made with"
        )
    return trimmed


# --- Digest ----------------------------------------------------------------------


def digest_field_order(names: Iterable[str]) -> list[str]:
    """Field names in the order their values are concatenated.

    Sorted by the name with letter case swapped (``str.swapcase``), which for
    ASCII names is exactly the Java library's order: ``["NHSNumber", "DOB"]`` →
    ``["DOB", "NHSNumber"]``; ``"abc"`` sorts before ``"ABD"``.

    Raises:
        ValueError: no names, or two names that swap to the same text (the
            library would silently keep only one of their values).
    """
    swapped: dict[str, str] = {}
    for name in names:
        key = name.swapcase()
        if key in swapped:
            raise ValueError(
                f"field names {swapped[key]!r} and {name!r} sort as the same name; rename one"
            )
        swapped[key] = name
    if not swapped:
        raise ValueError("an Open Pseudonymiser digest needs at least one field")
    return [swapped[key] for key in sorted(swapped)]


def _unsalted_message(fields: Mapping[str, str]) -> str:
    """The values in digest order, concatenated, with blanks removed (salt not yet added)."""
    joined = "".join(fields[name] for name in digest_field_order(fields))
    return _BLANKS_RE.sub("", joined)


def digest(fields: Mapping[str, str], salt: str) -> str:
    """The Open Pseudonymiser digest of one row: 64 upper-case hex characters.

    ``fields`` maps field name to value, exactly as given to the library (e.g.
    ``{"NHSNumber": "999 456 1235", "DOB": "29.11.1973"}``); names only set the
    order. SHA-256 is over the UTF-8 bytes of the values, concatenated in
    :func:`digest_field_order` with spaces, tabs, ``\\r`` and ``\\n`` removed,
    followed by the salt trimmed of leading and trailing blanks and control
    characters (as the Java library does; the .NET one does not trim).

    Raises:
        ValueError: a blank salt, or no fields.
    """
    message = _unsalted_message(fields) + _trimmed_salt(salt)
    return hashlib.sha256(message.encode("utf-8")).hexdigest().upper()


def _unsalted_message_expr(columns: Mapping[str, pl.Expr]) -> pl.Expr:
    ordered = [columns[name] for name in digest_field_order(columns)]
    return pl.concat_str(ordered, separator="").str.replace_all(_BLANKS, "")


def digest_expr(columns: Mapping[str, pl.Expr], salt: str) -> pl.Expr:
    """The expression form of :func:`digest`; null in any input gives a null digest.

    ``columns`` maps the legacy field name to a text expression. Other dtypes are
    cast by ``concat_str`` to polars' own text, which may not be what the legacy
    dataset held: format dates with :func:`dob_open_pseudonymiser_format` first.

    Raises:
        ValueError: a blank salt, or no columns.
    """
    salted = pl.concat_str(
        [_unsalted_message_expr(columns), pl.lit(_trimmed_salt(salt), dtype=pl.String)]
    )
    return salted.chash.sha2_256().str.to_uppercase()  # type: ignore[attr-defined]


# --- Field formats -----------------------------------------------------------------


def dob_open_pseudonymiser_format(expr_date: pl.Expr) -> pl.Expr:
    """A Date as ``dd.mm.yyyy`` text (``29.11.1973``), the format of the published vector.

    A legacy dataset's digests only match when the date text is byte-for-byte what
    was hashed there, so confirm the legacy format before relying on this.
    """
    return expr_date.dt.strftime(_DOB_FORMAT)


def dob_open_pseudonymiser_format_value(value: date) -> str:
    """Scalar twin of :func:`dob_open_pseudonymiser_format`."""
    return f"{value.day:02d}.{value.month:02d}.{value.year:04d}"


def nhs_number_digits(expr: pl.Expr) -> pl.Expr:
    """Keep only the ASCII digits (``999-456-123-5`` → ``9994561235``); null stays null.

    What the Open Pseudonymiser application does to the column chosen as NHS
    number before hashing when its NHS-number validation is switched on. Apply it
    only if the legacy dataset was made that way. A value with no digits becomes
    ``""``, not null, as in the library.
    """
    return expr.str.replace_all(_NOT_ASCII_DIGIT, "")


def nhs_number_digits_text(value: str) -> str:
    """Scalar twin of :func:`nhs_number_digits`."""
    return _NOT_ASCII_DIGIT_RE.sub("", value)
