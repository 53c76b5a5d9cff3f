"""What the pipeline writes (data-contract.md section 4), as pandera models.

One model per export. The contract lists the columns each export has "at least", so the
models accept extra columns (``strict = False``) but require every listed one with its
type. Every model also refuses a column named like a raw identifier or an exact activity
date (``nhs_number``, ``date_of_birth``, ``postcode``, ``start_date`` …): nothing in an
export may hold one.

These frames are pseudonymised or aggregate, so a failed check may be shown as pandera
reports it. ``EXPORT_MODELS`` maps each export's name to its model and ``EXPORT_PATHS``
to where it is written.
"""

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from schemas.reference import NON_NEGATIVE, FinancialYearModel, polars_schema
from schemas.sources import RAW_IDENTIFIER_COLUMNS, SETTINGS, SOURCE_NAMES, SOURCES

__all__ = [
    "AGE_BANDS",
    "COARSE_AGE_BANDS",
    "COST_BASES",
    "EXPORT_MODELS",
    "EXPORT_PATHS",
    "FORBIDDEN_EXPORT_COLUMNS",
    "SEX_CODES",
    "Activity",
    "CohortFundingBands",
    "CohortReferenceCosts",
    "IndividualStatement",
    "PersonCosts",
    "Persons",
    "Reconciliation",
    "polars_schema",
]

#: Age bands by age on 1 April of the financial year.
AGE_BANDS: tuple[str, ...] = ("0-17", "18-64", "65-74", "75-84", "85+")
#: Bands ``linked/`` may coarsen to for k-anonymity (besides blank).
COARSE_AGE_BANDS: tuple[str, ...] = ("0-17", "18-64", "65+")
#: The contract's sex codes; a blank is written ``0``.
SEX_CODES: tuple[str, ...] = ("0", "1", "2", "9")
COST_BASES: tuple[str, ...] = (
    "tariff",
    "pod_default",
    "national_unit_cost",
    "block_local",
    "package",
    "unpriced",
)
BUDGET_BASES: tuple[str, ...] = ("band", "cohort", "none", "suppressed")
#: Outward code of a UK postcode (``TS18``, ``DL5``, ``SW1A``).
POSTCODE_DISTRICT_PATTERN = r"^[A-Z]{1,2}[0-9][A-Z0-9]?$"
#: Column names no export may carry: raw identifiers and every exact date of an extract.
FORBIDDEN_EXPORT_COLUMNS: frozenset[str] = frozenset(RAW_IDENTIFIER_COLUMNS) | {
    column for source in SOURCES for column in source.date_columns
}

#: Cost of a row may differ from the sum of its parts by float rounding only.
_PENNY = 0.005

_SETTINGS_TEXT = ", ".join(f"`{s}`" for s in SETTINGS)
FINANCIAL_YEAR = "Financial year, written `2024/25` (1 April 2024 to 31 March 2025)."
SEX = "`1` male, `2` female, `9` indeterminate, `0` not known (a blank is written `0`)."
COHORTS = (
    "The cohorts the person is in that year, in `cohorts.yaml` order (the first is the "
    "primary cohort); empty when in none."
)
INTERNAL_PERSON_ID = (
    "The internal pseudonym: keyed HMAC of the NHS number for people linked in stages 1-3, "
    "of the source and local patient id (or source, file and row) for stage-4 people. A key "
    "holder can recompute it; no one else can."
)
RECIPIENT_PERSON_ID = (
    "The person's pseudonym for this recipient: the same person has a different id for "
    "every recipient, so two recipients cannot join their copies."
)


def _sum_matches(total: str, parts: list[str]) -> pl.Expr:
    return (pl.col(total) - pl.sum_horizontal(parts)).abs() <= _PENNY


