"""The landing extracts (data-contract.md section 2) as pandera models of their raw text.

Each model lists the columns of one landing file as they arrive: every column is text and
may be blank, because that is what the file holds before ``pseudonymise/`` parses it. The
models are generated from :mod:`schemas.sources` (which columns a source carries) and the
contract's column notes below (what each column means), so the two cannot drift.

These models document the contract and feed the data dictionary. Raw validation happens in
``pseudonymise/``, which reports counts and reason codes only: never validate a raw extract
with these models in a way that reports failure cases, because failure cases are raw
identifiable values.
"""

import pandera.polars as pa

from schemas.sources import SOURCES, SourceSpec

#: What each contract column holds: (type, notes), as the tables of section 2 write them.
IDENTIFIER_NOTES: dict[str, tuple[str, str]] = {
    "nhs_number": (
        "text",
        "10 digits, may contain spaces or hyphens (`999 456 1235`); may be blank or invalid "
        "(fails the modulus 11 check).",
    ),
    "local_patient_id": (
        "text",
        "The source's own person id (hospital number, social care client id); the same "
        "person has the same value within one source.",
    ),
    "date_of_birth": ("date", "Date of birth."),
    "sex": ("text", "`1` male, `2` female, `9` indeterminate, `0` or blank not known."),
    "postcode": ("text", "Any case, with or without the space."),
    "given_name": (
        "text",
        "Optional: present in primary care and social care extracts; a file without "
        "the column is read as if every value were blank.",
    ),
    "family_name": (
        "text",
        "Optional: present in primary care and social care extracts; a file without "
        "the column is read as if every value were blank.",
    ),
}

ACTIVITY_NOTES: dict[str, dict[str, tuple[str, str]]] = {
    "acute": {
        "activity_id": ("text", "Unique within the file."),
        "provider_code": ("text", "ODS code."),
        "pod": (
            "text",
            "Point of delivery: `EL` elective inpatient, `NEL` non-elective inpatient, `DC` "
            "day case, `OPFA` outpatient first, `OPFU` outpatient follow-up, `AE` A&E "
            "attendance.",
        ),
        "start_date": ("date", "Admission or attendance date."),
        "end_date": (
            "date",
            "Discharge date; equals `start_date` for DC, OP and AE; blank for a spell not yet "
            "finished.",
        ),
        "hrg_code": ("text", "Healthcare Resource Group, e.g. `DZ65K`."),
        "primary_diagnosis": ("text", "ICD-10, e.g. `J44.1`; may be blank."),
    },
    "chc": {
        "package_id": ("text", "Unique within the file."),
        "care_setting": ("text", "`HOME`, `CARE_HOME`, `NURSING_HOME`."),
        "funding_stream": ("text", "`CHC`, `FNC` (funded nursing care), `JOINT`."),
        "start_date": ("date", "First day of the package period."),
        "end_date": ("date", "Blank while ongoing; inclusive."),
        "weekly_cost": ("decimal", "GBP, ≥ 0."),
    },
    "community": {
        "contact_id": ("text", "Unique within the file."),
        "provider_code": ("text", "ODS code."),
        "service": (
            "text",
            "E.g. `DISTRICT_NURSING`, `PHYSIOTHERAPY`, `OCCUPATIONAL_THERAPY`, "
            "`SPEECH_LANGUAGE`, `PODIATRY`, `COMMUNITY_MATRON`, `RESPIRATORY`.",
        ),
        "contact_date": ("date", "Date of the contact."),
        "contact_mode": ("text", "`F2F`, `TEL`, `VIDEO`."),
        "duration_minutes": ("integer", "≥ 0."),
        "attended": ("text", "`Y` or `N` (did not attend)."),
    },
    "mental_health": {
        "record_id": ("text", "Unique within the file."),
        "provider_code": ("text", "ODS code."),
        "record_type": ("text", "`INPATIENT` or `CONTACT`."),
        "service": (
            "text",
            "Ward type for inpatient (`ADULT_ACUTE`, `OLDER_ADULT`, `PICU`, `REHAB`), team "
            "type for contacts (`CMHT`, `CRISIS`, `MEMORY`, `EARLY_INTERVENTION`, `CAMHS`).",
        ),
        "start_date": ("date", "Admission or contact date."),
        "end_date": (
            "date",
            "Discharge date for inpatient stays, blank while still in hospital; blank or "
            "equal to `start_date` for contacts.",
        ),
        "cpa": ("text", "`Y` if on the Care Programme Approach at this record, else `N`."),
    },
    "primary_care_events": {
        "event_id": ("text", "Unique within the file."),
        "practice_code": ("text", "ODS code."),
        "event_date": ("date", "Date of the consultation."),
        "staff_type": ("text", "`GP`, `NURSE`, `HCA`, `PHARMACIST`, `OTHER`."),
        "mode": ("text", "`SURGERY`, `TELEPHONE`, `HOME_VISIT`, `VIDEO`."),
    },
    "primary_care_registers": {
        "register": (
            "text",
            "QOF-style register: `COPD`, `ASTHMA`, `DIABETES`, `HEART_FAILURE`, `CHD`, "
            "`STROKE`, `CKD`, `DEMENTIA`, `LEARNING_DISABILITY`, `AUTISM`, `SMI`, "
            "`DEPRESSION`, `CANCER`, `FRAILTY_SEVERE`.",
        ),
        "diagnosis_date": (
            "date",
            "Diagnosis date; the register counts in a financial year when it is on or before "
            "the year's last day.",
        ),
    },
    "social_care": {
        "service_id": ("text", "Unique within the file."),
        "service_type": (
            "text",
            "`HOME_CARE`, `RESIDENTIAL`, `NURSING`, `DAY_CARE`, `SUPPORTED_LIVING`, "
            "`REABLEMENT`, `DIRECT_PAYMENT`.",
        ),
        "start_date": ("date", "First day of the service period."),
        "end_date": ("date", "Blank while ongoing; inclusive."),
        "planned_units_per_week": ("decimal", "≥ 0."),
        "unit_type": ("text", "`HOUR`, `DAY`, `WEEK`, `SESSION`, `GBP`."),
        "unit_cost": ("decimal", "GBP per unit, ≥ 0 (1 for `GBP`)."),
        "client_contribution_weekly": (
            "decimal",
            "GBP the person pays after financial assessment, ≥ 0; blank means 0.",
        ),
    },
}

