"""Read a landing extract into a table of raw text, one row per data row.

This module reads raw identifiable extracts (data-contract.md section 2). It never
puts a cell value into an exception message or log: errors name the file, and
where relevant the column or row number, only.

How a source is read:

* ``<landing_dir>/<name>.csv``, or a folder ``<landing_dir>/<name>/`` whose files
  ending ``.csv`` (any case; hidden files ignored) are read as one table, in byte
  order of their names. Having both is an error (which one is meant is unclear).
* Each file is UTF-8, with or without a byte-order mark; a file that is not valid
  UTF-8 is decoded as Windows-1252 (bytes Windows-1252 leaves undefined map to the
  matching C1 control, as web browsers do) and its :class:`FileRead` says so.
* Comma-separated with RFC 4180 quoting: a quoted field may hold commas, doubled
  quotes and line breaks. Rows are numbered from 1 (the first data row) in the
  order a CSV reader sees them, so a quoted line break does not start a new row.
* A row with more or fewer fields than the header is kept, flagged ``_malformed``
  with every column ``""``. A blank line between rows is such a row (it has one
  empty field); blank lines at the very end of a file are not rows.
* Values are kept exactly as written (only a line's trailing carriage return is
  removed); only the spec's required columns are kept, extra columns are dropped.

Speed: Polars' CSV reader is fast but hides a row's field count (a short row is
padded, a long one truncated), so a file is read twice by Polars: once as one text
column of physical lines, whose fields are counted with vectorised string
expressions (commas outside quoted fields; lines joined where a quoted field holds a
line break), and once as CSV for the values, trusted only when it finds the same
records. A record quoted irregularly (a quote inside an unquoted field, text after
a closing quote) is read by Python's ``csv`` module; if the module cannot read it on
its own, the whole file is parsed by the ``csv`` module (exact, ~100k rows/s).
"""

import codecs
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

import polars as pl

from schemas.sources import SourceSpec

UTF8 = "utf-8"
WINDOWS_1252 = "windows-1252"

#: The bookkeeping columns added to every raw frame.
FILE_COLUMN = "_file"
FILE_INDEX_COLUMN = "_file_index"
ROW_NUMBER_COLUMN = "_row_number"
MALFORMED_COLUMN = "_malformed"

_BOM = b"\xef\xbb\xbf"
_LINE = "line"
# Bytes used as a column separator that does not occur in the file, so that Polars
# hands back each physical line whole. NUL is tried first; the others only when a
# file actually contains NUL bytes.
_SEPARATOR_CANDIDATES = tuple(chr(b) for b in range(0x20) if chr(b) not in "\n\r")
_CP1252_ERRORS = "ipc-windows-1252-c1"
# A line whose every field is either free of quotes or wholly quoted (inner quotes
# doubled): Polars and Python's csv module read such a line the same way.
_FIELD = r'(?:[^",]*|"(?:[^"]|"")*")'
_REGULAR_LINE = rf"^{_FIELD}(?:,{_FIELD})*$"
_QUOTED_FIELD = r'"[^"]*"'


def _c1_fallback(err: UnicodeError) -> tuple[str, int]:
    """Map the five bytes Windows-1252 leaves undefined to the matching C1 control."""
    if not isinstance(err, UnicodeDecodeError):  # pragma: no cover - decode only
        raise err
    return chr(err.object[err.start]), err.start + 1


codecs.register_error(_CP1252_ERRORS, _c1_fallback)


class LandingError(Exception):
    """A landing extract cannot be read (the message never holds a cell value)."""


@dataclass(frozen=True)
class FileRead:
    """One file read for a source.

    Attributes:
        path: the file.
        file_index: its 0-based position among the source's files (byte order of names).
        encoding: ``"utf-8"`` or ``"windows-1252"``.
        rows: how many data rows it holds (malformed rows included).
    """

    path: Path
    file_index: int
    encoding: str
    rows: int
    extra_columns: tuple[str, ...] = ()


@dataclass
class RawSource:
    """A landing source as raw text: one row per data row of its files, in file order.

    ``frame`` holds every required column of ``spec`` as text exactly as written
    (``""`` when empty, and for every column of a malformed row), plus ``_file``
    (file name), ``_file_index`` (Int32), ``_row_number`` (Int64, 1 = first data row
    of its file) and ``_malformed`` (the row's field count differs from the header's).
    """

    spec: SourceSpec
    frame: pl.DataFrame
    files: list[FileRead] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return self.frame.height

    @property
    def rows_malformed(self) -> int:
        return int(self.frame[MALFORMED_COLUMN].sum())

    @property
    def encoding(self) -> str:
        """The source's encoding: one name, or the distinct ones in file order joined by ``;``."""
        seen: list[str] = []
        for f in self.files:
            if f.encoding not in seen:
                seen.append(f.encoding)
        return ";".join(seen) if seen else UTF8


