"""Pseudonymise one landing source: the only step that reads raw identifiers.

Reads the extract, quarantines rows that fail the contract, replaces every
identifier with keyed pseudonyms and minimised attributes, and returns frames that
hold no raw identifier:

* ``accepted``: one row per accepted row, with ``nhs_pseudo`` (valid NHS numbers
  only), ``nhs_status``, ``local_id_pseudo``, ``demo_token``, ``row_pseudo``,
  ``birth_year``, ``born_after_1_april``, ``sex``, ``postcode_district`` and the
  source's activity columns, typed;
* ``quarantine``: file, row number, reasons and pseudonymised identifiers of every
  quarantined row;
* ``report``: counts only (rows read, accepted, quarantined, replaced, encoding,
  reasons), safe for logs and Dagster metadata.

Every pseudonym is an HMAC-SHA256 with the linkage key of a labelled value, so the
pseudonym of ``nhs:<NHS number>`` is the person id of a person linked by NHS number,
and that of ``src:<source>:<local id>`` the id of an unlinked person.
"""

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from pseudonymise.fingerprints import identifier_fingerprints
from pseudonymise.hashing import pseudonymise_series, text_key
from pseudonymise.identifiers import (
    birth_year,
    born_after_1_april,
    nhs_number_is_valid,
    normalise_name,
    normalise_nhs_number,
    normalise_sex,
    postcode_district,
)
from pseudonymise.landing import RawSource, read_source
from pseudonymise.open_pseudonymiser import digest_expr, dob_open_pseudonymiser_format
from pseudonymise.validate import parse_accepted, quarantine_reasons
from schemas.sources import (
    IDENTIFIER_COLUMNS,
    NAME_COLUMNS,
    RAW_IDENTIFIER_COLUMNS,
    SOURCE_NAMES,
    SourceSpec,
)


@dataclass(frozen=True)
class IngestReport:
    """Counts only: safe for logs, Dagster metadata and the reconciliation."""

    source: str
    files: int
    encoding: str
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    rows_replaced: int
    quarantine_reasons: dict[str, int]
    extra_columns: list[str]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class PseudonymisedSource:
    """What leaves the pseudonymisation step for one source: no raw identifiers.

    ``legacy_digests`` maps each Open Pseudonymiser recipient to the digests of the
    accepted rows with a valid NHS number (source, file, row_number, digest): weaker
    than the keyed pseudonyms, so they are written only to the restricted zone.
    """

    source: str
    accepted: pl.DataFrame | None  # None when the accepted rows went to a sink
    quarantine: pl.DataFrame
    report: IngestReport
    legacy_digests: dict[str, pl.DataFrame]
    fingerprints: pl.DataFrame


def _pseudonym(key: bytes, label: pl.Expr, frame: pl.DataFrame) -> pl.Series:
    return pseudonymise_series(key, frame.select(label.alias("v")).to_series())


