"""Decide which landing rows are quarantined, and why (data-contract.md section 2).

Reason codes, in the order a row carries them (joined by ``;``):

1. ``malformed_row`` — the row's field count differs from the header's; it then
   carries this code alone.
2. ``unparseable_date:<column>`` — per date column, in table order: a required date
   blank or not a real date, or an optional date present and not a real date.
3. ``unparseable_number:<column>`` — per number column, in table order: a required
   number blank or not a number, or an optional number present and not a number.
4. ``negative:<column>`` — per number column, in table order: the number is below 0.
5. ``end_before_start`` — ``end_date`` and ``start_date`` both parse and the end is
   before the start.
6. ``duplicate_id`` — among the rows with none of the faults above that share an id,
   the winner is the first such row in the latest file; the others carry this code.

What counts as a date and as a number (the contract leaves the detail to us):

* A date is exactly ``YYYY-MM-DD`` (ASCII digits, zero-padded) naming a real day of
  the Gregorian calendar from 0001-01-01 to 9999-12-31, after stripping surrounding
  whitespace. ``2024-2-3``, ``2024-02-30``, ``03/02/2024`` and ``2024-02-03T00:00``
  are not dates.
* A number is an optional sign then ASCII digits with an optional decimal point and
  fraction (``12``, ``12.50``, ``-3``, ``+4``, ``.5``, ``7.``), after stripping
  surrounding whitespace, whose value is finite as a 64-bit float. Thousands
  separators, currency symbols, exponents (``1e3``), ``nan`` and ``inf`` are not
  numbers. Integer columns (``duration_minutes``) accept a fraction too: the
  contract only quarantines what is not a number or is negative.
* Ids are compared after stripping surrounding whitespace; the NHS number in an id
  (the ``primary_care_registers`` triple) also loses inner spaces and hyphens, so
  ``999 456 1235`` and ``9994561235`` are the same id. A blank id is a value like any
  other: rows sharing a blank id compete as duplicates.

Everything is vectorised Polars; no cell value is ever logged or raised.
"""

from dataclasses import dataclass
from datetime import date

import polars as pl

from pseudonymise.landing import (
    FILE_COLUMN,
    FILE_INDEX_COLUMN,
    MALFORMED_COLUMN,
    ROW_NUMBER_COLUMN,
    RawSource,
)

REASONS_COLUMN = "reasons"
REPLACED_COLUMN = "replaced"

MALFORMED_ROW = "malformed_row"
UNPARSEABLE_DATE = "unparseable_date"
UNPARSEABLE_NUMBER = "unparseable_number"
NEGATIVE = "negative"
END_BEFORE_START = "end_before_start"
DUPLICATE_ID = "duplicate_id"

#: Optional number columns where a blank means 0 (data-contract.md section 2).
BLANK_MEANS_ZERO: tuple[str, ...] = ("client_contribution_weekly",)
START_COLUMN = "start_date"
END_COLUMN = "end_date"
NHS_NUMBER_COLUMN = "nhs_number"

_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_NUMBER_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"
_KEY_PREFIX = "__key_"
# Row numbers stay below this (2**40, about 10**12 rows per file).
_ROW_SPAN = 1 << 40


def parse_date_expr(text: pl.Expr) -> pl.Expr:
    """A text expression as pl.Date: null when blank or not a real ``YYYY-MM-DD`` date."""
    stripped = text.str.strip_chars()
    return (
        pl.when(stripped.str.contains(_DATE_PATTERN) & ~stripped.str.starts_with("0000"))
        .then(stripped.str.to_date("%Y-%m-%d", strict=False))
        .otherwise(pl.lit(None, dtype=pl.Date))
    )


def parse_number_expr(text: pl.Expr) -> pl.Expr:
    """A text expression as Float64: null when blank or not a plain decimal number."""
    stripped = text.str.strip_chars()
    value = stripped.cast(pl.Float64, strict=False)
    return (
        pl.when(stripped.str.contains(_NUMBER_PATTERN) & value.is_finite())
        .then(value)
        .otherwise(pl.lit(None, dtype=pl.Float64))
    )


