"""Leak audit: find raw identifiers wherever the pipeline's data rests, without raw data.

The pseudonymisation step leaves keyed fingerprints of every raw identifier in the
restricted zone (:mod:`pseudonymise.fingerprints`). This module cuts candidate
tokens out of everything the pipeline wrote - exports, the DuckDB warehouse and
the Parquet beside it, Dagster's storage (SQLite files, or the tables of a PostgreSQL
instance) and compute logs, the quarantine -
puts each into the same canonical form, hashes it under the fingerprint key and
looks it up. A hit is a raw identifier at rest where it must not be. Nothing here
reads the landing files, and a :class:`Finding` names a place and a kind, never a
value.

What counts as a candidate (:func:`candidate_tokens`):

* ``nhs_number``: ten digits, or 3-3-4 digits split by single spaces or hyphens,
  not part of a longer run of digits or letters (so not inside a hex pseudonym);
* ``postcode``: a full postcode, any case, with or without the space;
* ``local_patient_id``: runs of letters and digits, alone and joined by
  ``-``, ``/``, ``.`` or ``_``, four characters or more (a hit on an id of fewer
  than ten digits and nothing else is reported as :data:`DIGITS_LOCAL_ID`: any
  number may equal one by chance);
* ``name``: single words (only used for whole cell values, see below);
* ``full_name``: two adjacent words in either order, and three in order (a
  double given or family name), folded like names;
* ``date_of_birth``: ``YYYY-MM-DD`` of a real date.

In tables every whole cell value is also a candidate of every kind. Which kinds
are looked for where:

* exports: every kind (:data:`EXPORT_KINDS`); nothing in an export may hold an
  exact date;
* everything else (:data:`STORAGE_KINDS`): every kind but ``date_of_birth``,
  because activity and run dates are legitimate there and collide with birth dates;
* ``name`` is looked for only as a whole cell value in a table (a column holding
  ``"Hall"``), never as a word in free text (logs, Dagster's event blobs), where
  ordinary words that are also surnames (Price, Hall, Field) would be false
  alarms; free text is checked for full names (adjacent words) instead.
"""

import contextlib
import glob
import gzip
import json
import os
import re
import sqlite3
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import sqlalchemy as sa

from delivery.manifest import MANIFEST_NAME
from delivery.writer import runs_dir
from pseudonymise.fingerprints import (
    KINDS,
    MIN_LOCAL_ID_CHARS,
    MIN_NAME_CHARS,
    canonical,
    fingerprint_messages,
    read_fingerprints,
)
from pseudonymise.hashing import pseudonymise_expr
from pseudonymise.identifiers import normalise_name

__all__ = [
    "DIGITS_LOCAL_ID",
    "EXPORT_KINDS",
    "STORAGE_KINDS",
    "UNREADABLE",
    "Finding",
    "Scanner",
    "audit",
    "candidate_tokens",
]

EXPORT_KINDS: frozenset[str] = frozenset(KINDS)
STORAGE_KINDS: frozenset[str] = frozenset(KINDS) - {"date_of_birth"}
#: Kinds a Finding can carry besides :data:`KINDS`: a file that could not be
#: parsed as what it claims to be (scanned as raw bytes instead, so coverage is
#: partial) or could not be read at all. Treat either as a failed audit.
UNREADABLE = "unreadable"
#: A local patient id of fewer than ten digits and nothing else, found again. Such
#: ids are common (social care client numbers) and any number in a log or a cost
#: column may equal one by chance: a few of these in a column of costs or counts
#: is likely coincidence, many of them in one column, or one beside a name, a leak.
DIGITS_LOCAL_ID = "local_patient_id_digits"
_SURE_DIGITS = 10

# --- Candidate tokens (Rust regex syntax, run by polars) ---------------------------

_SEP = r"[\s\-\x{2010}-\x{2015}\x{2212}]"
_NHS = rf"\b[0-9]{{3}}{_SEP}?[0-9]{{3}}{_SEP}?[0-9]{{4}}\b"
_POSTCODE = r"\b[A-Za-z]{1,2}[0-9][A-Za-z0-9]?[ \t]{0,2}[0-9][A-Za-z]{2}\b"
_DATE = r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[^0-9]|$)"
_ALNUM = rf"[A-Za-z0-9]{{{MIN_LOCAL_ID_CHARS},}}"
_COMPOUND = r"[A-Za-z0-9]+(?:[\-/._][A-Za-z0-9]+)+"
_WORD = r"\p{L}+(?:['\x{2019}\-]\p{L}+)*"
_FRACTION = r"([0-9])\.[0-9]+"
# Words separated only by a short run of spaces or punctuation ("Mark Cook",
# "COOK, Mark", "\"Mark\",\"Cook\""): adjacent words are taken from within a chain.
_CHAIN = rf"\b{_WORD}(?:[^\p{{L}}\p{{N}}]{{1,4}}{_WORD})*\b"
_ISO_DATE_CHARS = 10
# What a whole cell must look like to be worth putting in canonical form as a kind
# (a cheap filter; the canonical rule decides).
_CELL_SHAPES = {
    "nhs_number": rf"^(?:\s|{_SEP}|[0-9]){{10,24}}$",
    # letters and digits, alone or joined by - / . _, are already tokens; a whole
    # cell adds ids written with inner spaces or other marks ("RTR 12345")
    "local_patient_id": r"[A-Za-z0-9][^A-Za-z0-9\-/._]+[A-Za-z0-9]",
    "postcode": r"^\s*[A-Za-z]{1,2}[0-9][A-Za-z0-9]?\s*[0-9][A-Za-z]{2}\s*$",
    "name": r"^[^0-9]*\pL[^0-9]*$",
    "full_name": r"^[^0-9]*\pL[^0-9]*$",
    "date_of_birth": r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*$",
}
# Cheaper canonical forms for whole cells of the shapes above (see _rule).
_CELL_FORMS = {"local_patient_id": pl.col("t").str.strip_chars().str.to_uppercase()}
# Whole cells longer than this are not identifiers (but are searched for tokens).
_MAX_CELL_CHARS = 100
_BATCH_VALUES = 500_000
_CLEAN_VALUES = 5_000_000
_BATCH_BYTES = 8 << 20
_SQLITE_ROWS = 10_000
_TEXT_BLOCK_BYTES = 8 << 20
_PRINTABLE_BYTES = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
_PRINTABLE = re.compile(rb"[\t\x20-\x7e\x80-\xff]{4,}")
_COLUMN_NAMES = "(column names)"
_REDACTED = "<identifier>"

