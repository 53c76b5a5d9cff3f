"""The export tables of data-contract.md section 4, built from the warehouse.

Each function reads the costing tables and returns exactly what leaves the pipeline:
aggregates after disclosure control, person-level tables under the right pseudonym,
no exact dates, no raw identifiers.
"""

from collections.abc import Iterator

import duckdb
import polars as pl
import pyarrow as pa

from costing.disclosure import DisclosureRule, protect_groups, protect_rows
from costing.years import year_filter
from pseudonymise.hashing import pseudonymise_series, text_key
from schemas.sources import SETTINGS

_COHORTS_LIST = """
    (SELECT list(m.cohort ORDER BY m.cohort_order) FROM costing.cohort_membership m
     WHERE m.person_id = p.person_id AND m.financial_year = p.financial_year)
"""


def person_costs(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per person and year under the internal pseudonym (commissioner only)."""
    costs = ", ".join(f"p.cost_{s}" for s in SETTINGS)
    frame = con.sql(
        f"""
        SELECT p.person_id, p.financial_year, p.age_band, p.sex, {costs}, p.cost_total,
            coalesce({_COHORTS_LIST}, []::VARCHAR[]) AS cohorts
        FROM costing.person_years p
        ORDER BY p.financial_year, p.person_id
        """
    ).pl()
    return frame.with_columns(pl.col("cohorts").list.first().alias("primary_cohort"))


def recipient_pseudonyms(recipient_key: bytes, person_ids: pl.Series) -> pl.Series:
    """The recipient's own pseudonym of each internal person id: an HMAC with a key
    derived for that recipient, so two recipients' copies share no id."""
    return pseudonymise_series(text_key(recipient_key), person_ids).alias("person_id")


def legacy_person_ids(con: duckdb.DuckDBPyConnection, digests: pl.DataFrame) -> pl.DataFrame:
    """Internal person id -> Open Pseudonymiser digest, from the person's first accepted
    row with a valid NHS number (sources in contract order, then row order)."""
    con.register("legacy_digests", digests.to_arrow())
    try:
        return con.sql(
            """
            SELECT l.person_id,
                arg_min(d.digest, l.row_id) AS legacy_id  -- digests are never null
            FROM legacy_digests d
            JOIN linked.row_links l USING (row_id)
            GROUP BY l.person_id
            """
        ).pl()
    finally:
        con.unregister("legacy_digests")


def rekey_for_recipient(
    frame: pl.DataFrame, recipient_key: bytes, legacy_ids: pl.DataFrame | None
) -> pl.DataFrame:
    """Replace the internal person id with the recipient's: its keyed pseudonym, or for
    an Open Pseudonymiser recipient the legacy digest where the person has one."""
    keyed = frame.with_columns(recipient_pseudonyms(recipient_key, frame["person_id"]))
    if legacy_ids is None:
        return keyed
    return (
        keyed.with_columns(frame["person_id"].alias("_internal"))
        .join(legacy_ids.rename({"person_id": "_internal"}), on="_internal", how="left")
        .with_columns(
            pl.when(pl.col("legacy_id").is_not_null())
            .then(pl.lit("open_pseudonymiser"))
            .otherwise(pl.lit("keyed"))
            .alias("pseudonym_scheme"),
            pl.coalesce("legacy_id", "person_id").alias("person_id"),
        )
        .drop("_internal", "legacy_id")
    )


def recipient_ids(
    con: duckdb.DuckDBPyConnection, recipient_key: bytes, legacy_ids: pl.DataFrame | None
) -> pl.DataFrame:
    """Every person's id for one recipient: ``internal_id`` (the warehouse's person id)
    to ``person_id`` (the recipient's), with ``pseudonym_scheme`` for an Open
    Pseudonymiser recipient. One hash per person, not per activity row."""
    people = con.sql("SELECT person_id FROM linked.person_spine ORDER BY person_id").pl()
    return rekey_for_recipient(
        people.with_columns(pl.col("person_id").alias("internal_id")), recipient_key, legacy_ids
    )


#: The linked activity export's columns, in order (see schemas.exports.Activity).
LINKED_ACTIVITY_COLUMNS = (
    "source",
    "setting",
    "service",
    "activity_month",
    "financial_year",
    "cost",
    "net_cost",
    "units",
    "cost_basis",
)


def linked_activity_years(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """Each financial year of costed activity and how many rows it has, in order."""
    return [
        (str(year), int(rows))
        for year, rows in con.execute(
            "SELECT financial_year, count(*) FROM costing.activity GROUP BY ALL ORDER BY 1"
        ).fetchall()
    ]


#: DuckDB's memory while it streams a year of activity in order.
STREAM_MEMORY_LIMIT = "1GB"


def _gathered(reader: pa.RecordBatchReader, rows: int) -> Iterator[list[pa.RecordBatch]]:
    """DuckDB's record batches (a few thousand rows each), gathered ``rows`` at a time."""
    gathered: list[pa.RecordBatch] = []
    count = 0
    for batch in reader:
        gathered.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield gathered
            gathered, count = [], 0
    if gathered:
        yield gathered


def linked_activity_batches(
    con: duckdb.DuckDBPyConnection,
    year: str,
    batch_rows: int,
    recipient_ids: dict[str, pl.DataFrame],
) -> Iterator[dict[str, pl.DataFrame]]:
    """One year's accepted activity at month grain, in row order, ``batch_rows`` at a
    time, as each recipient's copy under its own ids (:func:`recipient_ids`).

    DuckDB streams the year in row order with a small integer per person (so its sort
    carries no 128-bit ids); each recipient's ids are then gathered by that integer. A
    year is never held whole and every copy holds the same rows in the same order.
    """
    people: pl.DataFrame | None = None
    aligned: dict[str, pl.DataFrame] = {}
    for name, ids in recipient_ids.items():
        if people is None:
            people = ids.select("internal_id").with_row_index("person_index")
        aligned[name] = people.join(ids, on="internal_id", how="left", maintain_order="left")
    if people is None:
        return
    columns = ", ".join(f"a.{c}" for c in LINKED_ACTIVITY_COLUMNS)
    con.register("person_index", people.to_arrow())
    # The year's sort spills to disk beyond this, leaving memory to the batches.
    [(memory_limit,)] = con.execute("SELECT current_setting('memory_limit')").fetchall()
    con.execute(f"SET memory_limit = '{STREAM_MEMORY_LIMIT}'")
    try:
        reader = con.sql(
            f"SELECT m.person_index, {columns} FROM costing.activity a "
            "JOIN person_index m ON m.internal_id = a.person_id "
            f"WHERE {year_filter('a.financial_year', [year])} ORDER BY a.row_id"
        ).to_arrow_reader(batch_rows)
        for batches in _gathered(reader, batch_rows):
            frame = pl.from_arrow(pa.Table.from_batches(batches))
            assert isinstance(frame, pl.DataFrame)
            index = frame["person_index"]
            copies = {}
            for name, ids in aligned.items():
                scheme = (
                    [ids["pseudonym_scheme"].gather(index)]
                    if "pseudonym_scheme" in ids.columns
                    else []
                )
                copies[name] = frame.select(
                    ids["person_id"].gather(index).alias("person_id"),
                    *LINKED_ACTIVITY_COLUMNS,
                    *scheme,
                )
            yield copies
    finally:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.unregister("person_index")


def linked_persons(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per person and year: age band, sex, postcode district and cohorts, under
    the internal pseudonym (re-key with :func:`rekey_for_recipient` before export)."""
    frame = con.sql(
        f"""
        SELECT p.person_id, p.financial_year, p.age_band, p.sex,
            p.postcode_district,
            coalesce({_COHORTS_LIST}, []::VARCHAR[]) AS cohorts
        FROM costing.person_years p
        ORDER BY p.financial_year, p.person_id
        """
    ).pl()
    return frame


REFERENCE_COST_FIGURES = [
    "mean_cost",
    "median_cost",
    "p25_cost",
    "p75_cost",
    "p90_cost",
    *(f"mean_cost_{s}" for s in SETTINGS),
]
BAND_FIGURES = ["lower", "upper", "mean_cashable_cost"]


def cohort_reference_costs(con: duckdb.DuckDBPyConnection, rule: DisclosureRule) -> pl.DataFrame:
    """Cohort reference costs after disclosure control."""
    frame = con.sql(
        "SELECT cohort, financial_year, people, "
        + ", ".join(REFERENCE_COST_FIGURES)
        + " FROM costing.cohort_reference_costs"
    ).pl()
    return protect_rows(frame, rule, figure_columns=REFERENCE_COST_FIGURES)


def cohort_funding_bands(con: duckdb.DuckDBPyConnection, rule: DisclosureRule) -> pl.DataFrame:
    """Banded funding levels after disclosure control (five bands together or none)."""
    frame = con.sql(
        "SELECT cohort, financial_year, band, people, lower, upper, mean_cashable_cost "
        "FROM costing.funding_bands"
    ).pl()
    return protect_groups(
        frame, rule, group_columns=["cohort", "financial_year"], figure_columns=BAND_FIGURES
    )


def reconciliation(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql("SELECT * FROM costing.reconciliation").pl()


def statements(con: duckdb.DuckDBPyConnection, cashable_settings: list[str]) -> list[dict]:
    """Individual Statements of Resources as JSON-ready objects (costing-method.md s.6)."""
    frame = con.sql("SELECT * FROM costing.statements").pl()
    settings_and_total = [*SETTINGS, "total"]
    out = []
    for row in frame.iter_rows(named=True):
        out.append(
            {
                "person_id": row["person_id"],
                "financial_year": row["financial_year"],
                "cohorts": row["cohorts"],
                "primary_cohort": row["primary_cohort"],
                "age_band": row["age_band"],
                "profile": {
                    "cohort": row["profile_cohort"],
                    "age_band": row["profile_age_band"],
                    "people": row["profile_people"],
                    "fallback_to_cohort": row["fallback_to_cohort"],
                },
                "profile_mean_cost": {s: row[f"profile_mean_cost_{s}"] for s in settings_and_total},
                "own_cost": {s: row[f"own_cost_{s}"] for s in settings_and_total},
                "indicative_budget": {
                    "amount": row["budget_amount"],
                    "band": row["budget_band"],
                    "band_lower": row["budget_band_lower"],
                    "band_upper": row["budget_band_upper"],
                    "basis": row["budget_basis"],
                    "cashable_settings": list(cashable_settings),
                },
            }
        )
    return out
