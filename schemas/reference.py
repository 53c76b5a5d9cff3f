"""Reference tables (data-contract.md section 3): pandera models and a validated loader.

The reference folder holds published or locally agreed finance data (tariffs, unit costs,
block contracts), the cohort definitions and the run settings. None of it is about a
person, so unlike raw extracts its error messages show the offending value: a finance
analyst fixing a tariff file needs to see the bad cell.

``load_reference_tables`` reads every file once, checks it against its model and returns
typed polars frames; any problem stops the run with a :class:`ReferenceError` that names
the file, the row (1 = first data row), the column and the rule broken.
"""

import copy
import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl
import yaml
from pandera.api.checks import Check
from pandera.api.polars.types import PolarsData

from schemas.sources import SETTINGS

POINTS_OF_DELIVERY: tuple[str, ...] = ("EL", "NEL", "DC", "OPFA", "OPFU", "AE")
UNITS: tuple[str, ...] = ("CONTACT", "BED_DAY")
UNIT_COST_SOURCES: tuple[str, ...] = ("community", "mental_health", "primary_care")
#: A block contract replaces a national unit cost, so it can price what those price.
BLOCK_CONTRACT_SOURCES: tuple[str, ...] = UNIT_COST_SOURCES

#: ``in_range`` arguments meaning "0 or more, and a finite number". A plain ``ge=0`` lets
#: NaN and +inf through (polars orders NaN above +inf); the half-open range rejects both.
NON_NEGATIVE: dict[str, Any] = {
    "min_value": 0,
    "max_value": math.inf,
    "include_min": True,
    "include_max": False,
}

FINANCIAL_YEAR_RULE = (
    "must be a financial year written YYYY/YY, e.g. 2024/25 (1 April 2024 to 31 March 2025)"
)
FINANCIAL_YEAR_DESCRIPTION = "Financial year, written `2024/25` (1 April 2024 to 31 March 2025)."
REFERENCE_DESCRIPTION = "Where the figure comes from (publication, contract, note)."


def is_financial_year(column: pl.Expr) -> pl.Expr:
    """True where ``column`` is written ``YYYY/YY`` with the second year following the first.

    ``2024/25`` and ``1999/00`` pass; ``2024/26``, ``2024-25`` and ``24/25`` fail. Null stays
    null (nullability is the column's own rule).
    """
    first = column.str.slice(0, 4).cast(pl.Int64, strict=False)
    second = column.str.slice(5, 2).cast(pl.Int64, strict=False)
    return column.str.contains(r"^\d{4}/\d{2}$") & ((first + 1) % 100 == second)