_PARSE_ERRORS = (
    OSError,
    ValueError,  # json.JSONDecodeError and UnicodeDecodeError among them
    RecursionError,
    pl.exceptions.PolarsError,
    duckdb.Error,
    sqlite3.Error,
)
_SQLITE_MAGIC = b"SQLite format 3\x00"
_DUCKDB_MAGIC = b"DUCK"
_DUCKDB_MAGIC_OFFSET = 8
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_BYTES = 1 << 16
_TEXT_SUFFIXES = {".txt", ".log", ".out", ".err", ".complete", ".md", ".yaml", ".yml", ".html"}


@dataclass(frozen=True, order=True)
class Finding:
    """Raw identifiers of one kind found in one place.

    Attributes:
        location: a file path, followed for tables by ``#column`` (Parquet, CSV,
            JSON: ``#field.subfield`` for nested fields), ``#table#column``
            (SQLite) or ``#schema.table#column`` (DuckDB); a name that is itself
            an identifier is shown as ``<identifier>``, and names that are
            identifiers are reported at ``#(column names)``. Never a value.
        kind: one of :data:`pseudonymise.fingerprints.KINDS`,
            :data:`DIGITS_LOCAL_ID` or :data:`UNREADABLE`.
        count: how many distinct identifiers of that kind were found there.
    """

    location: str
    kind: str
    count: int

    def __str__(self) -> str:
        if self.kind == UNREADABLE:
            return f"{self.location}: could not be read as it should be; checked as raw bytes"
        return f"{self.location}: {self.count} distinct {self.kind} value(s) from the raw data"


# --- Extracting candidates ---------------------------------------------------------


_CANDIDATE_SCHEMA = {"label": pl.String, "kind": pl.String, "canonical": pl.String}


def _rule(tokens: pl.DataFrame, kind: str, form: pl.Expr | None = None) -> pl.DataFrame:
    """(label, kind, canonical) of the distinct strings in column ``t``.

    ``form`` puts a token into canonical form; it defaults to the full rule of
    :func:`pseudonymise.fingerprints.canonical`. A token cut out by one of the
    patterns above already has its kind's shape, so a cheaper expression gives the
    same canonical text; checks the fingerprints apply on top of the shape (not
    ten identical digits, a real date) are not repeated: a candidate failing them
    has no fingerprint to match.
    """
    value = canonical(kind, pl.col("t")) if form is None else form
    return (
        tokens.drop_nulls()
        .unique()
        .select("label", pl.lit(kind).alias("kind"), value.alias("canonical"))
        .drop_nulls()
    )


def _words(chains: pl.DataFrame) -> pl.DataFrame:
    """(label, w): the words of each text in ``t``, each folded by ``normalise_name``.

    For ASCII text the fold is upper case and A-Z only, done directly; the Unicode
    decomposition, the slow step, only runs on text that needs it.
    """
    non_ascii = pl.col("t").str.contains(r"[^\x00-\x7f]")
    plain = chains.filter(~non_ascii).select(
        "label",
        w=pl.col("t")
        .str.to_uppercase()
        .str.extract_all(_WORD)
        .list.eval(pl.element().str.replace_all("[^A-Z]+", "")),
    )
    other = chains.filter(non_ascii).select(
        "label",
        w=pl.col("t").str.extract_all(_WORD).list.eval(normalise_name(pl.element())),
    )
    return pl.concat([plain, other])


def _extracted(values: pl.DataFrame, tokens: pl.Expr) -> pl.DataFrame:
    return values.select("label", tokens.alias("t")).explode("t")