class ExportModel(pa.DataFrameModel):
    """Base for export models: no column may be named like an identifier or exact date."""

    @pa.dataframe_check(
        name="no_identifier_columns",
        error="holds a column named like an identifier or exact date",
        description="No column is named like an identifier or exact date ("
        + ", ".join(f"`{c}`" for c in sorted(FORBIDDEN_EXPORT_COLUMNS))
        + ").",
    )
    def no_identifier_columns(cls, data: PolarsData) -> bool:
        return not FORBIDDEN_EXPORT_COLUMNS & set(data.lazyframe.collect_schema().names())


class Activity(ExportModel, FinancialYearModel):
    """Linked activity: one row per accepted activity and financial year it falls in."""

    person_id: str = pa.Field(description=RECIPIENT_PERSON_ID)
    source: str = pa.Field(
        isin=SOURCE_NAMES,
        description="The landing file's name (`acute`, `chc`, … `social_care`).",
    )
    setting: str = pa.Field(isin=SETTINGS, description=f"Care setting: {_SETTINGS_TEXT}.")
    service: str = pa.Field(
        nullable=True,
        description=(
            "Acute `pod`, CHC `care_setting`, community `service`, mental health `service`, "
            "primary care `staff_type`, social care `service_type`, as the extract wrote it "
            "(blank if the extract left it blank)."
        ),
    )
    activity_month: str = pa.Field(
        str_matches=r"^\d{4}-(0[1-9]|1[0-2])$",
        description=(
            "`YYYY-MM`: the month the activity's part in this financial year starts (the "
            "later of its start date and 1 April of the year). Never an exact date."
        ),
    )
    financial_year: str = pa.Field(description=FINANCIAL_YEAR)
    cost: float = pa.Field(
        in_range=NON_NEGATIVE,
        description=(
            "Gross cost in GBP of the activity's part in this year, full precision; 0 for a "
            "missed appointment or an unpriced activity."
        ),
    )
    cost_basis: str = pa.Field(
        isin=COST_BASES,
        description=(
            "Which rule priced it: `tariff`, `pod_default`, `national_unit_cost`, "
            "`block_local`, `package` or `unpriced` (costing-method.md section 2)."
        ),
    )
    net_cost: float | None = pa.Field(
        in_range=NON_NEGATIVE,
        description=(
            "Cost net of the client contribution (social care; equal to `cost` "
            "elsewhere), never below 0."
        ),
    )
    units: float | None = pa.Field(
        in_range=NON_NEGATIVE,
        nullable=True,
        description="The units costed: contacts, bed days or active days.",
    )

    @pa.dataframe_check(
        name="net_cost_not_above_cost",
        error="net_cost is more than cost",
        description="`net_cost`, when present, is no more than `cost`.",
    )
    def net_cost_not_above_cost(cls, data: PolarsData) -> pl.LazyFrame | bool:
        if "net_cost" not in data.lazyframe.collect_schema().names():
            return True
        return data.lazyframe.select(pl.col("net_cost") <= pl.col("cost") + _PENNY)

    class Config:
        name = "activity"
        description = (
            "For a recipient (a large year may be split as `<YYYY-YY>-<n>.parquet`). One row "
            "per accepted activity and financial year it falls in (a package or stay spanning "
            "two years has two rows)."
        )
        strict = False


class Persons(ExportModel, FinancialYearModel):
    """Linked persons: one row per person and financial year, after k-anonymity."""

    person_id: str = pa.Field(description=RECIPIENT_PERSON_ID)
    financial_year: str = pa.Field(description=FINANCIAL_YEAR)
    age_band: str = pa.Field(
        isin=(*AGE_BANDS, "65+"),
        nullable=True,
        description=(
            "Age on 1 April of the year: `0-17`, `18-64`, `65-74`, `75-84`, `85+`; "
            "k-anonymity may coarsen it to `0-17`, `18-64` or `65+`, or blank it."
        ),
    )
    sex: str = pa.Field(isin=SEX_CODES, description=SEX + " K-anonymity may generalise it to `0`.")
    postcode_district: str = pa.Field(
        nullable=True,
        description=(
            "Outward code of the postcode (`TS18`); blank when unknown or generalised for "
            "k-anonymity. Never a full postcode."
        ),
    )
    cohorts: pl.List = pa.Field(dtype_kwargs={"inner": pl.String()}, description=COHORTS)

    @pa.check(
        "postcode_district",
        name="postcode_district_format",
        error="must be an outward code",
        description="blank or an outward code (`TS18`, `SW1A`), never a full postcode",
    )
    def postcode_district_format(cls, data: PolarsData) -> pl.LazyFrame:
        column = pl.col(data.key)
        return data.lazyframe.select(
            (column == "") | column.str.contains(POSTCODE_DISTRICT_PATTERN)
        )

    class Config:
        name = "persons"
        description = (
            "For a recipient, after k-anonymity. One row per person and financial year. "
            "Date of birth, sex and postcode come from the person's first accepted row."
        )
        unique = ["person_id", "financial_year"]  # noqa: RUF012
        strict = False