def _person_identity(people: pl.DataFrame, spec: SourceSpec, key: bytes) -> pl.DataFrame:
    """Pseudonyms and minimised attributes of each distinct identity in a source.

    Computed once per distinct combination of identifier values (about one per person
    per source), not once per row: the hashing and name folding are the costly part.
    """
    nhs = normalise_nhs_number(pl.col("nhs_number"))
    local_id = pl.col("local_patient_id").str.strip_chars()
    people = people.with_columns(
        nhs.alias("_nhs"),
        pl.when(local_id == "").then(None).otherwise(local_id).alias("_local_id"),
        normalise_sex(pl.col("sex")).alias("_sex"),
    ).with_columns(nhs_number_is_valid(pl.col("_nhs")).alias("_nhs_valid"))
    columns: dict[str, pl.Series] = {
        "nhs_pseudo": _pseudonym(
            key,
            pl.when(pl.col("_nhs_valid")).then(pl.lit("nhs:") + pl.col("_nhs")),
            people,
        ),
        "local_id_pseudo": _pseudonym(
            key, pl.lit(f"src:{spec.group}:") + pl.col("_local_id"), people
        ),
    }
    if spec.has_names and people.schema.get("date_of_birth") == pl.Date:
        token = pl.concat_str(
            pl.lit("demo:"),
            normalise_name(pl.col("family_name")),
            pl.lit("|"),
            normalise_name(pl.col("given_name")),
            pl.lit("|"),
            pl.col("date_of_birth").dt.strftime("%Y-%m-%d"),
            pl.lit("|"),
            pl.col("_sex"),
        )  # null when either name is blank: concat_str propagates nulls
        columns["demo_token"] = _pseudonym(key, token, people)
    else:
        columns["demo_token"] = pl.Series("demo_token", [None] * people.height, pl.String)
    people = people.with_columns(
        [s.alias(name) for name, s in columns.items()]
        + [
            pl.when(pl.col("_nhs").is_null())
            .then(pl.lit("blank"))
            .when(pl.col("_nhs_valid"))
            .then(pl.lit("valid"))
            .otherwise(pl.lit("invalid"))
            .alias("nhs_status"),
            postcode_district(pl.col("postcode")).alias("postcode_district"),
        ]
    )
    if people.schema.get("date_of_birth") == pl.Date:
        people = people.with_columns(
            birth_year(pl.col("date_of_birth")).alias("birth_year"),
            born_after_1_april(pl.col("date_of_birth")).alias("born_after_1_april"),
        )
    return people.drop("_nhs", "_nhs_valid")


def _identity(frame: pl.DataFrame, spec: SourceSpec, key: bytes) -> pl.DataFrame:
    """Add pseudonyms and minimised attributes, then drop the raw identifiers."""
    identity_columns = [c for c in (*IDENTIFIER_COLUMNS, *NAME_COLUMNS) if c in frame.columns]
    people = _person_identity(frame.select(identity_columns).unique(), spec, key)
    frame = frame.join(people, on=identity_columns, how="left", nulls_equal=True)
    row_label = pl.when(pl.col("_local_id").is_null()).then(
        pl.concat_str(
            pl.lit(f"row:{spec.name}:"),
            pl.col("_file"),
            pl.lit(":"),
            pl.col("_row_number").cast(pl.String),
        )
    )
    frame = frame.with_columns(
        _pseudonym(key, row_label, frame).alias("row_pseudo"),
        pl.col("_sex").alias("sex"),
    )
    raw = (*RAW_IDENTIFIER_COLUMNS, "_local_id", "_sex")
    return frame.drop([c for c in raw if c in frame.columns])


def row_id_expr(spec: SourceSpec) -> pl.Expr:
    """One int64 per landing row: source, file and row number packed, so the warehouse
    joins rows on one integer (5-10x faster than on text, facts.md section 5)."""
    source_index = SOURCE_NAMES.index(spec.name)
    return (
        pl.lit(source_index, pl.Int64) * (1 << 48)
        + pl.col("_file_index").cast(pl.Int64) * (1 << 32)
        + pl.col("_row_number").cast(pl.Int64)
    )


def _legacy_digests(accepted: pl.DataFrame, spec: SourceSpec, salt: str) -> pl.DataFrame:
    """Open Pseudonymiser digests of NHSNumber and DOB (dd.mm.yyyy), valid numbers only."""
    nhs = normalise_nhs_number(pl.col("nhs_number"))
    return accepted.filter(nhs_number_is_valid(nhs)).select(
        row_id_expr(spec).alias("row_id"),
        digest_expr(
            {
                "NHSNumber": nhs,
                "DOB": dob_open_pseudonymiser_format(pl.col("date_of_birth")),
            },
            salt,
        ).alias("digest"),
    )


#: Accepted rows are parsed and pseudonymised this many at a time, so a whole site's
#: largest extract never needs its parsed copy in memory beside the raw one.
CHUNK_ROWS = 4_000_000


