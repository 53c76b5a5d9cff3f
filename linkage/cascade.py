"""Record linkage on keyed pseudonyms: the cascade of costing-method.md section 1.

Everything here runs in DuckDB over the pseudonymised tables; no raw identifier is
ever present. Each pseudonymised row carries:

* ``nhs_pseudo`` - HMAC of ``nhs:<NHS number>``, only when the NHS number is valid;
* ``local_id_pseudo`` - HMAC of ``src:<source group>:<local patient id>``;
* ``demo_token`` - HMAC of the normalised family name, given name, date of birth
  and sex, only when both names are present;
* ``row_pseudo`` - HMAC of ``row:<source>:<file>:<row>`` for a row with no local id.

Because the pseudonyms of the NHS number and of the local id *are* the person ids the
contract describes (HMAC with the linkage key of the NHS number, or of the source and
local id), the cascade only has to choose which of them a row belongs to.
"""

import duckdb

from schemas.sources import SOURCES

#: Stage numbers as the contract and the linkage report name them.
STAGE_NAMES: dict[int, str] = {
    1: "nhs_number",
    2: "local_id",
    3: "demographic",
    4: "unlinked",
}

_IDENTITY_COLUMNS = (
    "row_id",
    "source",
    "file",
    "file_index",
    "row_number",
    "nhs_pseudo",
    "nhs_status",
    "local_id_pseudo",
    "demo_token",
    "row_pseudo",
    "birth_year",
    "born_after_1_april",
    "sex",
    "postcode_district",
)


def _identity_union() -> str:
    """One SELECT over every source's identity columns, in the contract's source order."""
    selects = []
    for order, spec in enumerate(SOURCES):
        cols = ", ".join(_IDENTITY_COLUMNS)
        selects.append(
            f"SELECT {cols}, '{spec.group}' AS source_group, {order} AS source_order "
            f"FROM pseudonymised.{spec.name}"
        )
    return "\nUNION ALL BY NAME\n".join(selects)


def link_records(con: duckdb.DuckDBPyConnection) -> None:
    """Build ``linked.row_links``, ``linked.person_spine`` and ``linked.linkage_report``.

    Stage 1: a valid NHS number. Stage 2: within one source group, a local id seen
    with exactly one valid NHS number. Stage 3: a demographic token that belongs to
    exactly one NHS-number person (built from rows with a valid NHS number and both
    names). Stage 4: everyone else, one person per source group and local id (or
    per row where there is no local id).
    """
    con.execute("CREATE SCHEMA IF NOT EXISTS linked")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE linked.row_links AS
        WITH rows AS ({_identity_union()}),
        local_id_map AS (
            SELECT source_group, local_id_pseudo, min(nhs_pseudo) AS nhs_pseudo
            FROM rows
            WHERE nhs_pseudo IS NOT NULL AND local_id_pseudo IS NOT NULL
            GROUP BY source_group, local_id_pseudo
            HAVING count(DISTINCT nhs_pseudo) = 1
        ),
        token_map AS (
            SELECT demo_token, min(nhs_pseudo) AS nhs_pseudo
            FROM rows
            WHERE nhs_pseudo IS NOT NULL AND demo_token IS NOT NULL
            GROUP BY demo_token
            HAVING count(DISTINCT nhs_pseudo) = 1
        )
        SELECT
            r.row_id, r.source, r.source_group, r.source_order, r.file, r.file_index,
            r.row_number,
            r.nhs_status,
            CASE
                WHEN r.nhs_pseudo IS NOT NULL THEN 1
                WHEN l.nhs_pseudo IS NOT NULL THEN 2
                WHEN t.nhs_pseudo IS NOT NULL THEN 3
                ELSE 4
            END::TINYINT AS stage,
            coalesce(r.nhs_pseudo, l.nhs_pseudo, t.nhs_pseudo, r.local_id_pseudo, r.row_pseudo)
                AS person_id,
            r.birth_year, r.born_after_1_april, r.sex, r.postcode_district
        FROM rows r
        LEFT JOIN local_id_map l
            ON r.nhs_pseudo IS NULL
            AND l.source_group = r.source_group
            AND l.local_id_pseudo = r.local_id_pseudo
        LEFT JOIN token_map t
            ON r.nhs_pseudo IS NULL AND t.demo_token = r.demo_token
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE linked.person_spine AS
        SELECT
            person_id,
            min(stage) < 4 AS linked_by_nhs_number,
            -- The first accepted row (row_id orders sources as the contract lists
            -- them, then files, then rows), even where that row's value is blank.
            arg_min_null(birth_year, row_id) AS birth_year,
            arg_min_null(born_after_1_april, row_id) AS born_after_1_april,
            arg_min_null(sex, row_id) AS sex,
            arg_min_null(postcode_district, row_id) AS postcode_district,
            count(*) AS rows_linked
        FROM linked.row_links
        GROUP BY person_id
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE linked.linkage_report AS
        SELECT
            source,
            count(*) AS rows_accepted,
            count(*) FILTER (WHERE stage = 1) AS rows_linked_nhs_number,
            count(*) FILTER (WHERE stage = 2) AS rows_linked_local_id,
            count(*) FILTER (WHERE stage = 3) AS rows_linked_demographic,
            count(*) FILTER (WHERE stage IN (2, 3)) AS rows_linked_other,
            count(*) FILTER (WHERE stage = 4) AS rows_unlinked,
            count(*) FILTER (WHERE nhs_status = 'invalid') AS rows_invalid_nhs_number,
            count(*) FILTER (WHERE nhs_status = 'blank') AS rows_blank_nhs_number
        FROM linked.row_links
        GROUP BY source
        """
    )


def linkage_report(con: duckdb.DuckDBPyConnection) -> list[dict[str, object]]:
    """The linkage report per source, every source present (zero rows included)."""
    rows = con.execute("SELECT * FROM linked.linkage_report ORDER BY source").fetchall()
    columns = [d[0] for d in con.description or []]
    found = {r[0]: dict(zip(columns, r, strict=True)) for r in rows}
    report = []
    for spec in SOURCES:
        entry = found.get(spec.name) or {c: 0 for c in columns} | {"source": spec.name}
        report.append(entry)
    return report