_COST_COLUMNS = [f"cost_{s}" for s in SETTINGS]
_MEAN_COST_COLUMNS = [f"mean_cost_{s}" for s in SETTINGS]


class PersonCosts(ExportModel, FinancialYearModel):
    """Person-level costs: one row per person and financial year, under the internal id."""

    person_id: str = pa.Field(description=INTERNAL_PERSON_ID)
    financial_year: str = pa.Field(description=FINANCIAL_YEAR)
    age_band: str = pa.Field(
        isin=AGE_BANDS,
        description="Age on 1 April of the year: `0-17`, `18-64`, `65-74`, `75-84`, `85+`.",
    )
    sex: str = pa.Field(isin=SEX_CODES, description=SEX)
    cost_acute: float = pa.Field(in_range=NON_NEGATIVE, description="GBP, acute activity.")
    cost_chc: float = pa.Field(
        in_range=NON_NEGATIVE, description="GBP, NHS Continuing Healthcare packages."
    )
    cost_community: float = pa.Field(
        in_range=NON_NEGATIVE, description="GBP, community care contacts."
    )
    cost_mental_health: float = pa.Field(
        in_range=NON_NEGATIVE, description="GBP, mental health stays and contacts."
    )
    cost_primary_care: float = pa.Field(
        in_range=NON_NEGATIVE, description="GBP, GP practice consultations."
    )
    cost_social_care: float = pa.Field(
        in_range=NON_NEGATIVE,
        description="GBP, adult social care packages (gross of client contributions).",
    )
    cost_total: float = pa.Field(
        in_range=NON_NEGATIVE,
        description="GBP, the sum of the six settings; 0 for a person on a register only.",
    )
    cohorts: pl.List = pa.Field(dtype_kwargs={"inner": pl.String()}, description=COHORTS)

    @pa.dataframe_check(
        name="cost_total_is_sum",
        error="cost_total differs from the sum of the settings",
        description="`cost_total` is the sum of the six `cost_<setting>` columns (to the penny).",
    )
    def cost_total_is_sum(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_sum_matches("cost_total", _COST_COLUMNS))

    class Config:
        name = "person_costs"
        description = (
            "For the commissioner's own finance team. One row per person and financial year."
        )
        unique = ["person_id", "financial_year"]  # noqa: RUF012
        strict = False


def _suppressed_rows_blank(data: PolarsData, figures: list[str]) -> pl.LazyFrame:
    blank = pl.all_horizontal([pl.col(c).is_null() for c in figures])
    return data.lazyframe.select(~pl.col("suppressed") | blank)


_SUPPRESSED = (
    "True when the row describes 7 or fewer people (but not zero), so its count and "
    "figures are blank."
)