def _name_plans(
    values: pl.DataFrame, kinds: frozenset[str], *, words_as_names: bool
) -> list[pl.DataFrame]:
    chains = _extracted(values, pl.col("v").str.extract_all(_CHAIN)).drop_nulls().unique()
    words = _words(chains)
    n = pl.col("w").list.len()
    plans = []
    if "full_name" in kinds:
        pairs = (
            words.filter(n >= 2)
            .select("label", a=pl.col("w").list.slice(0, n - 1), b=pl.col("w").list.slice(1))
            .explode("a", "b")
        )
        triples = (
            words.filter(n >= 3)
            .select(
                "label",
                a=pl.col("w").list.slice(0, n - 2),
                b=pl.col("w").list.slice(1, n - 2),
                c=pl.col("w").list.slice(2),
            )
            .explode("a", "b", "c")
        )
        joined = pl.concat(
            [
                pairs.select("label", t=pl.concat_str("a", "b")),
                pairs.select("label", t=pl.concat_str("b", "a")),
                triples.select("label", t=pl.concat_str("a", "b", "c")),
            ]
        )
        plans.append(_rule(joined, "full_name", pl.col("t")))
    if words_as_names and "name" in kinds:
        names = words.select("label", t=pl.col("w")).explode("t")
        plans.append(
            _rule(
                names.filter(pl.col("t").str.len_bytes() >= MIN_NAME_CHARS),
                "name",
                pl.col("t"),
            )
        )
    return plans


def _candidates(
    values: pl.DataFrame,
    kinds: frozenset[str],
    *,
    whole_cells: bool,
    words_as_names: bool = False,
) -> pl.DataFrame:
    """(label, kind, canonical) candidates in labelled text values.

    ``values`` has columns ``label`` (where a value is) and ``v`` (a line of free
    text, or a table cell). With ``whole_cells`` each value is also a candidate of
    every kind in ``kinds`` (the only way ``name`` is found unless
    ``words_as_names``).
    """
    frame = values.select(pl.col("label"), pl.col("v").cast(pl.String)).drop_nulls()
    if not whole_cells:  # cells come distinct per column already
        frame = frame.unique()
    v = pl.col("v")
    # The digits after a decimal point are not a token: a cost of 1234.9991234567 holds
    # no NHS number (at a site's scale some fraction would match one by chance), while
    # 9994561235.0 still shows 9994561235.
    frame = frame.with_columns(v.str.replace_all(_FRACTION, "${1}"))
    # "_" is a word character to \b; make it a separator (nhs_9991234567, Mark_Cook).
    spaced = frame.select("label", v=v.str.replace_all("_", " ", literal=True))
    plans: list[pl.DataFrame] = []
    t = pl.col("t")
    if "nhs_number" in kinds:
        nhs = _extracted(spaced, v.str.extract_all(_NHS))
        plans.append(_rule(nhs, "nhs_number", t.str.replace_all("[^0-9]+", "")))
    if "postcode" in kinds:
        postcodes = _extracted(spaced, v.str.extract_all(_POSTCODE))
        plans.append(_rule(postcodes, "postcode", t.str.to_uppercase().str.replace_all(r"\s+", "")))
    if "date_of_birth" in kinds:
        dates = _extracted(spaced, v.str.extract_all(_DATE))
        plans.append(_rule(dates, "date_of_birth", t.str.slice(0, _ISO_DATE_CHARS)))
    if "local_patient_id" in kinds:
        tokens = pl.concat(
            [
                _extracted(frame, v.str.extract_all(_ALNUM)),
                _extracted(frame, v.str.extract_all(_COMPOUND)),
            ]
        )
        plans.append(_rule(tokens, "local_patient_id", t.str.to_uppercase()))
    if {"name", "full_name"} & kinds:
        plans.extend(_name_plans(spaced, kinds, words_as_names=words_as_names))
    if whole_cells:
        cells = frame.filter(v.str.len_bytes() <= _MAX_CELL_CHARS).select("label", t=v)
        plans.extend(
            _rule(cells.filter(t.str.contains(_CELL_SHAPES[kind])), kind, _CELL_FORMS.get(kind))
            for kind in KINDS
            if kind in kinds
        )
    if not plans:
        return pl.DataFrame(schema=_CANDIDATE_SCHEMA)
    # Not made distinct across plans: a duplicate costs one more hash, less than a
    # multi-column unique would; findings count distinct fingerprints anyway.
    return pl.concat(plans)


def _labelled(label: str, values: pl.Series) -> pl.DataFrame:
    return pl.DataFrame(
        {"label": pl.repeat(label, len(values), dtype=pl.String, eager=True), "v": values}
    )


def candidate_tokens(text: str) -> dict[str, set[str]]:
    """Every candidate identifier in free text, by kind, in canonical form.

    Includes single words as ``name`` candidates (the scanner itself looks for
    ``name`` only in whole table cells).
    """
    lines = pl.Series("v", [text]).str.split("\n").explode()
    found = _candidates(_labelled("", lines), EXPORT_KINDS, whole_cells=False, words_as_names=True)
    result: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for kind, value in found.select("kind", "canonical").iter_rows():
        result[kind].add(value)
    return result


# --- Flattening tables -------------------------------------------------------------