def is_blank_expr(text: pl.Expr) -> pl.Expr:
    """True where the text is empty after stripping surrounding whitespace."""
    return text.str.strip_chars() == ""


def parse_date(text: str) -> date | None:
    """One value through :func:`parse_date_expr` (for tests and one-off checks)."""
    result = pl.select(parse_date_expr(pl.lit(text, dtype=pl.String))).item()
    return result if isinstance(result, date) else None


def parse_number(text: str) -> float | None:
    """One value through :func:`parse_number_expr` (for tests and one-off checks)."""
    result = pl.select(parse_number_expr(pl.lit(text, dtype=pl.String))).item()
    return None if result is None else float(result)


def _id_key_expr(column: str) -> pl.Expr:
    stripped = pl.col(column).str.strip_chars()
    if column == NHS_NUMBER_COLUMN:
        return stripped.str.replace_all(r"[\s-]", "")
    return stripped


def _date_name(col: str) -> str:
    return f"__date_{col}"


def _number_name(col: str) -> str:
    return f"__number_{col}"


def _parsed_exprs(raw: RawSource) -> list[pl.Expr]:
    """Each date and number column parsed once, as temporary columns."""
    spec = raw.spec
    return [
        *(parse_date_expr(pl.col(c)).alias(_date_name(c)) for c in spec.date_columns),
        *(parse_number_expr(pl.col(c)).alias(_number_name(c)) for c in spec.number_columns),
    ]


def _fault_exprs(raw: RawSource) -> list[pl.Expr]:
    """One nullable code per fault other than duplicate_id, in order (needs _parsed_exprs)."""
    spec = raw.spec
    codes: list[pl.Expr] = []
    for col in spec.date_columns:
        bad = pl.col(_date_name(col)).is_null()
        if col not in spec.required_dates:
            bad = bad & ~is_blank_expr(pl.col(col))
        codes.append(pl.when(bad).then(pl.lit(f"{UNPARSEABLE_DATE}:{col}")))
    for col in spec.number_columns:
        bad = pl.col(_number_name(col)).is_null()
        if col not in spec.required_numbers:
            bad = bad & ~is_blank_expr(pl.col(col))
        codes.append(pl.when(bad).then(pl.lit(f"{UNPARSEABLE_NUMBER}:{col}")))
    for col in spec.number_columns:
        negative = (pl.col(_number_name(col)) < 0).fill_null(False)
        codes.append(pl.when(negative).then(pl.lit(f"{NEGATIVE}:{col}")))
    if START_COLUMN in spec.date_columns and END_COLUMN in spec.date_columns:
        end, start = pl.col(_date_name(END_COLUMN)), pl.col(_date_name(START_COLUMN))
        codes.append(pl.when((end < start).fill_null(False)).then(pl.lit(END_BEFORE_START)))
    return codes