class CohortReferenceCosts(ExportModel, FinancialYearModel):
    """Cohort reference costs: one row per cohort and year, after disclosure control."""

    cohort: str = pa.Field(description="Cohort name, as in `cohorts.yaml`.")
    financial_year: str = pa.Field(description=FINANCIAL_YEAR)
    people: int = pa.Field(
        ge=0,
        nullable=True,
        description=(
            "People in the cohort that year, rounded to the nearest 5; blank when suppressed."
        ),
    )
    mean_cost: float = pa.Field(
        in_range=NON_NEGATIVE,
        nullable=True,
        description="Mean total cost in GBP (from unrounded data); blank when no figures.",
    )
    median_cost: float = pa.Field(
        in_range=NON_NEGATIVE, nullable=True, description="Median total cost in GBP."
    )
    p25_cost: float = pa.Field(
        in_range=NON_NEGATIVE,
        nullable=True,
        description="25th percentile of total cost (linear, as `numpy.percentile`).",
    )
    p75_cost: float = pa.Field(
        in_range=NON_NEGATIVE, nullable=True, description="75th percentile of total cost."
    )
    p90_cost: float = pa.Field(
        in_range=NON_NEGATIVE, nullable=True, description="90th percentile of total cost."
    )
    mean_cost_acute: float = pa.Field(
        in_range=NON_NEGATIVE, nullable=True, description="Mean acute cost in GBP."
    )
    mean_cost_chc: float = pa.Field(
        in_range=NON_NEGATIVE, nullable=True, description="Mean CHC cost in GBP."
    )
    mean_cost_community: float = pa.Field(
        in_range=NON_NEGATIVE, nullable=True, description="Mean community cost in GBP."
    )
    mean_cost_mental_health: float = pa.Field(
        in_range=NON_NEGATIVE, nullable=True, description="Mean mental health cost in GBP."
    )
    mean_cost_primary_care: float = pa.Field(
        in_range=NON_NEGATIVE, nullable=True, description="Mean primary care cost in GBP."
    )
    mean_cost_social_care: float = pa.Field(
        in_range=NON_NEGATIVE, nullable=True, description="Mean social care cost in GBP."
    )
    suppressed: bool = pa.Field(description=_SUPPRESSED)

    @pa.dataframe_check(
        name="suppressed_rows_blank",
        error="a suppressed row shows a count or figure",
        description="A suppressed row shows no count and no figures.",
    )
    def suppressed_rows_blank(cls, data: PolarsData) -> pl.LazyFrame:
        figures = ["people", "mean_cost", "median_cost", "p25_cost", "p75_cost", "p90_cost"]
        return _suppressed_rows_blank(data, figures + _MEAN_COST_COLUMNS)

    class Config:
        name = "cohort_reference_costs"
        description = (
            "Fit to publish, after disclosure control. One row per cohort and financial year "
            "(a cohort with nobody in a year shows 0 people and no figures)."
        )
        unique = ["cohort", "financial_year"]  # noqa: RUF012
        strict = False


class CohortFundingBands(ExportModel, FinancialYearModel):
    """Banded funding levels: five rows per cohort and year, after disclosure control."""

    cohort: str = pa.Field(description="Cohort name, as in `cohorts.yaml`.")
    financial_year: str = pa.Field(description=FINANCIAL_YEAR)
    band: int = pa.Field(
        in_range={"min_value": 1, "max_value": 5},
        description=(
            "Band 1-5, cut at the 20th, 40th, 60th and 80th percentiles of cashable cost "
            "among the cohort's people with non-zero cashable cost."
        ),
    )
    people: int = pa.Field(
        ge=0,
        nullable=True,
        description="People in the band, rounded to the nearest 5; blank when suppressed.",
    )
    lower: float = pa.Field(
        in_range=NON_NEGATIVE,
        nullable=True,
        description="Lower boundary in GBP (0 for band 1); blank when suppressed.",
    )
    upper: float = pa.Field(
        in_range=NON_NEGATIVE,
        nullable=True,
        description=(
            "Upper boundary in GBP (a cost equal to it is in this band); blank for band 5 "
            "and when suppressed."
        ),
    )
    mean_cashable_cost: float = pa.Field(
        in_range=NON_NEGATIVE,
        nullable=True,
        description="Mean cashable cost in GBP of the band's people; blank when suppressed.",
    )
    suppressed: bool = pa.Field(
        description=(
            "True for all five bands of a cohort and year when any of them has 7 or fewer "
            "people (0 included)."
        )
    )

    @pa.dataframe_check(
        name="suppressed_rows_blank",
        error="a suppressed row shows a count or figure",
        description="A suppressed row shows no count and no figures.",
    )
    def suppressed_rows_blank(cls, data: PolarsData) -> pl.LazyFrame:
        return _suppressed_rows_blank(data, ["people", "lower", "upper", "mean_cashable_cost"])

    @pa.dataframe_check(
        name="top_band_open",
        error="band 5 shows an upper boundary",
        description="Band 5 has no `upper` (it would be one person's cost).",
    )
    def top_band_open(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("band") != 5) | pl.col("upper").is_null())

    class Config:
        name = "cohort_funding_bands"
        description = (
            "Fit to publish, after disclosure control. One row per cohort, financial year and "
            "band; every cohort has five band rows per year."
        )
        unique = ["cohort", "financial_year", "band"]  # noqa: RUF012
        strict = False