def _leaves(
    series: pl.Series, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], pl.Series]]:
    """Leaf columns of a (possibly nested) column as text: structs unnested, lists exploded."""
    dtype = series.dtype
    if isinstance(dtype, pl.Struct):
        for field in series.struct.unnest().iter_columns():
            yield from _leaves(field, (*path, field.name))
    elif isinstance(dtype, pl.List | pl.Array):
        inner = series.list.explode() if isinstance(dtype, pl.List) else series.arr.explode()
        yield from _leaves(inner.drop_nulls(), path)
    elif dtype in (pl.Boolean, pl.Null) or isinstance(dtype, pl.Duration):
        return
    elif dtype == pl.Binary:
        texts = [v.decode("utf-8", "replace") for v in series.drop_nulls().to_list()]
        yield path, pl.Series(texts, dtype=pl.String)
    elif dtype == pl.Object:
        yield path, pl.Series([str(v) for v in series.drop_nulls().to_list()], dtype=pl.String)
    elif dtype.is_float() or isinstance(dtype, pl.Decimal):
        # An identifier is never fractional: only whole numbers (9994561235.0) are read.
        numbers = series.cast(pl.Float64).drop_nulls().unique()
        whole = numbers.filter(numbers.is_finite() & (numbers.abs() < 1e18))
        whole = whole.filter(whole == whole.floor())
        yield path, whole.cast(pl.Int64).cast(pl.String)
    else:
        yield path, series.cast(pl.String, strict=False).drop_nulls()


def _field_names(dtype: Any) -> Iterator[str]:
    if isinstance(dtype, pl.Struct):
        for field in dtype.fields:
            yield field.name
            yield from _field_names(field.dtype)
    elif isinstance(dtype, pl.List | pl.Array):
        yield from _field_names(dtype.inner)


