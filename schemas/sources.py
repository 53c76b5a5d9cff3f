"""The seven landing sources of data-contract.md section 2, as data.

One home for which columns each extract carries, which of them identify a person,
which are dates or numbers, and what a row's id is. Validation, pseudonymisation,
linkage and costing all read these definitions, so a new source (education, an IPC
register) is a new entry here plus its rules, not a rewrite.
"""

from dataclasses import dataclass

#: Columns that identify a person. Only ``pseudonymise/`` ever reads their values.
IDENTIFIER_COLUMNS: tuple[str, ...] = (
    "nhs_number",
    "local_patient_id",
    "date_of_birth",
    "sex",
    "postcode",
)
NAME_COLUMNS: tuple[str, ...] = ("given_name", "family_name")
#: Identifier columns whose raw values must never leave the pseudonymisation step.
RAW_IDENTIFIER_COLUMNS: tuple[str, ...] = (
    "nhs_number",
    "local_patient_id",
    "date_of_birth",
    "postcode",
    "given_name",
    "family_name",
)


@dataclass(frozen=True)
class SourceSpec:
    """One landing source: its file name, columns and validation rules.

    Attributes:
        name: the landing file's name without ``.csv`` (also the source's name).
        setting: the care setting its costs are reported under.
        id_columns: the columns that make a row's id (duplicates are quarantined).
        activity_columns: the source's own columns, in the contract's order.
        required_dates / optional_dates: date columns; required ones must parse.
        required_numbers / optional_numbers: numeric columns (all must be >= 0).
        has_names: whether the extract carries ``given_name`` and ``family_name``.
        linkage_group: sources sharing local ids for cascade stages 2 and 4.
        service_column: the column reported as ``service`` in exports.
        date_columns_in_order: every date column in the contract's column order.
    """

    name: str
    setting: str
    id_columns: tuple[str, ...]
    activity_columns: tuple[str, ...]
    required_dates: tuple[str, ...]
    optional_dates: tuple[str, ...] = ()
    required_numbers: tuple[str, ...] = ()
    optional_numbers: tuple[str, ...] = ()
    has_names: bool = False
    linkage_group: str = ""
    service_column: str = ""

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"

    @property
    def group(self) -> str:
        """The source name used for local ids (stages 2 and 4) and stage-4 person ids."""
        return self.linkage_group or self.name

    @property
    def required_columns(self) -> tuple[str, ...]:
        names = NAME_COLUMNS if self.has_names else ()
        return IDENTIFIER_COLUMNS + names + self.activity_columns

    @property
    def optional_columns(self) -> tuple[str, ...]:
        """Columns a file may leave out (read as blank): the contract's optional names."""
        return NAME_COLUMNS if self.has_names else ()

    @property
    def date_columns(self) -> tuple[str, ...]:
        """Date columns in table order (the order reason codes are written in)."""
        dates = set(self.required_dates) | set(self.optional_dates)
        return tuple(c for c in self.required_columns if c in dates)

    @property
    def number_columns(self) -> tuple[str, ...]:
        numbers = set(self.required_numbers) | set(self.optional_numbers)
        return tuple(c for c in self.required_columns if c in numbers)

    @property
    def record_id_column(self) -> str | None:
        """The single column naming the activity, or None (registers have none)."""
        return self.id_columns[0] if len(self.id_columns) == 1 else None


SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec(
        name="acute",
        setting="acute",
        id_columns=("activity_id",),
        activity_columns=(
            "activity_id",
            "provider_code",
            "pod",
            "start_date",
            "end_date",
            "hrg_code",
            "primary_diagnosis",
        ),
        required_dates=("date_of_birth", "start_date"),
        optional_dates=("end_date",),
        service_column="pod",
    ),
    SourceSpec(
        name="chc",
        setting="chc",
        id_columns=("package_id",),
        activity_columns=(
            "package_id",
            "care_setting",
            "funding_stream",
            "start_date",
            "end_date",
            "weekly_cost",
        ),
        required_dates=("date_of_birth", "start_date"),
        optional_dates=("end_date",),
        required_numbers=("weekly_cost",),
        service_column="care_setting",
    ),
    SourceSpec(
        name="community",
        setting="community",
        id_columns=("contact_id",),
        activity_columns=(
            "contact_id",
            "provider_code",
            "service",
            "contact_date",
            "contact_mode",
            "duration_minutes",
            "attended",
        ),
        required_dates=("date_of_birth", "contact_date"),
        required_numbers=("duration_minutes",),
        service_column="service",
    ),
    SourceSpec(
        name="mental_health",
        setting="mental_health",
        id_columns=("record_id",),
        activity_columns=(
            "record_id",
            "provider_code",
            "record_type",
            "service",
            "start_date",
            "end_date",
            "cpa",
        ),
        required_dates=("date_of_birth", "start_date"),
        optional_dates=("end_date",),
        service_column="service",
    ),
    SourceSpec(
        name="primary_care_events",
        setting="primary_care",
        id_columns=("event_id",),
        activity_columns=("event_id", "practice_code", "event_date", "staff_type", "mode"),
        required_dates=("date_of_birth", "event_date"),
        has_names=True,
        linkage_group="primary_care",
        service_column="staff_type",
    ),
    SourceSpec(
        name="primary_care_registers",
        setting="primary_care",
        id_columns=("nhs_number", "local_patient_id", "register"),
        activity_columns=("register", "diagnosis_date"),
        required_dates=("date_of_birth", "diagnosis_date"),
        has_names=True,
        linkage_group="primary_care",
        service_column="register",
    ),
    SourceSpec(
        name="social_care",
        setting="social_care",
        id_columns=("service_id",),
        activity_columns=(
            "service_id",
            "service_type",
            "start_date",
            "end_date",
            "planned_units_per_week",
            "unit_type",
            "unit_cost",
            "client_contribution_weekly",
        ),
        required_dates=("date_of_birth", "start_date"),
        optional_dates=("end_date",),
        required_numbers=("planned_units_per_week", "unit_cost"),
        optional_numbers=("client_contribution_weekly",),
        has_names=True,
        service_column="service_type",
    ),
)

SOURCE_BY_NAME: dict[str, SourceSpec] = {s.name: s for s in SOURCES}
SOURCE_NAMES: tuple[str, ...] = tuple(s.name for s in SOURCES)
SETTINGS: tuple[str, ...] = (
    "acute",
    "chc",
    "community",
    "mental_health",
    "primary_care",
    "social_care",
)