# -- Individual Statement of Resources (costing-method.md section 6): one JSON object per line


class StatementProfile(pa.DataFrameModel):
    """``profile``: who the person is compared with."""

    cohort: str = pa.Field(description="The person's primary cohort.")
    age_band: str = pa.Field(
        nullable=True, description="The person's age band (the profile's, unless fallen back)."
    )
    people: int = pa.Field(
        ge=0,
        nullable=True,
        description=(
            "People in the profile, rounded to 5; blank when even the whole cohort has 7 or fewer."
        ),
    )
    fallback_to_cohort: bool = pa.Field(
        description="True when the age band had 7 or fewer people and the whole cohort is used."
    )

    class Config:
        strict = False


class StatementProfileMeanCost(pa.DataFrameModel):
    """``profile_mean_cost``: average annual cost per setting of the profile's people."""

    acute: float = pa.Field(in_range=NON_NEGATIVE, nullable=True, description="GBP.")
    chc: float = pa.Field(in_range=NON_NEGATIVE, nullable=True, description="GBP.")
    community: float = pa.Field(in_range=NON_NEGATIVE, nullable=True, description="GBP.")
    mental_health: float = pa.Field(in_range=NON_NEGATIVE, nullable=True, description="GBP.")
    primary_care: float = pa.Field(in_range=NON_NEGATIVE, nullable=True, description="GBP.")
    social_care: float = pa.Field(in_range=NON_NEGATIVE, nullable=True, description="GBP.")
    total: float = pa.Field(
        in_range=NON_NEGATIVE, nullable=True, description="GBP; all blank when no figures."
    )

    class Config:
        strict = False


class StatementOwnCost(pa.DataFrameModel):
    """``own_cost``: the person's own retrospective cost per setting that year."""

    acute: float = pa.Field(in_range=NON_NEGATIVE, description="GBP.")
    chc: float = pa.Field(in_range=NON_NEGATIVE, description="GBP.")
    community: float = pa.Field(in_range=NON_NEGATIVE, description="GBP.")
    mental_health: float = pa.Field(in_range=NON_NEGATIVE, description="GBP.")
    primary_care: float = pa.Field(in_range=NON_NEGATIVE, description="GBP.")
    social_care: float = pa.Field(in_range=NON_NEGATIVE, description="GBP.")
    total: float = pa.Field(in_range=NON_NEGATIVE, description="GBP, the sum of the six.")

    class Config:
        strict = False