def quarantine_reasons(raw: RawSource) -> pl.DataFrame:
    """Every raw row's quarantine reasons, in the row order of ``raw.frame``.

    Returns:
        ``_file``, ``_file_index``, ``_row_number``; ``reasons`` (String: null when the
        row is accepted, else its codes joined by ``;``); ``replaced`` (True for a
        ``duplicate_id`` row whose winner is in a later file: lost to a re-delivery).
    """
    spec = raw.spec
    faults = pl.concat_str(_fault_exprs(raw), separator=";", ignore_nulls=True)
    keys = [_id_key_expr(c).alias(f"{_KEY_PREFIX}{i}") for i, c in enumerate(spec.id_columns)]
    key_names = [f"{_KEY_PREFIX}{i}" for i in range(len(spec.id_columns))]
    partition = ["_competes", *key_names]

    # The winner of an id is the first row of the latest file: the row with the
    # highest (file index, -row number), folded into one integer so a single window
    # pass finds it.
    file_index = pl.col(FILE_INDEX_COLUMN)
    rank = file_index.cast(pl.Int64) * _ROW_SPAN - pl.col(ROW_NUMBER_COLUMN)
    best_rank = pl.col("_rank").max().over(partition)
    # _best = latest * SPAN - first_row with 1 <= first_row < SPAN
    latest_file = (pl.col("_best") + _ROW_SPAN - 1) // _ROW_SPAN

    return (
        raw.frame.lazy()
        .with_columns(_parsed_exprs(raw))
        .select(
            FILE_COLUMN,
            FILE_INDEX_COLUMN,
            ROW_NUMBER_COLUMN,
            MALFORMED_COLUMN,
            pl.when(pl.col(MALFORMED_COLUMN)).then(pl.lit("")).otherwise(faults).alias("_faults"),
            *keys,
        )
        .with_columns(
            (~pl.col(MALFORMED_COLUMN) & (pl.col("_faults") == "")).alias("_competes"),
            rank.alias("_rank"),
        )
        .with_columns(best_rank.alias("_best"))
        .with_columns(
            (pl.col("_competes") & (pl.col("_rank") != pl.col("_best"))).alias("_duplicate"),
            (pl.col("_competes") & (file_index < latest_file)).alias("_replaced"),
        )
        .select(
            FILE_COLUMN,
            FILE_INDEX_COLUMN,
            ROW_NUMBER_COLUMN,
            pl.when(pl.col(MALFORMED_COLUMN))
            .then(pl.lit(MALFORMED_ROW))
            .when(pl.col("_duplicate"))
            .then(pl.lit(DUPLICATE_ID))
            .when(pl.col("_faults") != "")
            .then(pl.col("_faults"))
            .otherwise(pl.lit(None, dtype=pl.String))
            .alias(REASONS_COLUMN),
            pl.col("_replaced").alias(REPLACED_COLUMN),
        )
        .collect()
    )


def accepted_mask(reasons: pl.DataFrame) -> pl.Series:
    """True for the rows :func:`quarantine_reasons` accepted."""
    return reasons[REASONS_COLUMN].is_null()


def parse_accepted(raw: RawSource, reasons: pl.DataFrame) -> pl.DataFrame:
    """The accepted rows with dates as pl.Date, numbers as Float64, other text stripped.

    Optional blank dates and numbers are null, except the columns in
    :data:`BLANK_MEANS_ZERO`, where a blank is 0.0. Keeps ``_file``, ``_file_index``
    and ``_row_number``.
    """
    if reasons.height != raw.frame.height:
        raise ValueError(
            f"source {raw.spec.name}: reasons have {reasons.height} rows, "
            f"the raw frame {raw.frame.height}"
        )
    spec = raw.spec
    dates = set(spec.date_columns)
    numbers = set(spec.number_columns)
    columns: list[pl.Expr] = []
    for col in spec.required_columns:
        if col in dates:
            columns.append(parse_date_expr(pl.col(col)).alias(col))
        elif col in numbers:
            value = parse_number_expr(pl.col(col))
            if col in BLANK_MEANS_ZERO:
                value = value.fill_null(0.0)
            columns.append(value.alias(col))
        else:
            columns.append(pl.col(col).str.strip_chars().alias(col))
    return raw.frame.filter(accepted_mask(reasons)).select(
        *columns, FILE_COLUMN, FILE_INDEX_COLUMN, ROW_NUMBER_COLUMN
    )


@dataclass(frozen=True)
class SourceOutcome:
    """A source's row counts for the reconciliation."""

    source: str
    encoding: str
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    rows_replaced: int


def summarise(raw: RawSource, reasons: pl.DataFrame) -> SourceOutcome:
    """Counts of rows read, accepted, quarantined and replaced by a re-delivery."""
    quarantined = int(reasons[REASONS_COLUMN].is_not_null().sum())
    return SourceOutcome(
        source=raw.spec.name,
        encoding=raw.encoding,
        rows_read=raw.rows_read,
        rows_accepted=reasons.height - quarantined,
        rows_quarantined=quarantined,
        rows_replaced=int(reasons[REPLACED_COLUMN].sum()),
    )
