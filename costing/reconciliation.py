"""Reconciliation: nothing is lost between the landing files and the costs.

Money is added exactly (:mod:`costing.money`): a plain floating-point sum of millions
of costs drifts by pennies at a site's scale, which would fail a check that compares
to the penny for no real reason, and would differ between runs.

One row per landing source. Every row read is accepted or quarantined; every accepted
row is linked at one stage; every accepted row is costed, open, out of period or a
register; the cost totals equal the costed activity's. :func:`reconciliation_problems`
says, in words, every way the figures fail to add up; a blocking check fails on any.
"""

import duckdb

from costing.activity import build_row_status
from costing.money import exact_sum
from schemas.sources import SOURCES

COUNT_COLUMNS = (
    "rows_read",
    "rows_accepted",
    "rows_quarantined",
    "rows_replaced",
    "rows_linked_nhs_number",
    "rows_linked_other",
    "rows_linked_local_id",
    "rows_linked_demographic",
    "rows_unlinked",
    "open_spells",
    "rows_out_of_period",
    "rows_unpriced",
)


def build_reconciliation(con: duckdb.DuckDBPyConnection) -> None:
    """Build ``costing.row_status`` and ``costing.reconciliation`` from the ingest
    report, linkage and the costing of every financial year."""
    build_row_status(con)
    source_list = ", ".join(f"('{s.name}', {i})" for i, s in enumerate(SOURCES))
    con.execute(
        f"""
        CREATE OR REPLACE TABLE costing.reconciliation AS
        WITH sources AS (
            SELECT * FROM (VALUES {source_list}) AS t(source, source_order)
        ),
        status AS (
            SELECT source,
                count(*) FILTER (WHERE status = 'open') AS open_spells,
                count(*) FILTER (WHERE status = 'out_of_period') AS rows_out_of_period,
                count(*) FILTER (WHERE unpriced) AS rows_unpriced
            FROM costing.row_status GROUP BY source
        ),
        costs AS (
            SELECT source,
                {exact_sum("cost")}::DOUBLE AS cost_total,
                {exact_sum("net_cost")}::DOUBLE AS net_cost_total
            FROM costing.activity GROUP BY source
        )
        SELECT s.source, i.encoding,
            coalesce(i.rows_read, 0) AS rows_read,
            coalesce(i.rows_accepted, 0) AS rows_accepted,
            coalesce(i.rows_quarantined, 0) AS rows_quarantined,
            coalesce(i.rows_replaced, 0) AS rows_replaced,
            coalesce(l.rows_linked_nhs_number, 0) AS rows_linked_nhs_number,
            coalesce(l.rows_linked_other, 0) AS rows_linked_other,
            coalesce(l.rows_linked_local_id, 0) AS rows_linked_local_id,
            coalesce(l.rows_linked_demographic, 0) AS rows_linked_demographic,
            coalesce(l.rows_unlinked, 0) AS rows_unlinked,
            coalesce(st.open_spells, 0) AS open_spells,
            coalesce(st.rows_out_of_period, 0) AS rows_out_of_period,
            coalesce(st.rows_unpriced, 0) AS rows_unpriced,
            coalesce(c.cost_total, 0.0) AS cost_total,
            coalesce(c.net_cost_total, 0.0) AS net_cost_total
        FROM sources s
        LEFT JOIN pseudonymised.ingest_report i USING (source)
        LEFT JOIN linked.linkage_report l USING (source)
        LEFT JOIN status st USING (source)
        LEFT JOIN costs c USING (source)
        ORDER BY s.source_order
        """
    )


def reconciliation_problems(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every way the reconciliation fails to add up, as sentences (empty when it does)."""
    problems: list[str] = []
    rows = con.execute(
        f"""
        SELECT r.*,
            (SELECT count(*) FROM costing.row_status s WHERE s.source = r.source) AS statuses,
            (SELECT coalesce({exact_sum("cost")}, 0)::DOUBLE FROM costing.row_status s
                WHERE s.source = r.source) AS status_cost
        FROM costing.reconciliation r
        """
    ).fetchall()
    names = [d[0] for d in con.description or []]
    for values in rows:
        r = dict(zip(names, values, strict=True))
        source = r["source"]
        if r["rows_accepted"] + r["rows_quarantined"] != r["rows_read"]:
            problems.append(
                f"{source}: {r['rows_read']} rows read but {r['rows_accepted']} accepted "
                f"+ {r['rows_quarantined']} quarantined"
            )
        linked = r["rows_linked_nhs_number"] + r["rows_linked_other"] + r["rows_unlinked"]
        if linked != r["rows_accepted"]:
            problems.append(
                f"{source}: {r['rows_accepted']} rows accepted but {linked} reached linkage"
            )
        if r["rows_linked_local_id"] + r["rows_linked_demographic"] != r["rows_linked_other"]:
            problems.append(f"{source}: linkage stages 2 and 3 do not add up to 'other'")
        if r["statuses"] != r["rows_accepted"]:
            problems.append(
                f"{source}: {r['rows_accepted']} rows accepted but {r['statuses']} "
                "have a costing outcome"
            )
        if abs(r["status_cost"] - r["cost_total"]) > 0.005:
            problems.append(f"{source}: row costs do not add up to the source's cost total")
        if r["net_cost_total"] > r["cost_total"] + 0.005:
            problems.append(f"{source}: net cost exceeds gross cost")
    person_total = con.execute(
        f"SELECT coalesce({exact_sum('cost_total')}, 0)::DOUBLE FROM costing.person_years"
    ).fetchall()[0]
    activity_total = con.execute(
        f"SELECT coalesce({exact_sum('cost')}, 0)::DOUBLE FROM costing.activity"
    ).fetchall()[0]
    assert person_total is not None and activity_total is not None
    if abs(person_total[0] - activity_total[0]) > 0.01:
        problems.append(
            "person-level costs do not add up to the costed activity "
            f"(difference £{abs(person_total[0] - activity_total[0]):.2f})"
        )
    return problems