def source_files(landing_dir: Path, spec: SourceSpec) -> list[Path]:
    """The files making up a source, in the order they are read."""
    single = landing_dir / spec.file_name
    folder = landing_dir / spec.name
    has_single = single.is_file()
    has_folder = folder.is_dir()
    if has_single and has_folder:
        raise LandingError(
            f"source {spec.name}: both {spec.file_name} and a folder {spec.name}/ are in "
            f"the landing folder; keep one"
        )
    if has_single:
        return [single]
    if has_folder:
        files = [
            p
            for p in folder.iterdir()
            if p.is_file() and p.name.lower().endswith(".csv") and not p.name.startswith(".")
        ]
        if not files:
            raise LandingError(f"source {spec.name}: the folder {spec.name}/ holds no .csv files")
        return sorted(files, key=lambda p: p.name.encode("utf-8", "surrogateescape"))
    raise LandingError(
        f"missing extract for source {spec.name}: expected {spec.file_name} or a folder "
        f"{spec.name}/ in the landing folder"
    )


def read_source(landing_dir: Path, spec: SourceSpec) -> RawSource:
    """Read one landing source (a file or a folder of files) as raw text.

    Raises:
        LandingError: the source is missing, a file is empty or unreadable, or a file
            lacks a required column. The message names the file and column only.
    """
    landing_dir = Path(landing_dir)
    frames: list[pl.DataFrame] = []
    reads: list[FileRead] = []
    for index, path in enumerate(source_files(landing_dir, spec)):
        header = _header_names(path)
        absent = [c for c in spec.optional_columns if c not in header]
        read = [c for c in spec.required_columns if c not in absent]
        frame, encoding = _read_file(path, read)
        frame = frame.with_columns(
            *(pl.lit("", dtype=pl.String).alias(c) for c in absent),
            pl.lit(path.name, dtype=pl.String).alias(FILE_COLUMN),
            pl.lit(index, dtype=pl.Int32).alias(FILE_INDEX_COLUMN),
        ).select(
            *spec.required_columns,
            FILE_COLUMN,
            FILE_INDEX_COLUMN,
            ROW_NUMBER_COLUMN,
            MALFORMED_COLUMN,
        )
        frames.append(frame)
        reads.append(
            FileRead(
                path=path,
                file_index=index,
                encoding=encoding,
                rows=frame.height,
                extra_columns=_extra_columns(path, spec.required_columns),
            )
        )
    return RawSource(spec=spec, frame=pl.concat(frames, how="vertical"), files=reads)


# --- one file -----------------------------------------------------------------------


def _header_names(path: Path) -> list[str]:
    """The names in a file's first line, stripped (none for an empty file)."""
    try:
        with path.open("rb") as handle:
            first = handle.readline()
    except OSError:
        raise LandingError(f"{path.name}: cannot be read") from None
    try:
        text = first.decode(UTF8)
    except UnicodeDecodeError:
        text = first.decode("cp1252", errors="replace")
    line = text.lstrip("\ufeff").rstrip("\r\n")
    try:
        names = next(csv.reader([line]), [])
    except csv.Error:  # a NUL byte, say: the reader proper says what is wrong
        names = line.split(",")
    return [n.strip() for n in names if n.strip()]


def _extra_columns(path: Path, required: Sequence[str]) -> tuple[str, ...]:
    """Header names the contract does not use: ignored, but reported (names only)."""
    return tuple(n for n in _header_names(path) if n not in required)


def _read_file(path: Path, required: Sequence[str]) -> tuple[pl.DataFrame, str]:
    name = path.name
    try:
        size = path.stat().st_size
    except OSError:
        raise LandingError(f"{name}: cannot be read") from None
    if size == 0:
        raise LandingError(f"{name}: the file is empty (no header line)")

    lines, content, encoding = _read_lines(path)
    # _parse_fast takes the only reference, so it can free the lines (as large as the
    # file) before Polars parses the values: the two never need memory at once.
    only_reference = [lines]
    del lines
    frame = _parse_fast(only_reference, content, name, required)
    if frame is None:
        # content is the path (a UTF-8 file), or bytes already re-encoded as UTF-8
        raw = content if isinstance(content, bytes) else _read_bytes(path)
        frame = _parse_with_csv_module(_decode(raw, UTF8), name, required)
    return frame, encoding


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        raise LandingError(f"{path.name}: cannot be read") from None