def _json_leaves(value: Any, path: tuple[str, ...], out: dict[tuple[str, ...], list[str]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            out[(*path, str(key))]  # a key is a name, scanned like a column name
            _json_leaves(item, (*path, str(key)), out)
    elif isinstance(value, list):
        for item in value:
            _json_leaves(item, path, out)
    elif isinstance(value, str):
        out[path].append(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out[path].append(str(value))


# --- The scanner -------------------------------------------------------------------


def _finding_kind(kind: str, value: str) -> str:
    """The kind a hit is reported as: short all-digit local ids apart (see module doc)."""
    if kind == "local_patient_id" and value.isdigit() and len(value) < _SURE_DIGITS:
        return DIGITS_LOCAL_ID
    return kind


class _Session:
    """One scan: values waiting to be checked (checked in large batches, whatever
    file or table they came from) and what was found, by location.

    A location is a prefix (a file, or a file and table) and a path of column or
    field names. Names are checked like values when the findings are made, and a
    name that is itself an identifier is shown as ``<identifier>``.
    """

    def __init__(self, scanner: "Scanner", kinds: frozenset[str]) -> None:
        self.scanner = scanner
        self.kinds = kinds
        self.labels: list[tuple[str, tuple[str, ...]]] = []
        self._label_ids: dict[tuple[str, tuple[str, ...]], int] = {}
        self.names: dict[str, set[str]] = defaultdict(set)  # name -> prefixes it appears in
        self._pending: dict[bool, list[pl.DataFrame]] = {True: [], False: []}
        self._rows = {True: 0, False: 0}
        self._bytes = {True: 0, False: 0}
        self.hits: dict[tuple[int, str], set[str]] = defaultdict(set)
        self.unreadable: set[str] = set()
        # Files already read, by device and inode: a hard link (the warehouse's pinned
        # inputs) is the same bytes under another name, read once.
        self.files_read: set[tuple[int, int]] = set()
        # Values already checked and clean (the same person ids fill every file of an
        # export): not tokenised and hashed again. Up to _CLEAN_VALUES of each sort.
        self._clean: dict[bool, list[pl.DataFrame]] = {True: [], False: []}
        self._clean_rows = {True: 0, False: 0}

    def label(self, prefix: str, path: tuple[str, ...] = ()) -> int:
        key = (prefix, path)
        if key not in self._label_ids:
            self._label_ids[key] = len(self.labels)
            self.labels.append(key)
        return self._label_ids[key]

    def add_names(self, prefix: str, names: Iterable[str]) -> None:
        if self.kinds:
            for name in names:
                self.names[name].add(prefix)

    def add(self, prefix: str, path: tuple[str, ...], values: pl.Series, *, cells: bool) -> None:
        """Queue values: table cells (``cells``) or lines of free text."""
        if not self.kinds:
            return
        self.add_names(prefix, path)
        if cells:
            values = values.drop_nulls().unique()  # before the cast: far fewer to cast
        values = values.cast(pl.String).drop_nulls()
        if values.is_empty():
            return
        label = pl.repeat(self.label(prefix, path), len(values), dtype=pl.UInt32, eager=True)
        self._pending[cells].append(pl.DataFrame({"label": label, "v": values}))
        self._rows[cells] += len(values)
        self._bytes[cells] += int(values.str.len_bytes().sum() or 0)
        if self._rows[cells] >= _BATCH_VALUES or self._bytes[cells] >= _BATCH_BYTES:
            self.flush(cells)

    def flush(self, cells: bool | None = None) -> None:
        for which in (True, False) if cells is None else (cells,):
            pending, self._pending[which] = self._pending[which], []
            self._rows[which] = self._bytes[which] = 0
            if not pending:
                continue
            values = pl.concat(pending)
            if self._clean[which]:
                values = values.join(pl.concat(self._clean[which]), on="v", how="anti")
            for start in range(0, values.height, _BATCH_VALUES):
                batch = values.slice(start, _BATCH_VALUES)
                hits = self.scanner._hits(_candidates(batch, self.kinds, whole_cells=which))
                self.record(hits)
                if hits.is_empty() and self._clean_rows[which] < _CLEAN_VALUES:
                    clean = batch.select("v").unique()
                    self._clean[which].append(clean)
                    self._clean_rows[which] += clean.height

    def record(self, hits: pl.DataFrame) -> None:
        for label, kind, value, fingerprint in hits.select(
            "label", "kind", "canonical", "fingerprint"
        ).iter_rows():
            self.hits[(label, _finding_kind(kind, value))].add(fingerprint)

    def fingerprints(self) -> set[str]:
        return {fp for fps in self.hits.values() for fp in fps}

    def merge(self, other: "_Session") -> None:
        """Take over another (flushed) session's findings and names."""
        for (label, kind), fps in other.hits.items():
            self.hits[(self.label(*other.labels[label]), kind)] |= fps
        for name, prefixes in other.names.items():
            self.names[name] |= prefixes
        self.unreadable |= other.unreadable

    def findings(self) -> list[Finding]:
        self.flush()
        by_location: dict[tuple[str, str], set[str]] = defaultdict(set)
        hit_names: set[str] = set()
        if self.names:
            names = pl.Series(sorted(self.names), dtype=pl.String)
            frame = pl.DataFrame({"label": pl.int_range(len(names), eager=True), "v": names})
            hits = self.scanner._hits(_candidates(frame, self.kinds, whole_cells=True))
            for index, kind, value, fingerprint in hits.select(
                "label", "kind", "canonical", "fingerprint"
            ).iter_rows():
                name = names[index]
                hit_names.add(name)
                for prefix in self.names[name]:
                    where = (f"{prefix}#{_COLUMN_NAMES}", _finding_kind(kind, value))
                    by_location[where].add(fingerprint)
        for (label, kind), fps in self.hits.items():
            prefix, path = self.labels[label]
            shown = ".".join(_REDACTED if part in hit_names else part for part in path)
            by_location[(f"{prefix}#{shown}" if shown else prefix, kind)] |= fps
        found = [Finding(loc, kind, len(fps)) for (loc, kind), fps in by_location.items()]
        found += [Finding(loc, UNREADABLE, 1) for loc in self.unreadable]
        return sorted(found)


class Scanner:
    """Looks for fingerprinted identifiers in text, tables, files and folders.

    Args:
        fingerprints: kind -> fingerprints, as
            :func:`pseudonymise.fingerprints.read_fingerprints` returns.
        key: the HMAC key the fingerprints were made with
            (:func:`pseudonymise.fingerprints.fingerprint_key`).

    Every ``scan_*`` method returns findings sorted by location and kind; ``kinds``
    narrows what is looked for (default :data:`STORAGE_KINDS`; exports use
    :data:`EXPORT_KINDS`). Kinds without any fingerprint are not looked for.
    """

    def __init__(self, fingerprints: Mapping[str, Iterable[str]], key: bytes) -> None:
        kinds: list[str] = []
        values: list[str] = []
        for kind, fps in fingerprints.items():
            listed = list(fps)
            kinds += [kind] * len(listed)
            values += listed
        self._table = pl.DataFrame(
            {"kind": kinds, "fingerprint": values},
            schema={"kind": pl.String, "fingerprint": pl.String},
        ).unique()
        self._present = frozenset(self._table.get_column("kind").unique().to_list())
        self._key = key

    def _hits(self, candidates: pl.DataFrame) -> pl.DataFrame:
        """The candidates whose fingerprint is known: label, kind, canonical, fingerprint."""
        hashed = candidates.filter(pl.col("kind").is_in(list(self._present))).with_columns(
            fingerprint=pseudonymise_expr(
                self._key, fingerprint_messages(pl.col("kind"), pl.col("canonical"))
            )
        )
        return hashed.join(self._table, on=["kind", "fingerprint"], how="semi")

    def _session(self, kinds: Iterable[str]) -> _Session:
        return _Session(self, frozenset(kinds) & self._present)

    # -- public scanning methods

    def scan_text(
        self, text: str, location: str, kinds: Iterable[str] = STORAGE_KINDS
    ) -> list[Finding]:
        """Free text (a log, a message): tokens only; ``name`` is never looked for."""
        session = self._session(kinds)
        session.add(location, (), _lines(text), cells=False)
        return session.findings()

    def scan_frame(
        self, frame: pl.DataFrame, location: str, kinds: Iterable[str] = STORAGE_KINDS
    ) -> list[Finding]:
        """A table: every cell whole and the tokens in it; nested columns flattened.

        Findings are located ``<location>#<column>`` (``column.field`` for a field
        of a struct column).
        """
        session = self._session(kinds)
        _frame_into(frame, location, session)
        return session.findings()

    def scan_file(self, path: Path, kinds: Iterable[str] = STORAGE_KINDS) -> list[Finding]:
        """One file, by what it is: SQLite, DuckDB and Parquet by their magic bytes,
        ``.csv``, ``.jsonl``/``.ndjson`` and ``.json`` by suffix (each read as a
        table), other text as free text, anything else as the printable runs in
        its bytes (like ``strings``)."""
        session = self._session(kinds)
        _file_into(Path(path), session)
        return session.findings()

    def scan_duckdb(self, path: Path, kinds: Iterable[str] = STORAGE_KINDS) -> list[Finding]:
        """Every column of every table in a DuckDB file (opened read-only, then closed).

        Findings are located ``<path>#<schema>.<table>#<column>``.
        """
        session = self._session(kinds)
        _guarded(Path(path), session, lambda: _duckdb_into(Path(path), session))
        return session.findings()

    def scan_sqlite(self, path: Path, kinds: Iterable[str] = STORAGE_KINDS) -> list[Finding]:
        """Every column of every table in a SQLite file (Dagster's run, event and
        schedule storage), read-only; then the file's raw bytes, which keep deleted
        rows until the file is vacuumed, for anything the tables did not show.

        Findings are located ``<path>#<table>#<column>``, and
        ``<path> (raw bytes: ...)`` for what only the raw bytes held.
        """
        session = self._session(kinds)
        _guarded(Path(path), session, lambda: _sqlite_into(Path(path), session))
        return session.findings()

    def scan_tree(
        self, root: Path, kinds: Iterable[str], skip: Iterable[Path] = ()
    ) -> list[Finding]:
        """Every file below ``root`` (a symbolic link at ``root`` is followed; links
        below it to folders are not), except the paths in ``skip`` and below them."""
        session = self._session(kinds)
        _tree_into(Path(root), session, skip)
        return session.findings()


# --- Reading each kind of file into a session --------------------------------------


def _lines(text: str) -> pl.Series:
    return pl.Series("v", [text]).str.split("\n").explode()


def _frame_into(frame: pl.DataFrame, prefix: str, session: _Session) -> None:
    session.add_names(prefix, (f for dtype in frame.dtypes for f in _field_names(dtype)))
    for column in frame.iter_columns():
        for path, leaf in _leaves(column, (column.name,)):
            session.add(prefix, path, leaf, cells=True)


def _tree_into(root: Path, session: _Session, skip: Iterable[Path] = ()) -> None:
    skipped = {Path(p).resolve() for p in skip}
    root = root.resolve()
    if root in skipped:
        return
    if root.is_file():
        _file_into(root, session)
        return
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if (here / d).resolve() not in skipped)
        for name in sorted(files):
            path = here / name
            if path.resolve() in skipped or not path.is_file():
                continue
            _file_into(path, session)


def _file_into(path: Path, session: _Session) -> None:
    if not session.kinds:
        return
    try:
        status = path.stat()
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError:
        session.unreadable.add(str(path))
        return
    if (status.st_dev, status.st_ino) in session.files_read:
        return
    session.files_read.add((status.st_dev, status.st_ino))
    suffix = path.suffix.lower()
    if head.startswith(_SQLITE_MAGIC):
        _guarded(path, session, lambda: _sqlite_into(path, session))
    elif head[_DUCKDB_MAGIC_OFFSET : _DUCKDB_MAGIC_OFFSET + 4] == _DUCKDB_MAGIC:
        _guarded(path, session, lambda: _duckdb_into(path, session))
    elif head.startswith(_PARQUET_MAGIC) or suffix == ".parquet":
        _guarded(path, session, lambda: _parquet_into(path, session))
    elif head.startswith(_GZIP_MAGIC):
        _guarded(path, session, lambda: _text_into(path, session, gz=True))
    elif suffix == ".csv":
        _or_text(path, session, _csv_into)
    elif suffix in (".jsonl", ".ndjson"):
        _or_text(path, session, _jsonl_into)
    elif suffix == ".json":
        _or_text(path, session, _json_into)
    elif suffix in _TEXT_SUFFIXES or b"\x00" not in head:
        _guarded(path, session, lambda: _text_into(path, session))
    else:
        _guarded(path, session, lambda: _strings_into(path, session))


def _guarded(path: Path, session: _Session, scan: Callable[[], None]) -> None:
    """Run a structured scan; if the file cannot be parsed, scan its raw bytes and
    report it as unreadable (the byte scan misses compressed data)."""
    try:
        scan()
    except _PARSE_ERRORS:
        session.unreadable.add(str(path))
        with contextlib.suppress(OSError):
            _strings_into(path, session)


def _or_text(path: Path, session: _Session, scan: Callable[[Path, _Session], None]) -> None:
    """Scan a text format as a table; if it does not parse, scan it as free text."""
    attempt = _Session(session.scanner, session.kinds)
    try:
        scan(path, attempt)
        attempt.flush()
    except _PARSE_ERRORS:
        _guarded(path, session, lambda: _text_into(path, session))
        return
    session.merge(attempt)


def _text_into(path: Path, session: _Session, *, gz: bool = False) -> None:
    opener: Callable[..., Any] = gzip.open if gz else open
    with opener(path, "rb") as handle:
        while True:
            lines = handle.readlines(_TEXT_BLOCK_BYTES)
            if not lines:
                break
            session.add(str(path), (), _lines(_decode(b"".join(lines))), cells=False)


def _strings_into(path: Path, session: _Session, location: str | None = None) -> None:
    """The printable runs in a binary file (like ``strings``), as free text."""
    where = str(path) if location is None else location
    with path.open("rb") as handle:
        carry = b""
        while True:
            block = handle.read(_TEXT_BLOCK_BYTES)
            data = carry + block
            # a run that touches the end of a block is kept for the next one
            cut = (len(data.rstrip(_PRINTABLE_BYTES)) or len(data)) if block else len(data)
            runs = _PRINTABLE.findall(data, 0, cut)
            carry = data[cut:]
            if runs:
                values = pl.Series("v", [r.decode("utf-8", "replace") for r in runs])
                session.add(where, (), values, cells=False)
            if not block:
                break


def _parquet_into(path: Path, session: _Session) -> None:
    schema = pl.read_parquet_schema(path)
    prefix = str(path)
    session.add_names(prefix, (f for dtype in schema.values() for f in _field_names(dtype)))
    for name in schema:
        column = pl.scan_parquet(path).select(pl.col(name)).collect().to_series()
        for leaf_path, leaf in _leaves(column, (name,)):
            session.add(prefix, leaf_path, leaf, cells=True)


def _csv_into(path: Path, session: _Session) -> None:
    frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy", truncate_ragged_lines=True)
    _frame_into(frame, str(path), session)


def _jsonl_into(path: Path, session: _Session) -> None:
    try:
        frame = pl.read_ndjson(path, infer_schema_length=None)
    except pl.exceptions.PolarsError:
        leaves: dict[tuple[str, ...], list[str]] = defaultdict(list)
        with path.open("rb") as handle:
            for line in handle:
                if line.strip():
                    _json_leaves(json.loads(line), (), leaves)
        _json_table_into(str(path), leaves, session)
        return
    _frame_into(frame, str(path), session)


def _json_into(path: Path, session: _Session) -> None:
    leaves: dict[tuple[str, ...], list[str]] = defaultdict(list)
    with path.open("rb") as handle:
        _json_leaves(json.load(handle), (), leaves)
    _json_table_into(str(path), leaves, session)


def _json_table_into(
    prefix: str, leaves: dict[tuple[str, ...], list[str]], session: _Session
) -> None:
    session.add_names(prefix, (part for path in leaves for part in path))
    for path, values in leaves.items():
        session.add(prefix, path, pl.Series(values, dtype=pl.String), cells=True)


def _duckdb_into(path: Path, session: _Session) -> None:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' "
            "ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            described = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_catalog = current_database() AND table_schema = ? "
                "AND table_name = ? ORDER BY ordinal_position",
                [schema, table],
            ).fetchall()
            prefix = f"{path}#{schema}.{table}"
            session.add_names(prefix, (schema, table))
            for name, dtype in described:
                if dtype == "BOOLEAN":
                    continue
                query = (
                    f"SELECT DISTINCT {_sql_ident(name)} "
                    f"FROM {_sql_ident(schema)}.{_sql_ident(table)}"
                )
                for record_batch in con.sql(query).to_arrow_reader(_BATCH_VALUES):
                    frame = pl.from_arrow(record_batch)
                    assert isinstance(frame, pl.DataFrame)
                    column = frame.to_series()
                    session.add_names(prefix, _field_names(column.dtype))
                    for leaf_path, leaf in _leaves(column, (str(name),)):
                        session.add(prefix, leaf_path, leaf, cells=True)
    finally:
        con.close()


def _sqlite_into(path: Path, session: _Session) -> None:
    tables_session = _Session(session.scanner, session.kinds)
    con = _sqlite_connect(path)
    try:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            ).fetchall()
        ]
        for table in tables:
            prefix = f"{path}#{table}"
            tables_session.add_names(prefix, (table,))
            columns = con.execute(f"PRAGMA table_info({_sql_ident(table)})").fetchall()
            for column in (row[1] for row in columns):
                cursor = con.execute(
                    f"SELECT {_sql_ident(column)} FROM {_sql_ident(table)} "
                    f"WHERE {_sql_ident(column)} IS NOT NULL"
                )
                while rows := cursor.fetchmany(_SQLITE_ROWS):
                    values = pl.Series([_sqlite_text(row[0]) for row in rows], dtype=pl.String)
                    tables_session.add(prefix, (str(column),), values, cells=True)
    finally:
        con.close()
    tables_session.flush()
    # Deleted rows stay in a SQLite file's free pages until it is vacuumed.
    raw = _Session(session.scanner, session.kinds)
    _strings_into(path, raw, f"{path} (raw bytes: deleted or unreadable rows)")
    raw.flush()
    seen = tables_session.fingerprints()
    for key, fps in list(raw.hits.items()):
        raw.hits[key] = fps - seen
        if not raw.hits[key]:
            del raw.hits[key]
    session.merge(tables_session)
    session.merge(raw)