class FinancialYearModel(pa.DataFrameModel):
    """Mixin for models with a ``financial_year`` column: checks it is a real ``YYYY/YY``."""

    @pa.check(
        "financial_year",
        name="financial_year_format",
        error=FINANCIAL_YEAR_RULE,
        description=FINANCIAL_YEAR_RULE,
    )
    def financial_year_format(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(is_financial_year(pl.col(data.key)))


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


class AcuteTariff(FinancialYearModel):
    """National tariff price for each HRG and point of delivery, per financial year."""

    financial_year: str = pa.Field(description=FINANCIAL_YEAR_DESCRIPTION)
    hrg_code: str = pa.Field(description="Healthcare Resource Group, e.g. `DZ65K`.")
    pod: str = pa.Field(
        isin=POINTS_OF_DELIVERY,
        description=(
            "Point of delivery: `EL` elective inpatient, `NEL` non-elective inpatient, "
            "`DC` day case, `OPFA` outpatient first, `OPFU` outpatient follow-up, "
            "`AE` A&E attendance."
        ),
    )
    price: float = pa.Field(
        in_range=NON_NEGATIVE, description="Tariff price in GBP for the spell or attendance."
    )
    trim_point_days: int = pa.Field(
        ge=0,
        description=(
            "Length of stay (nights) beyond which excess bed days are paid (`EL`, `NEL`); "
            "`0` for other points of delivery."
        ),
    )
    excess_bed_day_price: float = pa.Field(
        in_range=NON_NEGATIVE,
        description="GBP per night of length of stay beyond `trim_point_days` (`EL`, `NEL`).",
    )
    reference: str | None = pa.Field(nullable=True, description=REFERENCE_DESCRIPTION)

    class Config:
        name = "acute_tariff"
        description = "One row per financial year, HRG and point of delivery."
        unique = ["financial_year", "hrg_code", "pod"]  # noqa: RUF012
        strict = False


class AcutePodDefault(FinancialYearModel):
    """Default price per point of delivery, used when an HRG/POD pair is not in the tariff."""

    financial_year: str = pa.Field(description=FINANCIAL_YEAR_DESCRIPTION)
    pod: str = pa.Field(
        isin=POINTS_OF_DELIVERY,
        description="Point of delivery (`EL`, `NEL`, `DC`, `OPFA`, `OPFU`, `AE`).",
    )
    price: float = pa.Field(
        in_range=NON_NEGATIVE,
        description=(
            "GBP for an activity whose HRG/POD pair is not in `acute_tariff.csv` "
            "(no excess bed days; `cost_basis = pod_default`)."
        ),
    )
    reference: str | None = pa.Field(nullable=True, description=REFERENCE_DESCRIPTION)

    class Config:
        name = "acute_pod_default"
        description = "One row per financial year and point of delivery."
        unique = ["financial_year", "pod"]  # noqa: RUF012
        strict = False


class UnitCosts(FinancialYearModel):
    """National unit cost per contact or bed day for community, mental health, primary care."""

    financial_year: str = pa.Field(description=FINANCIAL_YEAR_DESCRIPTION)
    source: str = pa.Field(
        isin=UNIT_COST_SOURCES,
        description="Setting priced: `community`, `mental_health` or `primary_care`.",
    )
    service: str = pa.Field(
        description=(
            "Community `service`, mental health ward or team type (`service`), or primary "
            "care `staff_type`."
        )
    )
    mode: str = pa.Field(
        nullable=True,
        description=(
            "Community `contact_mode` or primary care `mode`; blank = any mode (the fallback "
            "when no row matches the activity's own mode)."
        ),
    )
    unit: str = pa.Field(
        isin=UNITS,
        description="`CONTACT` (per contact or consultation) or `BED_DAY` (per night).",
    )
    cost: float = pa.Field(in_range=NON_NEGATIVE, description="GBP per unit.")
    reference: str | None = pa.Field(nullable=True, description=REFERENCE_DESCRIPTION)

    class Config:
        name = "unit_costs"
        description = (
            "One row per financial year, source, service, mode and unit. "
            "Its earliest financial year sets the default period start."
        )
        unique = ["financial_year", "source", "service", "mode", "unit"]  # noqa: RUF012
        strict = False


class BlockContracts(FinancialYearModel):
    """Optional local block contracts: their value replaces the national unit cost."""

    financial_year: str = pa.Field(description=FINANCIAL_YEAR_DESCRIPTION)
    source: str = pa.Field(
        isin=BLOCK_CONTRACT_SOURCES,
        description=(
            "Setting of the contract: `community`, `mental_health` or `primary_care` (the "
            "settings national unit costs price)."
        ),
    )
    provider_code: str = pa.Field(description="ODS code of the provider holding the contract.")
    service: str = pa.Field(
        description=(
            "Community `service`, mental health ward or team type, or primary care "
            "`staff_type` covered."
        )
    )
    contract_value: float = pa.Field(
        in_range=NON_NEGATIVE,
        description=(
            "GBP for the year. Divided by the provider's accepted, attended contacts (or bed "
            "days) of that service in the year to give the local unit cost "
            "(`cost_basis = block_local`); pro rata for a year only partly inside the period."
        ),
    )
    reference: str | None = pa.Field(nullable=True, description=REFERENCE_DESCRIPTION)

    class Config:
        name = "block_contracts"
        description = (
            "One row per financial year, source, provider and service. Optional: without it "
            "every contact is priced at the national unit cost."
        )
        unique = ["financial_year", "source", "provider_code", "service"]  # noqa: RUF012
        strict = False


#: Reference CSV file name -> its model, in the contract's order.
REFERENCE_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "acute_tariff.csv": AcuteTariff,
    "acute_pod_default.csv": AcutePodDefault,
    "unit_costs.csv": UnitCosts,
    "block_contracts.csv": BlockContracts,
}
REQUIRED_FILES: tuple[str, ...] = ("acute_tariff.csv", "acute_pod_default.csv", "unit_costs.csv")
COHORTS_FILE = "cohorts.yaml"
SETTINGS_FILE = "settings.yaml"
DEFAULT_COHORTS_RESOURCE = "default_cohorts.yaml"

# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------

#: Defaults for ``settings.yaml``; a file there is merged over these, key by key.
DEFAULT_SETTINGS: dict[str, Any] = {
    "cashable_settings": ["chc", "social_care", "community"],
    "disclosure": {"threshold": 7, "rounding": 5, "override": None},
    "k_anonymity": {"k": 5, "override": None},
    "recipients_open_pseudonymiser": {},
}

#: What each setting means, for the data dictionary (dotted key -> text).
SETTINGS_DESCRIPTIONS: dict[str, str] = {
    "cashable_settings": (
        "Settings summed into a person's cashable cost for the funding bands and the "
        "indicative budget; any of " + ", ".join(f"`{s}`" for s in SETTINGS) + "."
    ),
    "disclosure.threshold": (
        "An aggregate row describing this many people or fewer (but not zero) is suppressed."
    ),
    "disclosure.rounding": "Every count shown in an aggregate is rounded to the nearest multiple.",
    "disclosure.override": (
        "A reason, recorded in the manifest; required to set `threshold` below 7 or "
        "`rounding` below 5."
    ),
    "k_anonymity.k": (
        "In `linked/`, each combination of quasi-identifiers (age band, sex, postcode "
        "district) is shared by at least k people per financial year, else generalised."
    ),
    "k_anonymity.override": "A reason, recorded in the manifest; required to set `k` below 5.",
    "recipients_open_pseudonymiser": (
        "Recipients (names as in `IPC_RECIPIENTS`) that receive legacy Open Pseudonymiser "
        "ids, each mapped to its own settings; empty by default."
    ),
}

_RECIPIENT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
#: Lowest values allowed without an ``override`` reason.
_FLOORS: dict[tuple[str, str], int] = {
    ("disclosure", "threshold"): 7,
    ("disclosure", "rounding"): 5,
    ("k_anonymity", "k"): 5,
}
_MINIMUMS: dict[tuple[str, str], int] = {
    ("disclosure", "threshold"): 0,
    ("disclosure", "rounding"): 1,
    ("k_anonymity", "k"): 1,
}


# --------------------------------------------------------------------------------------
# Errors and the loaded tables
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceProblem:
    """One broken rule in a reference file.

    Attributes:
        file: the file's name, e.g. ``acute_tariff.csv``.
        row: 1 = first data row; None for a problem with the file or its header.
        column: the column (or, in ``settings.yaml``, the dotted setting) concerned, or None.
        rule: what is wrong, in plain English.
        value: the offending value as read (text for a CSV cell), or None.
        what: what ``column`` names: ``column``, ``columns`` or ``setting``.
    """

    file: str
    row: int | None
    column: str | None
    rule: str
    value: Any = None
    what: str = "column"

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"{self.what} '{self.column}'")
        text = f"{', '.join(where)}: {self.rule}"
        if self.value is not None:
            text += f" (value: {self.value!r})"
        return text