def _decode(data: bytes, encoding: str) -> str:
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if encoding == UTF8:
        return data.decode("utf-8")
    return data.decode("cp1252", errors=_CP1252_ERRORS)


def _polars_source(content: Path | bytes) -> Path | io.BytesIO:
    return io.BytesIO(content) if isinstance(content, bytes) else content


def _lines_with_polars(content: Path | bytes, separator: str) -> pl.Series:
    """Each physical line as one string (Polars drops the BOM and a trailing CR)."""
    return pl.read_csv(
        _polars_source(content),
        has_header=False,
        separator=separator,
        quote_char=None,
        schema={_LINE: pl.String},
        empty_string_is_null=False,
        raise_if_empty=False,
        glob=False,
    )[_LINE]


def _read_lines(path: Path) -> tuple[pl.Series, Path | bytes, str]:
    """The file's physical lines, its content as Polars should read it, and its encoding.

    The content is the path itself for a UTF-8 file without NUL bytes (Polars maps
    it), else the bytes re-encoded as UTF-8.
    """
    name = path.name
    try:
        return _lines_with_polars(path, _SEPARATOR_CANDIDATES[0]), path, UTF8
    except pl.exceptions.PolarsError:
        pass  # not UTF-8, or holds NUL bytes: look at the bytes ourselves
    data = _read_bytes(path)
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    encoding = UTF8
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        encoding = WINDOWS_1252
        data = data.decode("cp1252", errors=_CP1252_ERRORS).encode("utf-8")
    separator = next((c for c in _SEPARATOR_CANDIDATES if c.encode() not in data), None)
    if separator is None:
        raise LandingError(f"{name}: cannot be read as text (it holds every control character)")
    try:
        return _lines_with_polars(data, separator), data, encoding
    except pl.exceptions.PolarsError:
        raise LandingError(f"{name}: cannot be read as text") from None


def _column_positions(header: list[str], name: str, required: Sequence[str]) -> list[int]:
    """Where each required column sits in the header (names matched after stripping)."""
    names = [h.strip().lstrip("\ufeff").strip() for h in header]
    missing = [c for c in required if c not in names]
    if missing:
        raise LandingError(f"{name}: missing required column(s): {', '.join(missing)}")
    repeated = [c for c in required if names.count(c) > 1]
    if repeated:
        raise LandingError(f"{name}: column(s) named more than once: {', '.join(repeated)}")
    return [names.index(c) for c in required]


class _NeedsCsvModule(Exception):
    """The fast path cannot prove it reads the file as the csv module would."""


def _parse_line_strictly(line: str) -> list[str]:
    """One record (a line, or lines joined by ``\\n``) as fields; _NeedsCsvModule if unsure."""
    try:
        records = list(csv.reader([line], strict=True))
    except csv.Error:
        raise _NeedsCsvModule from None
    if len(records) != 1:
        raise _NeedsCsvModule
    return records[0]