def database_label(url: str) -> str:
    """How a database is named in findings: its URL without the password."""
    return sa.make_url(url).render_as_string(hide_password=True)


def _database_into(url: str, session: _Session) -> None:
    """Every column of every table of a database SQLAlchemy reaches by ``url`` (the
    PostgreSQL tables of Dagster's run, event and schedule storage), in a read-only
    transaction. Findings are located ``<url without password>#<table>#<column>``."""
    label = database_label(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as con:
            if con.dialect.name == "postgresql":
                con.execute(sa.text("SET TRANSACTION READ ONLY"))
            inspector = sa.inspect(con)
            for table in sorted(inspector.get_table_names()):
                prefix = f"{label}#{table}"
                session.add_names(prefix, (table,))
                for described in inspector.get_columns(table):
                    name = str(described["name"])
                    column: sa.ColumnClause[Any] = sa.column(name)
                    query = (
                        sa.select(column).select_from(sa.table(table)).where(column.is_not(None))
                    )
                    result = con.execution_options(stream_results=True).execute(query)
                    while rows := result.fetchmany(_SQLITE_ROWS):
                        values = pl.Series([_sqlite_text(row[0]) for row in rows], dtype=pl.String)
                        session.add(prefix, (name,), values, cells=True)
    except sa.exc.SQLAlchemyError:
        # Unreachable, or refused: say the place could not be checked (never the error,
        # which may quote the connection settings).
        session.unreadable.add(label)
    finally:
        engine.dispose()


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("windows-1252", "replace")


def _sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    try:
        con = sqlite3.connect(f"{uri}?mode=ro", uri=True)
        con.execute("SELECT count(*) FROM sqlite_master").fetchall()
        return con
    except sqlite3.Error:
        # a database in WAL mode whose -shm cannot be created: read it as a snapshot
        return sqlite3.connect(f"{uri}?immutable=1", uri=True)


def _sqlite_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# --- The whole audit ---------------------------------------------------------------


def audit(
    export_dir: Path | None,
    warehouse: Path | None,
    dagster_home: Path | None,
    restricted_dir: Path | None,
    fingerprint_paths: Sequence[Path],
    key: bytes,
    databases: Sequence[str] = (),
) -> list[Finding]:
    """Look for the fingerprinted identifiers everywhere the pipeline's data rests.

    * ``export_dir``: every file, every kind including ``date_of_birth`` (but for the
      manifests, which hold the run's own dates); and the earlier runs' exports kept
      beside it (``delivery.writer.runs_dir``);
    * ``warehouse``: the DuckDB file (every table), files beside it whose names
      start with its name (its ``.wal``), and the ``pseudonymised/`` folder of
      Parquet beside it;
    * ``dagster_home``: everything under it (SQLite run, event and schedule
      storage, compute logs, IO manager outputs);
    * ``restricted_dir/quarantine``;
    * ``databases``: SQLAlchemy URLs of the Dagster instance's database storage
      (PostgreSQL), every table; one that cannot be reached is reported unreadable.

    Outside exports, ``date_of_birth`` is not looked for. Missing locations are
    skipped; the fingerprint files are never scanned. An empty list means nothing
    was found; a finding of kind ``unreadable`` means a file could not be checked
    properly.

    Raises:
        ValueError: the fingerprint files hold no fingerprint at all (an audit
            against nothing would pass whatever the data held).
    """
    fingerprints = read_fingerprints(fingerprint_paths)
    if not any(fingerprints.values()):
        raise ValueError(
            "no fingerprints to audit against: run the pseudonymisation step first "
            f"(fingerprint files given: {len(fingerprint_paths)})"
        )
    scanner = Scanner(fingerprints, key)
    skip = [Path(p) for p in fingerprint_paths]
    exports = scanner._session(EXPORT_KINDS)
    storage = scanner._session(STORAGE_KINDS)
    if export_dir is not None:
        export_dir = Path(export_dir)
        earlier = runs_dir(export_dir)
        # A manifest records the run's own dates (the period, when it ran): with a whole
        # population's fingerprints every date matches someone's birthday, so manifests
        # are searched for every identifier but dates of birth.
        manifests = [
            m
            for folder in (export_dir, earlier)
            if folder.exists()
            for m in folder.resolve().rglob(MANIFEST_NAME)
        ]
        for manifest in manifests:
            _tree_into(manifest, storage, skip)
        if export_dir.exists():
            _tree_into(export_dir, exports, [*skip, *manifests])
        if earlier.exists():
            current = [export_dir.resolve()] if export_dir.exists() else []
            _tree_into(earlier, exports, [*skip, *current, *manifests])
    if warehouse is not None:
        warehouse = Path(warehouse)
        if warehouse.exists():
            _tree_into(warehouse, storage, skip)
        if warehouse.parent.exists():
            for sibling in sorted(warehouse.parent.glob(f"{glob.escape(warehouse.name)}?*")):
                _tree_into(sibling, storage, skip)
        beside = warehouse.parent / "pseudonymised"
        if beside.exists():
            _tree_into(beside, storage, skip)
    if dagster_home is not None and Path(dagster_home).exists():
        _tree_into(Path(dagster_home), storage, skip)
    if restricted_dir is not None:
        quarantine = Path(restricted_dir) / "quarantine"
        if quarantine.exists():
            _tree_into(quarantine, storage, skip)
    for url in databases:
        _database_into(url, storage)
    return sorted(exports.findings() + storage.findings())