class StatementIndicativeBudget(pa.DataFrameModel):
    """``indicative_budget``: the mean of the funding band the person falls in."""

    amount: float = pa.Field(
        in_range=NON_NEGATIVE,
        nullable=True,
        description=(
            "GBP: the band's mean cashable cost; 0 with no cashable cost; the cohort's mean "
            "when the band is suppressed; blank when that too covers 7 or fewer people."
        ),
    )
    band: int = pa.Field(
        in_range={"min_value": 1, "max_value": 5},
        nullable=True,
        description="The person's band 1-5; blank when none or suppressed.",
    )
    band_lower: float = pa.Field(
        in_range=NON_NEGATIVE, nullable=True, description="GBP, the band's lower boundary."
    )
    band_upper: float = pa.Field(
        in_range=NON_NEGATIVE,
        nullable=True,
        description="GBP, the band's upper boundary; blank for band 5.",
    )
    basis: str = pa.Field(
        isin=BUDGET_BASES,
        description=(
            "`band` (the band's mean), `cohort` (band suppressed: the cohort's mean), `none` "
            "(no cashable cost) or `suppressed` (no amount can be given)."
        ),
    )
    cashable_settings: pl.List = pa.Field(
        dtype_kwargs={"inner": pl.String()},
        description="The settings summed into cashable cost (`settings.yaml`).",
    )

    class Config:
        strict = False


class IndividualStatement(ExportModel, FinancialYearModel):
    """Individual Statement of Resources: one per person and year in an IPC cohort."""

    person_id: str = pa.Field(description=INTERNAL_PERSON_ID)
    financial_year: str = pa.Field(description=FINANCIAL_YEAR)
    cohorts: pl.List = pa.Field(dtype_kwargs={"inner": pl.String()}, description=COHORTS)
    primary_cohort: str = pa.Field(
        description="The first of the person's cohorts in `cohorts.yaml` order (never `high_cost`)."
    )
    age_band: str = pa.Field(isin=AGE_BANDS, description="The person's age band that year.")
    profile: StatementProfile = pa.Field(description="Who the person is compared with.")
    profile_mean_cost: StatementProfileMeanCost = pa.Field(
        description="Average annual cost by setting of people of the same profile."
    )
    own_cost: StatementOwnCost = pa.Field(
        description="The person's own retrospective cost by setting."
    )
    indicative_budget: StatementIndicativeBudget = pa.Field(
        description="Indicative personal budget from the banded funding levels."
    )

    class Config:
        name = "individual_statements"
        description = (
            "For care coordinators. One JSON object per line, one per person and year in any "
            "cohort but `high_cost` (costing-method.md section 6). Read with "
            "`pl.read_ndjson(path, schema=polars_schema(IndividualStatement))`."
        )
        unique = ["person_id", "financial_year"]  # noqa: RUF012
        strict = False


