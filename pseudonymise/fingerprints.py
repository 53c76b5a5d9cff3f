"""Keyed fingerprints of every raw identifier, so leaks can be found without raw data.

The pseudonymisation step calls :func:`identifier_fingerprints` on the raw rows it
reads and writes the result into the restricted zone. The leak scanner
(:mod:`delivery.audit`) later cuts candidate tokens out of everything the pipeline
wrote, puts each into the same canonical form, hashes it under the same key and
looks it up here: a hit means a raw identifier is at rest somewhere it must not be.
The scanner never needs the landing files again.

A fingerprint is ``pseudonymise_series(key, "<kind>:<canonical value>")``: 32 hex
characters, useless without the key. Prefixing the kind keeps kinds apart (a local
id that happens to be ten digits is not an NHS number). The key is the pipeline's
``"fingerprint"`` purpose key in its text form (:func:`fingerprint_key`), never the
linkage key, so a fingerprint cannot be joined to any pseudonym.

Canonical forms, which the scanner reproduces from a token it finds:

* ``nhs_number``: spaces and hyphens removed, exactly 10 digits (valid or not:
  a mistyped number is still someone's), not ten identical digits (placeholders);
* ``local_patient_id``: surrounding whitespace removed, upper case, 4+ characters,
  at least one digit and not one character repeated (``UNKNOWN``, ``NONE``,
  ``0000``, ``XXXX`` are placeholders, and would match ordinary words);
* ``postcode``: upper case without whitespace, only a full postcode's shape, not
  one of the ``ZZ99`` pseudo-postcodes (no fixed abode, not known, abroad);
* ``name``: a given or a family name on its own, folded to A-Z
  (:func:`pseudonymise.identifiers.normalise_name`), 3+ letters, not a
  placeholder such as ``UNKNOWN`` or ``BABY`` (:data:`PLACEHOLDER_NAMES`);
* ``full_name``: the folded given name followed by the folded family name, when
  both are present and neither is a placeholder;
* ``date_of_birth``: ``YYYY-MM-DD`` of a real date.

This module reads raw identifier values; nothing here logs or raises with one.
"""

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from pseudonymise.hashing import pseudonymise_series, text_key
from pseudonymise.identifiers import (
    normalise_name,
    normalise_nhs_number,
    normalise_postcode,
    postcode_district,
)
from pseudonymise.keys import Keyring

__all__ = [
    "FINGERPRINT_PURPOSE",
    "KINDS",
    "MIN_LOCAL_ID_CHARS",
    "MIN_NAME_CHARS",
    "PLACEHOLDER_NAMES",
    "canonical",
    "canonical_identifiers",
    "fingerprint_files",
    "fingerprint_key",
    "fingerprint_messages",
    "identifier_fingerprints",
    "read_fingerprints",
    "write_fingerprints",
]

KINDS: tuple[str, ...] = (
    "nhs_number",
    "local_patient_id",
    "postcode",
    "name",
    "full_name",
    "date_of_birth",
)
FINGERPRINT_PURPOSE = "fingerprint"
MIN_LOCAL_ID_CHARS = 4
MIN_NAME_CHARS = 3

_SCHEMA = {"kind": pl.String, "fingerprint": pl.String}
_CANONICAL_SCHEMA = {"kind": pl.String, "canonical": pl.String}
_TEN_DIGITS = "^[0-9]{10}$"
_REPDIGIT = 1_111_111_111  # ten identical digits are exactly the multiples of this
_ISO_DATE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_PSEUDO_POSTCODE = "ZZ99"
#: Values written in name columns that name no one (folded, as they are compared).
PLACEHOLDER_NAMES: tuple[str, ...] = (
    "ANON",
    "ANONYMOUS",
    "BABY",
    "CLIENT",
    "INFANT",
    "NONE",
    "NOTKNOWN",
    "NOTSTATED",
    "NULL",
    "PATIENT",
    "TEST",
    "UNKNOWN",
    "XXX",
    "ZZZ",
)


def fingerprint_key(keyring: Keyring) -> bytes:
    """The HMAC key for fingerprints: ``text_key`` of the ``"fingerprint"`` purpose key."""
    return text_key(keyring.purpose(FINGERPRINT_PURPOSE))


def _text(raw: pl.DataFrame, column: str) -> pl.Expr:
    """A raw column as text (null when the column is missing)."""
    if column not in raw.columns:
        return pl.lit(None, dtype=pl.String)
    dtype = raw.schema[column]
    if dtype == pl.Date:
        return pl.col(column).dt.to_string("%Y-%m-%d")
    return pl.col(column).cast(pl.String)


def _nhs_number(expr: pl.Expr) -> pl.Expr:
    digits = normalise_nhs_number(expr)
    ten = pl.when(digits.str.contains(_TEN_DIGITS)).then(digits)
    return pl.when(ten.str.to_integer(strict=False) % _REPDIGIT != 0).then(ten)


def _local_id(expr: pl.Expr) -> pl.Expr:
    stripped = expr.str.strip_chars().str.to_uppercase()
    return pl.when(
        (stripped.str.len_chars() >= MIN_LOCAL_ID_CHARS)
        & stripped.str.contains("[0-9]")
        & (stripped.str.split("").list.n_unique() > 1)
    ).then(stripped)


def _postcode(expr: pl.Expr) -> pl.Expr:
    normalised = normalise_postcode(expr)
    return pl.when(
        postcode_district(expr).is_not_null() & ~normalised.str.starts_with(_PSEUDO_POSTCODE)
    ).then(normalised)


