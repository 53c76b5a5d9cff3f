"""Leak audit: find raw identifiers wherever the pipeline's data rests, without raw data.

The pseudonymisation step leaves keyed fingerprints of every raw identifier in the
restricted zone (:mod:`pseudonymise.fingerprints`). This module cuts candidate
tokens out of everything the pipeline wrote - exports, the DuckDB warehouse and
the Parquet beside it, Dagster's SQLite storage and compute logs, the quarantine -
puts each into the same canonical form, hashes it under the fingerprint key and
looks it up. A hit is a raw identifier at rest where it must not be. Nothing here
reads the landing files, and a :class:`Finding` names a place and a kind, never a
value.

What counts as a candidate (:func:`candidate_tokens`):

* ``nhs_number``: ten digits, or 3-3-4 digits split by single spaces or hyphens,
  not part of a longer run of digits or letters (so not inside a hex pseudonym);
* ``postcode``: a full postcode, any case, with or without the space;
* ``local_patient_id``: runs of letters and digits, alone and joined by
  ``-``, ``/``, ``.`` or ``_``, four characters or more;
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

from pseudonymise.fingerprints import KINDS, canonical, fingerprint_messages, read_fingerprints
from pseudonymise.hashing import pseudonymise_expr
from pseudonymise.identifiers import normalise_name

__all__ = [
    "EXPORT_KINDS",
    "STORAGE_KINDS",
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

# --- Candidate tokens (Rust regex syntax, run by polars) ---------------------------

_SEP = r"[\s\-\x{2010}-\x{2015}\x{2212}]"
_NHS = rf"\b[0-9]{{3}}{_SEP}?[0-9]{{3}}{_SEP}?[0-9]{{4}}\b"
_POSTCODE = r"\b[A-Za-z]{1,2}[0-9][A-Za-z0-9]?[ \t]{0,2}[0-9][A-Za-z]{2}\b"
_DATE = r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[^0-9]|$)"
_ALNUM = r"[A-Za-z0-9]+"
_COMPOUND = r"[A-Za-z0-9]+(?:[\-/._][A-Za-z0-9]+)+"
_WORD = r"\p{L}+(?:['\x{2019}\-]\p{L}+)*"
# Words separated only by a short run of spaces or punctuation ("Mark Cook",
# "COOK, Mark", "\"Mark\",\"Cook\""): adjacent words are taken from within a chain.
_CHAIN = rf"{_WORD}(?:[^\p{{L}}\p{{N}}]{{1,4}}{_WORD})*"
_ISO_DATE_CHARS = 10
# Whole cells longer than this are not identifiers (but are searched for tokens).
_MAX_CELL_CHARS = 100
_BATCH_VALUES = 500_000
_TEXT_BLOCK_BYTES = 16 << 20
_PRINTABLE = re.compile(rb"[\t\x20-\x7e\x80-\xff]{4,}")
_PRINTABLE_TAIL = re.compile(rb"[\t\x20-\x7e\x80-\xff]*\Z")
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
        location: a file path, followed for tables by ``#column`` or
            ``#schema.table.column`` (a column or table whose own name is an
            identifier is shown as ``<identifier>``); never a value.
        kind: one of :data:`pseudonymise.fingerprints.KINDS`, or ``unreadable``.
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


def _rule(tokens: pl.LazyFrame, kind: str) -> pl.LazyFrame:
    """(label, kind, canonical) of the distinct strings in column ``t``."""
    return (
        tokens.drop_nulls()
        .unique()
        .select(
            "label",
            pl.lit(kind).alias("kind"),
            canonical(kind, pl.col("t")).alias("canonical"),
        )
        .drop_nulls()
    )


def _extracted(values: pl.LazyFrame, tokens: pl.Expr) -> pl.LazyFrame:
    return values.select("label", tokens.alias("t")).explode("t")


def _name_plans(
    values: pl.LazyFrame, kinds: frozenset[str], *, words_as_names: bool
) -> list[pl.LazyFrame]:
    chains = _extracted(values, pl.col("v").str.extract_all(_CHAIN)).drop_nulls().unique()
    words = chains.select(
        "label", w=pl.col("t").str.extract_all(_WORD).list.eval(normalise_name(pl.element()))
    )
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
        plans.append(_rule(joined, "full_name"))
    if words_as_names and "name" in kinds:
        plans.append(_rule(words.select("label", t=pl.col("w")).explode("t"), "name"))
    return plans


def _candidate_plan(
    values: pl.DataFrame,
    kinds: frozenset[str],
    *,
    whole_cells: bool,
    words_as_names: bool = False,
) -> pl.LazyFrame:
    """Distinct (label, kind, canonical) candidates in labelled text values.

    ``values`` has columns ``label`` (where a value is) and ``v`` (a line of free
    text, or a table cell). With ``whole_cells`` each value is also a candidate of
    every kind in ``kinds`` (the only way ``name`` is found unless
    ``words_as_names``).
    """
    frame = values.lazy().select(pl.col("label"), pl.col("v").cast(pl.String)).drop_nulls()
    frame = frame.unique().cache()
    v = pl.col("v")
    spaced = v.str.replace_all("_", " ", literal=True)
    plans: list[pl.LazyFrame] = []
    if "nhs_number" in kinds:
        plans.append(_rule(_extracted(frame, spaced.str.extract_all(_NHS)), "nhs_number"))
    if "postcode" in kinds:
        plans.append(_rule(_extracted(frame, spaced.str.extract_all(_POSTCODE)), "postcode"))
    if "date_of_birth" in kinds:
        dates = _extracted(frame, spaced.str.extract_all(_DATE)).select(
            "label", t=pl.col("t").str.slice(0, _ISO_DATE_CHARS)
        )
        plans.append(_rule(dates, "date_of_birth"))
    if "local_patient_id" in kinds:
        tokens = pl.concat(
            [
                _extracted(frame, v.str.extract_all(_ALNUM)),
                _extracted(frame, v.str.extract_all(_COMPOUND)),
            ]
        )
        plans.append(_rule(tokens, "local_patient_id"))
    if {"name", "full_name"} & kinds:
        plans.extend(_name_plans(frame, kinds, words_as_names=words_as_names))
    if whole_cells:
        cells = frame.filter(v.str.len_chars() <= _MAX_CELL_CHARS).select("label", t=v)
        plans.extend(_rule(cells, kind) for kind in KINDS if kind in kinds)
    if not plans:
        return pl.LazyFrame(schema=_CANDIDATE_SCHEMA)
    return pl.concat(plans).unique()


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
    found = _candidate_plan(
        _labelled("", lines), EXPORT_KINDS, whole_cells=False, words_as_names=True
    ).collect()
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
    elif dtype == pl.Boolean or dtype == pl.Null:
        return
    elif dtype == pl.Binary:
        texts = [v.decode("utf-8", "replace") for v in series.drop_nulls().to_list()]
        yield path, pl.Series(texts, dtype=pl.String)
    elif dtype == pl.Object:
        yield path, pl.Series([str(v) for v in series.drop_nulls().to_list()], dtype=pl.String)
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


class _Tally:
    """Distinct fingerprints found, by (location, kind)."""

    def __init__(self) -> None:
        self.hits: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.unreadable: set[str] = set()

    def add(self, hits: pl.DataFrame) -> None:
        """Record hits (columns label, kind, fingerprint); the label is the location."""
        for label, kind, fingerprint in hits.select("label", "kind", "fingerprint").iter_rows():
            self.hits[(label, kind)].add(fingerprint)

    def merge(self, other: "_Tally") -> None:
        for where, fps in other.hits.items():
            self.hits[where] |= fps
        self.unreadable |= other.unreadable

    def findings(self) -> list[Finding]:
        found = [Finding(loc, kind, len(fps)) for (loc, kind), fps in self.hits.items()]
        found += [Finding(loc, UNREADABLE, 1) for loc in self.unreadable]
        return sorted(found)


ColumnBatches = Callable[[], Iterable[pl.Series]]


class Scanner:
    """Looks for fingerprinted identifiers in text, tables, files and folders.

    Args:
        fingerprints: kind -> fingerprints, as :func:`pseudonymise.fingerprints.read_fingerprints`
            returns.
        key: the HMAC key the fingerprints were made with
            (:func:`pseudonymise.fingerprints.fingerprint_key`).

    Every ``scan_*`` method returns findings sorted by location and kind; ``kinds``
    narrows what is looked for (default :data:`STORAGE_KINDS`; exports use
    :data:`EXPORT_KINDS`).
    """

    def __init__(self, fingerprints: Mapping[str, Iterable[str]], key: bytes) -> None:
        kinds: list[str] = []
        values: list[str] = []
        for kind, fps in fingerprints.items():
            fps = list(fps)
            kinds += [kind] * len(fps)
            values += fps
        self._table = pl.DataFrame(
            {"kind": kinds, "fingerprint": values},
            schema={"kind": pl.String, "fingerprint": pl.String},
        ).unique()
        self._present = frozenset(self._table.get_column("kind").unique().to_list())
        self._key = key

    # -- matching

    def _hits(self, candidates: pl.LazyFrame) -> pl.DataFrame:
        """The candidates whose fingerprint is known: label, kind, canonical, fingerprint."""
        hashed = candidates.filter(pl.col("kind").is_in(list(self._present))).with_columns(
            fingerprint=pseudonymise_expr(
                self._key, fingerprint_messages(pl.col("kind"), pl.col("canonical"))
            )
        )
        return hashed.join(self._table.lazy(), on=["kind", "fingerprint"], how="semi").collect()

    def _active(self, kinds: Iterable[str]) -> frozenset[str]:
        return frozenset(kinds) & self._present

    def _scan_labelled(
        self, values: pl.DataFrame, kinds: frozenset[str], tally: _Tally, *, whole_cells: bool
    ) -> None:
        """Scan a frame of (label, v) in batches; hits are recorded under their label."""
        if not kinds:
            return
        for start in range(0, values.height, _BATCH_VALUES):
            batch = values.slice(start, _BATCH_VALUES)
            tally.add(self._hits(_candidate_plan(batch, kinds, whole_cells=whole_cells)))

    def _name_hits(self, names: Iterable[str], kinds: frozenset[str]) -> set[str]:
        """Which of these column, field or table names are themselves identifiers."""
        distinct = pl.Series(sorted(set(names)), dtype=pl.String)
        if distinct.is_empty():
            return set()
        frame = pl.DataFrame({"label": distinct, "v": distinct})
        hits = self._hits(_candidate_plan(frame, kinds, whole_cells=True))
        return set(hits.get_column("label").to_list())

    def _scan_table(
        self,
        prefix: str,
        columns: Sequence[tuple[tuple[str, ...], ColumnBatches]],
        extra_names: Iterable[str],
        kinds: frozenset[str],
        tally: _Tally,
    ) -> None:
        """Scan named columns; ``prefix`` is the file (and table) part of the location.

        Each column yields batches of values (possibly nested); their names, and
        ``extra_names`` (struct fields, table names), are checked first so that a
        name that is itself an identifier is never written into a finding.
        """
        if not kinds:
            return
        names = [part for path, _ in columns for part in path] + list(extra_names)
        hit_names = self._name_hits(names, kinds)
        if hit_names:
            shown = pl.Series(sorted(hit_names), dtype=pl.String)
            frame = _labelled(f"{prefix}#{_COLUMN_NAMES}", shown)
            self._scan_labelled(frame, kinds, tally, whole_cells=True)

        def label(path: tuple[str, ...]) -> str:
            shown = ".".join(_REDACTED if part in hit_names else part for part in path)
            return f"{prefix}#{shown}" if shown else prefix

        pending: list[pl.DataFrame] = []
        rows = 0
        for path, batches in columns:
            for batch in batches():
                for leaf_path, leaf in _leaves(batch, path):
                    distinct = leaf.unique()
                    pending.append(_labelled(label(leaf_path), distinct))
                    rows += len(distinct)
                    if rows >= _BATCH_VALUES:
                        self._scan_labelled(pl.concat(pending), kinds, tally, whole_cells=True)
                        pending, rows = [], 0
        if pending:
            self._scan_labelled(pl.concat(pending), kinds, tally, whole_cells=True)

    def _scan_lines(
        self, lines: pl.Series, location: str, kinds: frozenset[str], tally: _Tally
    ) -> None:
        self._scan_labelled(_labelled(location, lines), kinds, tally, whole_cells=False)

    # -- public scanning methods

    def scan_text(
        self, text: str, location: str, kinds: Iterable[str] = STORAGE_KINDS
    ) -> list[Finding]:
        """Free text (a log, a message): tokens only; ``name`` is never looked for."""
        tally = _Tally()
        lines = pl.Series("v", [text]).str.split("\n").explode()
        self._scan_lines(lines, location, self._active(kinds), tally)
        return tally.findings()

    def scan_frame(
        self, frame: pl.DataFrame, location: str, kinds: Iterable[str] = STORAGE_KINDS
    ) -> list[Finding]:
        """A table: every cell whole and the tokens in it; nested columns flattened."""
        tally = _Tally()
        self._frame_into(frame, location, self._active(kinds), tally)
        return tally.findings()

    def _frame_into(
        self, frame: pl.DataFrame, prefix: str, kinds: frozenset[str], tally: _Tally
    ) -> None:
        columns = [((name,), _once(frame.get_column(name))) for name in frame.columns]
        fields = [f for dtype in frame.dtypes for f in _field_names(dtype)]
        self._scan_table(prefix, columns, fields, kinds, tally)

    def scan_file(self, path: Path, kinds: Iterable[str] = STORAGE_KINDS) -> list[Finding]:
        """One file, by what it is: SQLite, DuckDB and Parquet by their magic bytes,
        ``.csv``, ``.jsonl``/``.ndjson`` and ``.json`` by suffix, other text as
        free text, anything else as the printable strings in its bytes."""
        tally = _Tally()
        self._file_into(Path(path), self._active(kinds), tally)
        return tally.findings()

    def scan_duckdb(self, path: Path, kinds: Iterable[str] = STORAGE_KINDS) -> list[Finding]:
        """Every column of every table in a DuckDB file (opened read-only, then closed)."""
        tally = _Tally()
        active = self._active(kinds)
        self._guarded(
            Path(path), active, tally, lambda: self._duckdb_into(Path(path), active, tally)
        )
        return tally.findings()

    def scan_sqlite(self, path: Path, kinds: Iterable[str] = STORAGE_KINDS) -> list[Finding]:
        """Every column of every table in a SQLite file (Dagster's run, event and
        schedule storage), read-only; then the file's raw bytes, which still hold
        deleted rows, for anything the tables did not show."""
        tally = _Tally()
        active = self._active(kinds)
        self._guarded(
            Path(path), active, tally, lambda: self._sqlite_into(Path(path), active, tally)
        )
        return tally.findings()

    def scan_tree(
        self,
        root: Path,
        kinds: Iterable[str],
        skip: Iterable[Path] = (),
    ) -> list[Finding]:
        """Every file below ``root`` (a symbolic link at ``root`` is followed; links
        below it to folders are not), except the paths in ``skip`` and below them."""
        tally = _Tally()
        self._tree_into(Path(root), self._active(kinds), tally, skip)
        return tally.findings()

    # -- dispatch

    def _tree_into(
        self, root: Path, kinds: frozenset[str], tally: _Tally, skip: Iterable[Path] = ()
    ) -> None:
        skipped = {Path(p).resolve() for p in skip}
        root = root.resolve()
        if root.is_file():
            self._file_into(root, kinds, tally)
            return
        for folder, dirs, files in os.walk(root):
            here = Path(folder)
            dirs[:] = sorted(d for d in dirs if (here / d).resolve() not in skipped)
            for name in sorted(files):
                path = here / name
                if path.resolve() in skipped or not path.is_file():
                    continue
                self._file_into(path, kinds, tally)

    def _file_into(self, path: Path, kinds: frozenset[str], tally: _Tally) -> None:
        if not kinds:
            return
        try:
            with path.open("rb") as handle:
                head = handle.read(_SNIFF_BYTES)
        except OSError:
            tally.unreadable.add(str(path))
            return
        suffix = path.suffix.lower()
        if head.startswith(_SQLITE_MAGIC):
            self._guarded(path, kinds, tally, lambda: self._sqlite_into(path, kinds, tally))
        elif head[_DUCKDB_MAGIC_OFFSET : _DUCKDB_MAGIC_OFFSET + 4] == _DUCKDB_MAGIC:
            self._guarded(path, kinds, tally, lambda: self._duckdb_into(path, kinds, tally))
        elif head.startswith(_PARQUET_MAGIC) or suffix == ".parquet":
            self._guarded(path, kinds, tally, lambda: self._parquet_into(path, kinds, tally))
        elif head.startswith(_GZIP_MAGIC):
            self._guarded(path, kinds, tally, lambda: self._text_into(path, kinds, tally, gz=True))
        elif suffix == ".csv":
            self._or_text(path, kinds, tally, lambda t: self._csv_into(path, kinds, t))
        elif suffix in (".jsonl", ".ndjson"):
            self._or_text(path, kinds, tally, lambda t: self._jsonl_into(path, kinds, t))
        elif suffix == ".json":
            self._or_text(path, kinds, tally, lambda t: self._json_into(path, kinds, t))
        elif suffix in _TEXT_SUFFIXES or b"\x00" not in head:
            self._text_into(path, kinds, tally)
        else:
            self._strings_into(path, kinds, tally)

    def _guarded(
        self, path: Path, kinds: frozenset[str], tally: _Tally, scan: Callable[[], None]
    ) -> None:
        """Run a structured scan; if the file cannot be parsed, scan its raw bytes
        and report it as unreadable (the byte scan misses compressed data)."""
        try:
            scan()
        except _PARSE_ERRORS:
            tally.unreadable.add(str(path))
            with contextlib.suppress(OSError):
                self._strings_into(path, kinds, tally)

    def _or_text(
        self,
        path: Path,
        kinds: frozenset[str],
        tally: _Tally,
        scan: Callable[[_Tally], None],
    ) -> None:
        """Scan a text format as a table; if it does not parse, scan it as free text."""
        attempt = _Tally()
        try:
            scan(attempt)
        except _PARSE_ERRORS:
            self._guarded(path, kinds, tally, lambda: self._text_into(path, kinds, tally))
            return
        tally.merge(attempt)

    # -- formats

    def _text_into(self, path: Path, kinds: frozenset[str], tally: _Tally, *, gz: bool = False):
        opener = gzip.open if gz else open
        with opener(path, "rb") as handle:
            while True:
                lines = handle.readlines(_TEXT_BLOCK_BYTES)
                if not lines:
                    break
                text = _decode(b"".join(lines))
                values = pl.Series("v", [text]).str.split("\n").explode()
                self._scan_lines(values, str(path), kinds, tally)

    def _strings_into(self, path: Path, kinds: frozenset[str], tally: _Tally) -> None:
        """The printable runs in a binary file (like ``strings``), as free text."""
        with path.open("rb") as handle:
            carry = b""
            while True:
                block = handle.read(_TEXT_BLOCK_BYTES)
                data = carry + block
                if not block:
                    runs = _PRINTABLE.findall(data)
                    carry = b""
                else:
                    # keep a run that touches the end of the block for the next one
                    tail = _PRINTABLE_TAIL.search(data)
                    cut = tail.start() if tail and tail.start() > 0 else len(data)
                    runs = _PRINTABLE.findall(data, 0, cut)
                    carry = data[cut:]
                if runs:
                    values = pl.Series("v", [r.decode("utf-8", "replace") for r in runs])
                    self._scan_lines(values, str(path), kinds, tally)
                if not block:
                    break

    def _parquet_into(self, path: Path, kinds: frozenset[str], tally: _Tally) -> None:
        schema = pl.read_parquet_schema(path)

        def column(name: str) -> ColumnBatches:
            return lambda: [pl.scan_parquet(path).select(pl.col(name)).collect().to_series()]

        columns = [((name,), column(name)) for name in schema]
        fields = [f for dtype in schema.values() for f in _field_names(dtype)]
        self._scan_table(str(path), columns, fields, kinds, tally)

    def _csv_into(self, path: Path, kinds: frozenset[str], tally: _Tally) -> None:
        frame = pl.read_csv(
            path,
            infer_schema=False,
            encoding="utf8-lossy",
            truncate_ragged_lines=True,
        )
        self._frame_into(frame, str(path), kinds, tally)

    def _jsonl_into(self, path: Path, kinds: frozenset[str], tally: _Tally) -> None:
        try:
            frame = pl.read_ndjson(path, infer_schema_length=None)
        except pl.exceptions.PolarsError:
            out: dict[tuple[str, ...], list[str]] = defaultdict(list)
            with path.open("rb") as handle:
                for line in handle:
                    if line.strip():
                        _json_leaves(json.loads(line), (), out)
            self._json_table_into(str(path), out, kinds, tally)
            return
        self._frame_into(frame, str(path), kinds, tally)

    def _json_into(self, path: Path, kinds: frozenset[str], tally: _Tally) -> None:
        out: dict[tuple[str, ...], list[str]] = defaultdict(list)
        with path.open("rb") as handle:
            _json_leaves(json.load(handle), (), out)
        self._json_table_into(str(path), out, kinds, tally)

    def _json_table_into(
        self,
        prefix: str,
        leaves: dict[tuple[str, ...], list[str]],
        kinds: frozenset[str],
        tally: _Tally,
    ) -> None:
        columns = [
            (path, _once(pl.Series(values, dtype=pl.String)))
            for path, values in leaves.items()
            if values
        ]
        names = [part for path in leaves for part in path]
        self._scan_table(prefix, columns, names, kinds, tally)

    def _duckdb_into(self, path: Path, kinds: frozenset[str], tally: _Tally) -> None:
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
                wanted = [name for name, dtype in described if dtype != "BOOLEAN"]
                columns = [
                    ((str(name),), _duckdb_column(con, schema, table, name)) for name in wanted
                ]
                self._scan_table(
                    f"{path}#{schema}.{table}",
                    columns,
                    [schema, table],
                    kinds,
                    tally,
                )
        finally:
            con.close()

    def _sqlite_into(self, path: Path, kinds: frozenset[str], tally: _Tally) -> None:
        con = _sqlite_connect(path)
        try:
            tables = [
                row[0]
                for row in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                ).fetchall()
            ]
            for table in tables:
                names = [
                    row[1]
                    for row in con.execute(f"PRAGMA table_info({_sql_ident(table)})").fetchall()
                ]
                columns = [((str(name),), _sqlite_column(con, table, name)) for name in names]
                self._scan_table(f"{path}#{table}", columns, [table], kinds, tally)
        finally:
            con.close()
        # Deleted rows stay in a SQLite file's free pages until it is vacuumed.
        residue = _Tally()
        self._strings_into(path, kinds, residue)
        seen = {fp for fps in tally.hits.values() for fp in fps}
        for (_, kind), fps in residue.hits.items():
            new = fps - seen
            if new:
                tally.hits[(f"{path} (raw bytes: deleted or unreadable rows)", kind)] |= new


def _once(series: pl.Series) -> ColumnBatches:
    return lambda: [series]


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("windows-1252", "replace")


def _sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duckdb_column(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, column: str
) -> ColumnBatches:
    def batches() -> Iterator[pl.Series]:
        query = (
            f"SELECT DISTINCT {_sql_ident(column)} FROM {_sql_ident(schema)}.{_sql_ident(table)}"
        )
        reader = con.sql(query).fetch_arrow_reader(_BATCH_VALUES)
        for record_batch in reader:
            frame = pl.from_arrow(record_batch)
            assert isinstance(frame, pl.DataFrame)
            yield frame.to_series()

    return batches


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    try:
        con = sqlite3.connect(f"{uri}?mode=ro", uri=True)
        con.execute("SELECT count(*) FROM sqlite_master").fetchall()
        return con
    except sqlite3.Error:
        # a database in WAL mode whose -shm cannot be created: read it as a snapshot
        return sqlite3.connect(f"{uri}?immutable=1", uri=True)


def _sqlite_column(con: sqlite3.Connection, table: str, column: str) -> ColumnBatches:
    def batches() -> Iterator[pl.Series]:
        cursor = con.execute(
            f"SELECT {_sql_ident(column)} FROM {_sql_ident(table)} "
            f"WHERE {_sql_ident(column)} IS NOT NULL"
        )
        while True:
            rows = cursor.fetchmany(10_000)
            if not rows:
                break
            yield pl.Series([_sqlite_text(row[0]) for row in rows], dtype=pl.String)

    return batches


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
) -> list[Finding]:
    """Look for the fingerprinted identifiers everywhere the pipeline's data rests.

    * ``export_dir`` (every file, all kinds including ``date_of_birth``);
    * ``warehouse``: the DuckDB file (every table), files beside it named after it
      (its ``.wal``), and the ``pseudonymised/`` Parquet folder beside it;
    * ``dagster_home``: everything under it (SQLite run, event and schedule
      storage, compute logs, IO manager outputs);
    * ``restricted_dir/quarantine``.

    Missing locations are skipped; the fingerprint files are never scanned. An
    empty list means nothing was found.
    """
    scanner = Scanner(read_fingerprints(fingerprint_paths), key)
    skip = [Path(p) for p in fingerprint_paths]
    tally = _Tally()
    if export_dir is not None and Path(export_dir).exists():
        scanner._tree_into(Path(export_dir), scanner._active(EXPORT_KINDS), tally, skip)
    storage = scanner._active(STORAGE_KINDS)
    if warehouse is not None:
        warehouse = Path(warehouse)
        if warehouse.exists():
            scanner._tree_into(warehouse, storage, tally, skip)
        if warehouse.parent.exists():
            for sibling in sorted(warehouse.parent.glob(f"{glob.escape(warehouse.name)}?*")):
                scanner._tree_into(sibling, storage, tally, skip)
        beside = warehouse.parent / "pseudonymised"
        if beside.exists():
            scanner._tree_into(beside, storage, tally, skip)
    if dagster_home is not None and Path(dagster_home).exists():
        scanner._tree_into(Path(dagster_home), storage, tally, skip)
    if restricted_dir is not None:
        quarantine = Path(restricted_dir) / "quarantine"
        if quarantine.exists():
            scanner._tree_into(quarantine, storage, tally, skip)
    return tally.findings()