#: What each file holds, as section 2 heads its table.
FILE_NOTES: dict[str, str] = {
    "acute": "one row per hospital activity (SUS-like)",
    "chc": "one row per NHS Continuing Healthcare package period",
    "community": "one row per community care contact (CSDS-like)",
    "mental_health": "one row per inpatient stay or community contact (MHSDS-like)",
    "primary_care_events": "one row per GP practice consultation",
    "primary_care_registers": "one row per person on a long-term condition register",
    "social_care": (
        "one row per adult social care service period (Client Level Data-like); NHS number "
        "is often blank here"
    ),
}


def column_note(source: SourceSpec, column: str) -> tuple[str, str]:
    """The contract's (type, notes) for ``column`` of ``source``."""
    if column in IDENTIFIER_NOTES:
        return IDENTIFIER_NOTES[column]
    return ACTIVITY_NOTES[source.name][column]


def column_description(source: SourceSpec, column: str) -> str:
    """The contract's type and notes for a landing column, plus the rule that quarantines it."""
    kind, notes = column_note(source, column)
    if kind == "date":
        kind = "date `YYYY-MM-DD`"
    text = f"{_first_upper(kind)}. {notes}"
    if column in source.required_dates:
        text += (
            f" Required: blank or not a real date quarantines the row "
            f"(`unparseable_date:{column}`)."
        )
    elif column in source.optional_dates:
        text += f" Present but not a real date quarantines the row (`unparseable_date:{column}`)."
    if column == "end_date" and "start_date" in source.required_columns:
        text += " Before `start_date` quarantines the row (`end_before_start`)."
    if column in source.required_numbers:
        text += (
            f" Required: blank or not a number quarantines the row "
            f"(`unparseable_number:{column}`), below 0 too (`negative:{column}`)."
        )
    elif column in source.optional_numbers:
        text += (
            f" Present but not a number (`unparseable_number:{column}`) or below 0 "
            f"(`negative:{column}`) quarantines the row."
        )
    if source.id_columns == (column,):
        text += " The row's id: repeats are quarantined (`duplicate_id`)."
    return text


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _model_name(source: SourceSpec) -> str:
    return "".join(part.capitalize() for part in source.name.split("_")) + "Landing"


def build_landing_model(source: SourceSpec) -> type[pa.DataFrameModel]:
    """A pandera model of ``source``'s raw extract: its required columns, all nullable text.

    Extra columns are allowed (the contract ignores them).
    """
    id_note = ""
    if source.record_id_column is None:
        id_note = " A row's id is (" + ", ".join(source.id_columns) + ")."

    class Config:
        name = source.file_name
        description = f"{_first_upper(FILE_NOTES[source.name])}.{id_note}"
        strict = False

    namespace: dict[str, object] = {
        "__annotations__": dict.fromkeys(source.required_columns, str),
        "__module__": __name__,
        "__qualname__": _model_name(source),
        "__doc__": f"Raw ``{source.file_name}``: {FILE_NOTES[source.name]}.",
        "Config": Config,
    }
    for column in source.required_columns:
        namespace[column] = pa.Field(nullable=True, description=column_description(source, column))
    return type(_model_name(source), (pa.DataFrameModel,), namespace)


#: Landing source name -> pandera model of its raw file, in the contract's order.
LANDING_MODELS: dict[str, type[pa.DataFrameModel]] = {
    source.name: build_landing_model(source) for source in SOURCES
}