class ReferenceError(Exception):  # shadows the builtin on purpose: the agreed name
    """A reference file is missing, unreadable or breaks a rule of the data contract.

    ``problems`` lists every broken rule found (the message shows the first 20).
    """

    MAX_SHOWN = 20

    def __init__(self, message: str, problems: Sequence[ReferenceProblem] = ()) -> None:
        self.problems: tuple[ReferenceProblem, ...] = tuple(problems)
        lines = [message]
        lines += [f"  {p}" for p in self.problems[: self.MAX_SHOWN]]
        if len(self.problems) > self.MAX_SHOWN:
            lines.append(f"  ... and {len(self.problems) - self.MAX_SHOWN} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class ReferenceTables:
    """Everything in the reference folder, checked and typed.

    Attributes:
        acute_tariff / acute_pod_default / unit_costs / block_contracts: one polars frame
            per CSV with the model's columns in the model's order (``reference`` always
            present, null where the file has none); ``block_contracts`` is empty when the
            file is absent.
        cohorts_yaml: the text of ``cohorts.yaml``, or of the shipped default when absent.
        settings: ``settings.yaml`` merged over :data:`DEFAULT_SETTINGS`.
    """

    acute_tariff: pl.DataFrame
    acute_pod_default: pl.DataFrame
    unit_costs: pl.DataFrame
    block_contracts: pl.DataFrame
    cohorts_yaml: str
    settings: dict[str, Any]


# --------------------------------------------------------------------------------------
# Loader
# --------------------------------------------------------------------------------------


def load_reference_tables(reference_dir: Path) -> ReferenceTables:
    """Read and check every reference table in ``reference_dir``.

    Args:
        reference_dir: the folder ``IPC_REFERENCE_DIR`` names.

    Returns:
        The typed tables, the cohorts YAML text and the merged settings.

    Raises:
        ReferenceError: a required file is missing, or any file breaks a rule.
    """
    reference_dir = Path(reference_dir)
    if not reference_dir.is_dir():
        raise ReferenceError(f"reference folder {reference_dir} does not exist")
    frames: dict[str, pl.DataFrame] = {}
    for file_name, model in REFERENCE_MODELS.items():
        path = reference_dir / file_name
        if not path.exists() and file_name not in REQUIRED_FILES:
            frames[file_name] = empty_frame(model)
            continue
        frames[file_name] = read_reference_csv(path, model)
    return ReferenceTables(
        acute_tariff=frames["acute_tariff.csv"],
        acute_pod_default=frames["acute_pod_default.csv"],
        unit_costs=frames["unit_costs.csv"],
        block_contracts=frames["block_contracts.csv"],
        cohorts_yaml=read_cohorts_yaml(reference_dir),
        settings=read_settings(reference_dir / SETTINGS_FILE),
    )


def financial_years(unit_costs: pl.DataFrame) -> list[str]:
    """The distinct financial years in ``unit_costs``, earliest first (``2023/24`` …)."""
    return sorted(unit_costs.get_column("financial_year").drop_nulls().unique().to_list())


def polars_schema(model: type[pa.DataFrameModel]) -> pl.Schema:
    """The polars schema (column -> dtype) of every column of ``model``, in model order."""
    return pl.Schema(
        {name: column.dtype.type for name, column in model.to_schema().columns.items()}
    )


def empty_frame(model: type[pa.DataFrameModel]) -> pl.DataFrame:
    """A frame with no rows and ``model``'s columns and dtypes."""
    return pl.DataFrame(schema=polars_schema(model))


def read_reference_csv(path: Path, model: type[pa.DataFrameModel]) -> pl.DataFrame:
    """Read one reference CSV as text, cast it to ``model``'s dtypes and validate it.

    Cells are stripped of surrounding spaces; a blank cell is null. Rows that are blank in
    every column (a trailing ``,,,`` from a spreadsheet) are skipped; row numbers still
    count them, so row n is line n + 1 of the file. Columns other than the model's are
    ignored.

    Raises:
        ReferenceError: listing every problem found, each naming file, row and column.
    """
    file_name = path.name
    if not path.is_file():
        raise ReferenceError(f"{path}: required reference file is missing")
    text = _decode(path.read_bytes())
    header = next(csv.reader(io.StringIO(text)), None)
    if not header:
        raise ReferenceError(f"{path}: the file is empty (no header row)")
    # A blank header cell (a spreadsheet's trailing comma) names an ignored extra column.
    header = [name.strip() or f"_unnamed_{i}" for i, name in enumerate(header)]
    problems = _header_problems(file_name, header, model)
    if problems:
        raise ReferenceError(f"{path}: the header does not match the data contract", problems)

    try:
        raw = pl.read_csv(
            text.encode("utf-8"),
            infer_schema=False,
            new_columns=header,
            raise_if_empty=False,
        )
    except pl.exceptions.ComputeError as exc:
        raise ReferenceError(
            f"{path}: could not be read as CSV", _ragged_rows(file_name, text, len(header))
        ) from exc

    schema = model.to_schema()
    wanted = [name for name in schema.columns if name in header]
    raw = (
        raw.select(
            [pl.col(name).str.strip_chars().replace("", None).alias(name) for name in wanted]
        )
        .with_row_index("_row", offset=1)
        .filter(~pl.all_horizontal(pl.col(wanted).is_null()))
    )
    rows = raw.get_column("_row").to_list()

    typed, problems = _cast(file_name, raw, model)
    problems += _validation_problems(file_name, raw, typed, model, rows)
    problems += _duplicate_problems(file_name, raw, model, rows)
    if not problems and file_name in REQUIRED_FILES and typed.height == 0:
        problems.append(
            ReferenceProblem(
                file_name, None, None, "has a header but no rows; it needs at least one"
            )
        )
    if problems:
        problems.sort(key=lambda p: (p.row or 0, _column_order(schema.columns, p.column)))
        raise ReferenceError(f"{path}: {len(problems)} problem(s) found", problems)
    return typed


def read_cohorts_yaml(reference_dir: Path) -> str:
    """The text of ``cohorts.yaml`` in ``reference_dir``, else of the shipped eight cohorts."""
    path = Path(reference_dir) / COHORTS_FILE
    if path.is_file():
        return _decode(path.read_bytes())
    return default_cohorts_yaml()


def default_cohorts_yaml() -> str:
    """The shipped ``cohorts.yaml`` (the eight IPC cohorts), packaged with ``schemas``."""
    # Beside this module (package-data ``schemas/*.yaml``); a path from ``__file__`` rather
    # than importlib.resources, which resolves "schemas" through sys.modules.
    return (Path(__file__).parent / DEFAULT_COHORTS_RESOURCE).read_text("utf-8")


def read_settings(path: Path) -> dict[str, Any]:
    """``settings.yaml`` merged over :data:`DEFAULT_SETTINGS` (the defaults when absent).

    Nested sections merge key by key (``disclosure: {threshold: 10}`` keeps the default
    rounding); ``recipients_open_pseudonymiser`` is taken whole. Unknown keys, wrong types
    and a lowered threshold, rounding or k without an ``override`` reason are errors.

    Raises:
        ReferenceError: naming the file and the setting.
    """
    settings = copy.deepcopy(DEFAULT_SETTINGS)
    path = Path(path)
    if not path.is_file():
        return settings
    file_name = path.name
    try:
        loaded = yaml.safe_load(_decode(path.read_bytes()))
    except yaml.YAMLError as exc:
        raise ReferenceError(f"{path}: not valid YAML: {exc}") from exc
    if loaded is None:
        return settings
    if not isinstance(loaded, Mapping):
        raise ReferenceError(f"{path}: must be a mapping of setting names to values")

    problems: list[ReferenceProblem] = []

    def problem(key: str, rule: str, value: Any = None) -> None:
        problems.append(ReferenceProblem(file_name, None, key, rule, value, what="setting"))

    for key, value in loaded.items():
        if key not in DEFAULT_SETTINGS:
            problem(str(key), "unknown setting; known: " + ", ".join(DEFAULT_SETTINGS))
        elif isinstance(DEFAULT_SETTINGS[key], dict) and key != "recipients_open_pseudonymiser":
            if not isinstance(value, Mapping):
                problem(key, "must be a mapping", value)
                continue
            for sub, sub_value in value.items():
                if sub not in DEFAULT_SETTINGS[key]:
                    known = ", ".join(DEFAULT_SETTINGS[key])
                    problem(f"{key}.{sub}", f"unknown setting; known under {key}: {known}")
                else:
                    settings[key][sub] = sub_value
        else:
            settings[key] = value

    problems += _settings_problems(file_name, settings)
    if problems:
        raise ReferenceError(f"{path}: {len(problems)} problem(s) found", problems)
    return settings


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    """UTF-8 (with or without a byte-order mark), else Windows-1252 as spreadsheets save."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _header_problems(
    file_name: str, header: list[str], model: type[pa.DataFrameModel]
) -> list[ReferenceProblem]:
    problems = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(
                ReferenceProblem(file_name, None, name, "appears more than once in the header")
            )
        seen.add(name)
    for name, column in model.to_schema().columns.items():
        if column.required and name not in seen:
            problems.append(
                ReferenceProblem(
                    file_name,
                    None,
                    name,
                    "required column is missing from the header (columns found: "
                    + ", ".join(header)
                    + ")",
                )
            )
    return problems


def _ragged_rows(file_name: str, text: str, width: int) -> list[ReferenceProblem]:
    problems = []
    for row, fields in enumerate(csv.reader(io.StringIO(text))):
        if row > 0 and len(fields) > width:
            problems.append(
                ReferenceProblem(
                    file_name, row, None, f"has {len(fields)} fields, the header has {width}"
                )
            )
    if not problems:
        problems.append(ReferenceProblem(file_name, None, None, "is not a well-formed CSV file"))
    return problems


def _cast(
    file_name: str, raw: pl.DataFrame, model: type[pa.DataFrameModel]
) -> tuple[pl.DataFrame, list[ReferenceProblem]]:
    """Cast text columns to the model's dtypes; a value that will not cast is a problem."""
    problems: list[ReferenceProblem] = []
    exprs = []
    for name, dtype in polars_schema(model).items():
        if name not in raw.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        cast = pl.col(name).cast(dtype, strict=False)
        exprs.append(cast)
        if dtype == pl.String:
            continue
        bad = raw.filter(pl.col(name).is_not_null() & cast.is_null())
        rule = "must be a whole number" if dtype.is_integer() else "must be a number"
        problems += [
            ReferenceProblem(file_name, row, name, rule, value)
            for row, value in bad.select("_row", name).iter_rows()
        ]
    return raw.select(exprs), problems


def _validation_problems(
    file_name: str,
    raw: pl.DataFrame,
    typed: pl.DataFrame,
    model: type[pa.DataFrameModel],
    rows: list[int],
) -> list[ReferenceProblem]:
    """Run the pandera model and turn its failure cases into problems with row numbers.

    Values that did not cast are already reported, so their (now null) cells are skipped;
    uniqueness is reported by :func:`_duplicate_problems` with the rows it repeats.
    """
    schema = model.to_schema()
    try:
        model.validate(typed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return []
    problems = []
    for case in cases.iter_rows(named=True):
        column, index = case["column"], case["index"]
        if case["check"] == "multiple_fields_uniqueness":
            continue
        if column not in schema.columns or index is None:
            # Not tied to a cell (none expected once the header is checked and the values
            # cast): still a failure, so report it rather than pass the table.
            where = column if column in schema.columns else None
            problems.append(ReferenceProblem(file_name, None, where, f"fails {case['check']}"))
            continue
        raw_value = raw.get_column(column)[index] if column in raw.columns else None
        if case["check"] == "not_nullable":
            if raw_value is not None:  # did not cast: reported already
                continue
            rule = "must not be blank"
        else:
            check_number = case["check_number"]
            rule = rule_text(schema.columns[column].checks[check_number])
        problems.append(ReferenceProblem(file_name, rows[index], column, rule, raw_value))
    return problems


def _duplicate_problems(
    file_name: str, raw: pl.DataFrame, model: type[pa.DataFrameModel], rows: list[int]
) -> list[ReferenceProblem]:
    key = model.to_schema().unique
    if not key:
        return []
    key = [key] if isinstance(key, str) else list(key)
    if any(name not in raw.columns for name in key):
        return []
    problems = []
    first_row: dict[tuple[Any, ...], int] = {}
    for row, *values in raw.select("_row", *key).iter_rows():
        value_key = tuple(values)
        if value_key in first_row:
            shown = ", ".join("(blank)" if v is None else str(v) for v in values)
            problems.append(
                ReferenceProblem(
                    file_name,
                    row,
                    ", ".join(key),
                    f"repeats row {first_row[value_key]}: each "
                    f"({', '.join(key)}) may appear only once",
                    shown,
                    what="columns",
                )
            )
        else:
            first_row[value_key] = row
    return problems


def _column_order(columns: Mapping[str, Any], column: str | None) -> int:
    names = list(columns)
    first = (column or "").split(",")[0]
    return names.index(first) if first in names else len(names)


def rule_text(check: Check) -> str:
    """A pandera check as a plain-English rule ("must be one of EL, NEL, …")."""
    stats = check.statistics or {}
    name = check.name
    if name == "isin":
        return "must be one of " + ", ".join(str(v) or "(blank)" for v in stats["allowed_values"])
    if name == "in_range":
        low, high = stats["min_value"], stats["max_value"]
        if low == 0 and high == math.inf and not stats.get("include_max", True):
            return "must be a number, 0 or more"
        return f"must be between {low} and {high}"
    if name == "greater_than_or_equal_to":
        return f"must be {stats['min_value']} or more"
    if name == "greater_than":
        return f"must be more than {stats['min_value']}"
    if name == "less_than_or_equal_to":
        return f"must be {stats['max_value']} or less"
    if name == "str_matches":
        return f"must match the pattern {stats['pattern']}"
    if name == "equal_to":
        return f"must equal {stats['value']}"
    return str(check.description or check.error or name)


def _settings_problems(file_name: str, settings: dict[str, Any]) -> list[ReferenceProblem]:
    problems: list[ReferenceProblem] = []

    def problem(key: str, rule: str, value: Any) -> None:
        problems.append(ReferenceProblem(file_name, None, key, rule, value, what="setting"))

    cashable = settings["cashable_settings"]
    if (
        not isinstance(cashable, list)
        or not cashable
        or any(s not in SETTINGS for s in cashable)
        or len(set(cashable)) != len(cashable)
    ):
        problem(
            "cashable_settings",
            "must be a non-empty list of distinct settings from: " + ", ".join(SETTINGS),
            cashable,
        )
    for (section, key), minimum in _MINIMUMS.items():
        value = settings[section][key]
        override = settings[section]["override"]
        dotted = f"{section}.{key}"
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            problem(dotted, f"must be a whole number, {minimum} or more", value)
            continue
        floor = _FLOORS[(section, key)]
        if value < floor and not (isinstance(override, str) and override.strip()):
            problem(
                dotted,
                f"is below the default {floor}: lowering it needs an explicit "
                f"{section}.override giving the reason (recorded in the manifest)",
                value,
            )
    for section in ("disclosure", "k_anonymity"):
        override = settings[section]["override"]
        if override is not None and not (isinstance(override, str) and override.strip()):
            problem(f"{section}.override", "must be a reason written as text", override)
    recipients = settings["recipients_open_pseudonymiser"]
    if not isinstance(recipients, Mapping):
        problem("recipients_open_pseudonymiser", "must be a mapping of recipient names", recipients)
    else:
        for name in recipients:
            if not isinstance(name, str) or not _RECIPIENT_NAME.match(name):
                problem(
                    "recipients_open_pseudonymiser",
                    "recipient names use letters, digits, '_' and '-' only",
                    name,
                )
    return problems