class Reconciliation(ExportModel):
    """Reconciliation: one row per landing file, exact row counts for the operators."""

    source: str = pa.Field(
        isin=SOURCE_NAMES, description="The landing file's name (`acute` … `social_care`)."
    )
    encoding: str = pa.Field(
        description="Encoding the file was read in: UTF-8, or Windows-1252 when not valid UTF-8."
    )
    rows_read: int = pa.Field(ge=0, description="Data rows read (header excluded).")
    rows_accepted: int = pa.Field(ge=0, description="Rows accepted (not quarantined).")
    rows_quarantined: int = pa.Field(
        ge=0, description="Rows quarantined, whatever the reason (rows_replaced included)."
    )
    rows_replaced: int = pa.Field(
        ge=0, description="Rows quarantined because a re-delivered row with the same id won."
    )
    rows_linked_nhs_number: int = pa.Field(
        ge=0, description="Accepted rows linked by a valid NHS number (cascade stage 1)."
    )
    rows_linked_other: int = pa.Field(
        ge=0, description="Accepted rows linked by cascade stages 2 and 3."
    )
    rows_linked_local_id: int = pa.Field(
        ge=0, description="Accepted rows linked by local patient id (stage 2)."
    )
    rows_linked_demographic: int = pa.Field(
        ge=0, description="Accepted rows linked by name, date of birth and sex (stage 3)."
    )
    rows_unlinked: int = pa.Field(
        ge=0, description="Accepted rows not linked (stage 4): costed and counted all the same."
    )
    open_spells: int = pa.Field(
        ge=0, description="Acute spells with no discharge inside the period: not costed yet."
    )
    rows_out_of_period: int = pa.Field(
        ge=0, description="Accepted rows wholly outside the period: not costed."
    )
    rows_unpriced: int = pa.Field(
        ge=0, description="Accepted rows no rule could price (kept with cost 0)."
    )
    cost_total: float = pa.Field(
        in_range=NON_NEGATIVE,
        description="Gross cost in GBP of the accepted rows over all years.",
    )
    net_cost_total: float = pa.Field(
        in_range=NON_NEGATIVE,
        description="Cost net of client contributions in GBP (differs only for social care).",
    )

    @pa.dataframe_check(
        name="rows_add_up",
        error="rows_accepted + rows_quarantined differs from rows_read",
        description="`rows_accepted` + `rows_quarantined` = `rows_read`.",
    )
    def rows_add_up(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("rows_accepted") + pl.col("rows_quarantined") == pl.col("rows_read")
        )

    @pa.dataframe_check(
        name="linkage_adds_up",
        error="rows_linked_nhs_number + rows_linked_other + rows_unlinked differs from "
        "rows_accepted",
        description="`rows_linked_nhs_number` + `rows_linked_other` + `rows_unlinked` = "
        "`rows_accepted`.",
    )
    def linkage_adds_up(cls, data: PolarsData) -> pl.LazyFrame:
        linked = (
            pl.col("rows_linked_nhs_number") + pl.col("rows_linked_other") + pl.col("rows_unlinked")
        )
        return data.lazyframe.select(linked == pl.col("rows_accepted"))

    @pa.dataframe_check(
        name="linked_other_adds_up",
        error="rows_linked_local_id + rows_linked_demographic differs from rows_linked_other",
        description="`rows_linked_local_id` + `rows_linked_demographic` = `rows_linked_other`.",
    )
    def linked_other_adds_up(cls, data: PolarsData) -> pl.LazyFrame:
        parts = pl.col("rows_linked_local_id") + pl.col("rows_linked_demographic")
        return data.lazyframe.select(parts == pl.col("rows_linked_other"))

    @pa.dataframe_check(
        name="subsets_within_totals",
        error="rows_replaced exceeds rows_quarantined, or open_spells, rows_out_of_period "
        "or rows_unpriced exceeds rows_accepted",
        description="`rows_replaced` ≤ `rows_quarantined`; `open_spells`, "
        "`rows_out_of_period` and `rows_unpriced` ≤ `rows_accepted`.",
    )
    def subsets_within_totals(cls, data: PolarsData) -> pl.LazyFrame:
        accepted = pl.col("rows_accepted")
        return data.lazyframe.select(
            (pl.col("rows_replaced") <= pl.col("rows_quarantined"))
            & (pl.col("open_spells") <= accepted)
            & (pl.col("rows_out_of_period") <= accepted)
            & (pl.col("rows_unpriced") <= accepted)
        )

    class Config:
        name = "reconciliation"
        description = (
            "For the pipeline's operators (exact row counts). One row per landing file name."
        )
        unique = ["source"]  # noqa: RUF012
        strict = False


#: Export name -> model, in the order of data-contract.md section 4.
EXPORT_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "activity": Activity,
    "persons": Persons,
    "person_costs": PersonCosts,
    "cohort_reference_costs": CohortReferenceCosts,
    "cohort_funding_bands": CohortFundingBands,
    "individual_statements": IndividualStatement,
    "reconciliation": Reconciliation,
}

#: Export name -> where it is written, relative to ``IPC_EXPORT_DIR``.
EXPORT_PATHS: dict[str, str] = {
    "activity": "linked/<recipient>/activity/<YYYY-YY>.parquet",
    "persons": "linked/<recipient>/persons.parquet",
    "person_costs": "person_costs.parquet",
    "cohort_reference_costs": "cohort_reference_costs.parquet, cohort_reference_costs.csv",
    "cohort_funding_bands": "cohort_funding_bands.parquet, cohort_funding_bands.csv",
    "individual_statements": "individual_statements/<YYYY-YY>.jsonl",
    "reconciliation": "reconciliation.parquet",
}