def _records(body: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Join physical lines into records where a quoted field holds a line break.

    A line break is inside a quoted field when the quotes before it are odd in number
    (RFC 4180: a doubled quote inside a quoted field counts twice). Returns the
    records and whether each holds a quote character.
    """
    quoted = body.str.contains('"', literal=True)
    if not quoted.any():
        return body, quoted
    quoted_rows = quoted.arg_true()
    quotes_in_quoted = body.gather(quoted_rows).str.count_matches('"', literal=True)
    if not (quotes_in_quoted % 2 == 1).any():
        return body, quoted
    quotes = pl.zeros(body.len(), dtype=pl.UInt32, eager=True).scatter(
        quoted_rows, quotes_in_quoted
    )
    ends_record = (quotes.cast(pl.Int64).cum_sum() % 2) == 0
    record = ends_record.cast(pl.Int64).cum_sum().shift(1, fill_value=0).alias("_record")
    merged = (
        pl.DataFrame({_LINE: body, "_record": record})
        .group_by("_record", maintain_order=True)
        .agg(pl.col(_LINE).str.join("\n"))[_LINE]
    )
    return merged, merged.str.contains('"', literal=True)


def _parse_fast(
    only_reference: list[pl.Series], content: Path | bytes, name: str, required: Sequence[str]
) -> pl.DataFrame | None:
    """Parse a file with vectorised expressions; None when it needs the csv module.

    Field counts come from the records (physical lines, joined where a quoted field
    holds a line break): commas in a record without quotes, commas outside quoted
    fields in a record whose quoting is regular (every field either free of quotes or
    wholly quoted with inner quotes doubled), and Python's csv module for the rare
    record quoted any other way. Values come from Polars' CSV reader, trusted only
    when it finds exactly the same records. ``only_reference`` holds the file's lines
    (from :func:`_read_lines`) and nothing else may: they are freed before the values
    are read.
    """
    lines = only_reference.pop()
    total_lines = lines.len()
    non_blank = (lines != "").arg_true()
    if non_blank.len() == 0:
        raise LandingError(f"{name}: the file is empty (no header line)")
    header_line = str(lines[0])
    if header_line == "":
        raise LandingError(f"{name}: the first line is blank (no header line)")
    if lines.str.contains("\r", literal=True).any():
        return None  # a carriage return not ending a line: the csv module ends a row there
    # Blank lines at the very end of a file are not rows.
    body_lines = int(non_blank[-1])
    body, has_quote = _records(lines.slice(1, body_lines))
    del lines
    n = body.len()
    try:
        header = _parse_line_strictly(header_line) if '"' in header_line else header_line.split(",")
        positions = _column_positions(header, name, required)
        n_fields = len(header)

        line = pl.col(_LINE)
        field_counts = (
            pl.DataFrame({_LINE: body})
            .select(
                pl.when(line == "")
                .then(pl.lit(0, dtype=pl.Int64))
                .otherwise(line.str.count_matches(",", literal=True).cast(pl.Int64) + 1)
            )
            .to_series()
        )
        irregular: dict[int, list[str]] = {}
        if has_quote.any():
            quoted_rows = has_quote.arg_true()
            quoted = body.gather(quoted_rows)
            regular = quoted.str.contains(_REGULAR_LINE)
            outside = quoted.str.replace_all(_QUOTED_FIELD, "")
            counts = (outside.str.count_matches(",", literal=True) + 1).cast(pl.Int64)
            for i in (~regular).arg_true().to_list():
                record = _parse_line_strictly(str(quoted[i]))
                irregular[int(quoted_rows[i])] = record
                counts[i] = len(record)
            field_counts = field_counts.scatter(quoted_rows, counts)
        del body
    except _NeedsCsvModule:
        return None

    schema = {f"c{i}": pl.String for i in range(n_fields)}
    try:
        values = pl.read_csv(
            _polars_source(content),
            has_header=False,
            columns=positions,
            schema=schema,
            quote_char='"',
            empty_string_is_null=False,
            truncate_ragged_lines=True,
            missing_columns="insert",
            raise_if_empty=False,
            glob=False,
        )
    except pl.exceptions.PolarsError:
        return None  # its message may quote a cell: never pass it on
    # Polars must see the header, our records, then the trailing blank lines.
    if values.height != 1 + n + (total_lines - 1 - body_lines):
        return None
    values = values.slice(1, n).select(
        pl.col(f"c{pos}").alias(col) for col, pos in zip(required, positions, strict=True)
    )

    # The few irregular and malformed rows are patched one column at a time, so a large
    # file's values are never held twice.
    if irregular:
        rows = pl.Series(list(irregular), dtype=pl.UInt32)
        for col, pos in zip(required, positions, strict=True):
            fixed = [rec[pos] if len(rec) > pos else "" for rec in irregular.values()]
            values = values.with_columns(values[col].scatter(rows, fixed))
    malformed = field_counts != n_fields
    if malformed.any():
        bad_rows = malformed.arg_true()
        for col in required:
            values = values.with_columns(values[col].scatter(bad_rows, ""))
    return values.with_columns(
        pl.int_range(1, n + 1, dtype=pl.Int64).alias(ROW_NUMBER_COLUMN),
        malformed.alias(MALFORMED_COLUMN),
    )


def _parse_with_csv_module(text: str, name: str, required: Sequence[str]) -> pl.DataFrame:
    """Parse a whole file with Python's csv module (irregular quoting; exact but slower)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[list[str]] = []
    try:
        header = next(reader, None)
        if not header:
            raise LandingError(f"{name}: the first line is blank (no header line)")
        positions = _column_positions(header, name, required)
        records.extend(reader)
    except csv.Error:
        raise LandingError(
            f"{name}: cannot be parsed as CSV near line {reader.line_num} (unbalanced quotes?)"
        ) from None
    while records and not records[-1]:
        records.pop()  # blank lines at the end are not rows
    n_fields = len(header)
    pick = itemgetter(*positions)
    blank = ("",) * len(positions)
    malformed = [len(r) != n_fields for r in records]
    rows = [
        blank if bad else (pick(r) if len(positions) > 1 else (pick(r),))
        for r, bad in zip(records, malformed, strict=True)
    ]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(required, pl.String), orient="row")
    return frame.with_columns(
        pl.int_range(1, len(records) + 1, dtype=pl.Int64).alias(ROW_NUMBER_COLUMN),
        pl.Series(MALFORMED_COLUMN, malformed, dtype=pl.Boolean),
    )