def _date(expr: pl.Expr) -> pl.Expr:
    stripped = expr.str.strip_chars()
    parsed = (
        pl.when(stripped.str.contains(_ISO_DATE))
        .then(stripped)
        .str.to_date("%Y-%m-%d", strict=False)
    )
    return parsed.dt.to_string("%Y-%m-%d")


def _name(expr: pl.Expr) -> pl.Expr:
    folded = normalise_name(expr)
    return pl.when(
        (folded.str.len_chars() >= MIN_NAME_CHARS) & ~folded.is_in(PLACEHOLDER_NAMES)
    ).then(folded)


_RULES = {
    "nhs_number": _nhs_number,
    "local_patient_id": _local_id,
    "postcode": _postcode,
    "name": _name,
    "full_name": normalise_name,
    "date_of_birth": _date,
}


def canonical(kind: str, expr: pl.Expr) -> pl.Expr:
    """The canonical form of a text expression as an identifier of ``kind``, or null.

    The one definition both sides use: fingerprints here, candidate tokens in the
    scanner. For ``full_name`` the expression is the given and family names
    already joined (any spacing or punctuation between them is dropped).

    Raises:
        KeyError: ``kind`` is not one of :data:`KINDS`.
    """
    return _RULES[kind](expr)


def canonical_identifiers(raw: pl.DataFrame) -> pl.DataFrame:
    """Distinct ``(kind, canonical)`` pairs of the identifiers in a raw frame.

    Columns read (each optional, text or Date): ``nhs_number``,
    ``local_patient_id``, ``postcode``, ``date_of_birth``, ``given_name``,
    ``family_name``. Values that are blank or fail a kind's rule (module
    docstring) are left out.
    """
    distinct = raw.lazy().select(
        nhs_number=_text(raw, "nhs_number"),
        local_patient_id=_text(raw, "local_patient_id"),
        postcode=_text(raw, "postcode"),
        date_of_birth=_text(raw, "date_of_birth"),
        given_name=_text(raw, "given_name"),
        family_name=_text(raw, "family_name"),
    )
    parts = [
        distinct.select(pl.col(kind).unique()).select(
            pl.lit(kind).alias("kind"), rule(pl.col(kind)).alias("canonical")
        )
        for kind, rule in (
            ("nhs_number", _nhs_number),
            ("local_patient_id", _local_id),
            ("postcode", _postcode),
            ("date_of_birth", _date),
        )
    ]
    names = distinct.select("given_name", "family_name").unique()
    given = normalise_name(pl.col("given_name"))
    family = normalise_name(pl.col("family_name"))
    placeholder = given.is_in(PLACEHOLDER_NAMES) | family.is_in(PLACEHOLDER_NAMES)
    parts += [
        names.select(pl.col(column).unique()).select(
            pl.lit("name").alias("kind"), _name(pl.col(column)).alias("canonical")
        )
        for column in ("given_name", "family_name")
    ]
    parts.append(
        names.select(
            pl.lit("full_name").alias("kind"),
            pl.when(~placeholder).then(pl.concat_str(given, family)).alias("canonical"),
        )
    )
    # One query, so polars can work on the columns in parallel.
    return (
        pl.concat(parts)
        .cast(_CANONICAL_SCHEMA)  # type: ignore[arg-type]
        .drop_nulls()
        .unique(maintain_order=True)
        .collect()
    )


def fingerprint_messages(kind: pl.Expr, value: pl.Expr) -> pl.Expr:
    """The text that is hashed: ``"<kind>:<canonical value>"``."""
    return pl.concat_str(kind, pl.lit(":"), value)


def identifier_fingerprints(raw: pl.DataFrame, key: bytes) -> pl.DataFrame:
    """Distinct keyed fingerprints (columns ``kind``, ``fingerprint``) of a raw frame.

    Args:
        raw: raw identifier columns as text (any of them may be missing or blank);
            other columns are ignored.
        key: the HMAC key, normally :func:`fingerprint_key` of the run's keyring.
    """
    pairs = canonical_identifiers(raw)
    messages = pairs.select(fingerprint_messages(pl.col("kind"), pl.col("canonical")))
    return (
        pl.DataFrame(
            {
                "kind": pairs.get_column("kind"),
                "fingerprint": pseudonymise_series(key, messages.to_series()),
            }
        )
        .cast(_SCHEMA)  # type: ignore[arg-type]
        .unique(maintain_order=True)
    )


def write_fingerprints(frame: pl.DataFrame, path: Path) -> None:
    """Write fingerprints as Parquet, owner-only, replacing ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        frame.select(pl.col("kind").cast(pl.String), pl.col("fingerprint").cast(pl.String)).sort(
            "kind", "fingerprint"
        ).write_parquet(tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def fingerprint_files(restricted_dir: Path) -> list[Path]:
    """Every fingerprint file in the restricted zone: each source's latest, and the ones
    pinned when the warehouse was last linked (``fingerprints/linked-*/``), so a scan
    knows the identifiers of every delivery whose data may be at rest. A pinned file
    that is a hard link to a latest one (nothing changed since) is listed once."""
    files, seen = [], set()
    for path in sorted((Path(restricted_dir) / "fingerprints").rglob("*.parquet")):
        status = path.stat()
        if (status.st_dev, status.st_ino) not in seen:
            seen.add((status.st_dev, status.st_ino))
            files.append(path)
    return files


def read_fingerprints(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Fingerprints from one or more files written by :func:`write_fingerprints`.

    Returns kind -> set of fingerprints; every kind in :data:`KINDS` is present
    (empty when no file has it).
    """
    result: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for path in paths:
        frame = pl.read_parquet(Path(path), columns=["kind", "fingerprint"])
        for (kind,), group in frame.group_by("kind"):
            result.setdefault(str(kind), set()).update(group.get_column("fingerprint").to_list())
    return result