def _accepted_chunk(
    part: RawSource,
    part_reasons: pl.DataFrame,
    key: bytes,
    legacy_salts: Mapping[str, str],
    legacy: dict[str, list[pl.DataFrame]],
) -> pl.DataFrame:
    """Parse and pseudonymise one slice of the raw rows (its accepted rows only)."""
    spec = part.spec
    parsed = parse_accepted(part, part_reasons)
    for recipient, salt in legacy_salts.items():
        legacy[recipient].append(_legacy_digests(parsed, spec, salt))
    accepted = (
        _identity(parsed, spec, key)
        .with_columns(row_id_expr(spec).alias("row_id"))
        .rename({"_file": "file", "_file_index": "file_index", "_row_number": "row_number"})
    )
    record_id = spec.record_id_column
    accepted = accepted.with_columns(
        pl.lit(spec.name).alias("source"),
        (pl.col(record_id) if record_id else pl.lit(None, pl.String)).alias("record_id"),
    )
    leading = ["row_id", "source", "file", "file_index", "row_number"]
    return accepted.select(leading + [c for c in accepted.columns if c not in leading])


def pseudonymise_source(
    landing_dir: Path,
    spec: SourceSpec,
    linkage_key: bytes,
    legacy_salts: Mapping[str, str] | None = None,
    fingerprint_key: bytes | None = None,
    *,
    sink: Callable[[pl.DataFrame], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> PseudonymisedSource:
    """Read, validate and pseudonymise one source with the linkage key (and, for
    recipients configured for Open Pseudonymiser compatibility, their salts).

    The accepted rows are made ``chunk_rows`` at a time, in row order. With a ``sink``
    each chunk is handed to it as it is made (the caller writes it out) and the
    result's ``accepted`` is None; without one they are gathered into ``accepted``.
    """
    key = text_key(linkage_key)
    raw = read_source(landing_dir, spec)
    reasons = quarantine_reasons(raw)
    legacy_salts = legacy_salts or {}
    legacy: dict[str, list[pl.DataFrame]] = {recipient: [] for recipient in legacy_salts}
    chunks: list[pl.DataFrame] = []
    rows_accepted = 0
    for start in range(0, max(raw.frame.height, 1), chunk_rows):
        part = RawSource(spec, raw.frame.slice(start, chunk_rows), raw.files)
        chunk = _accepted_chunk(part, reasons.slice(start, chunk_rows), key, legacy_salts, legacy)
        rows_accepted += chunk.height
        if sink is None:
            chunks.append(chunk)
        else:
            sink(chunk)
        del chunk
    accepted = pl.concat(chunks) if sink is None else None

    quarantined_raw = raw.frame.with_columns(reasons["reasons"], reasons["replaced"]).filter(
        pl.col("reasons").fill_null("") != ""
    )
    quarantine = _identity(quarantined_raw.drop("_malformed"), spec, key).select(
        pl.lit(spec.name).alias("source"),
        pl.col("_file").alias("file"),
        pl.col("_row_number").alias("row_number"),
        "reasons",
        "replaced",
        "nhs_status",
        "nhs_pseudo",
        "local_id_pseudo",
    )
    reason_counts: dict[str, int] = {}
    for reasons_text in quarantine["reasons"].to_list():
        for code in str(reasons_text).split(";"):
            reason_counts[code] = reason_counts.get(code, 0) + 1
    encodings = sorted({f.encoding for f in raw.files}, key=["utf-8", "windows-1252"].index)
    report = IngestReport(
        source=spec.name,
        files=len(raw.files),
        encoding=";".join(encodings) if encodings else "utf-8",
        rows_read=raw.frame.height,
        rows_accepted=rows_accepted,
        rows_quarantined=quarantine.height,
        rows_replaced=int(quarantine["replaced"].sum()),
        quarantine_reasons=dict(sorted(reason_counts.items())),
        extra_columns=sorted({c for f in raw.files for c in f.extra_columns}),
    )
    # Keyed fingerprints of every identifier read (quarantined rows too), so a leak scan
    # can recognise them later without reading raw data again.
    fingerprints = (
        identifier_fingerprints(raw.frame, fingerprint_key)
        if fingerprint_key is not None
        else pl.DataFrame(schema={"kind": pl.String, "fingerprint": pl.String})
    )
    legacy_digests = {recipient: pl.concat(parts) for recipient, parts in legacy.items()}
    return PseudonymisedSource(
        spec.name, accepted, quarantine, report, legacy_digests, fingerprints
    )
