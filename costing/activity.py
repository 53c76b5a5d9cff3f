"""Costing each activity: costing-method.md section 2, as named DuckDB SQL rules.

The rules build ``costing.activity``: one row per accepted activity and financial
year it falls in, with its units and how it is to be priced. Pricing then
applies, in order, the acute tariff (with excess bed days) or POD default, a block
contract's local unit cost, the national unit cost, a package's own weekly cost, or
nothing (``unpriced``, cost 0). A computation costs some financial years or all of
them (:mod:`costing.years`: the rules read the years through ``costed_years``).
``costing.row_status`` (:func:`build_row_status`, built with the reconciliation, over
every year) keeps one row per accepted landing row: costed, open, out of period or
register.

Inputs: ``pseudonymised.<source>``, ``linked.row_links``, ``reference.*`` and the
period tables of :mod:`costing.period`.
"""

from collections.abc import Sequence

import duckdb

from costing.money import exact_sum
from costing.years import replace_years, select_costed_years

#: Acute points of delivery costed as spells at discharge (with excess bed days).
SPELL_PODS = ("EL", "NEL")

_FY_OF = """
    CASE WHEN month({d}) >= 4 THEN year({d}) ELSE year({d}) - 1 END
"""


def _fy_of(column: str) -> str:
    return _FY_OF.format(d=column).strip()


def _linked(source: str) -> str:
    """Rows of one source joined to their person id."""
    return f"""
        SELECT p.*, l.person_id
        FROM pseudonymised.{source} p
        JOIN linked.row_links l ON l.row_id = p.row_id
    """


# Rule: acute activity (SUS-like). EL/NEL spells are costed in the year and month of
# discharge, whole, at the tariff of that year plus excess bed days beyond the trim
# point; a spell with no discharge, or discharged after the period end, is open. Other
# PODs are costed in the year of attendance. A (hrg_code, pod) pair missing from the
# tariff falls back to the POD default price, with no excess bed days.
ACUTE_PARTS = f"""
WITH a AS ({_linked("acute")}),
dated AS (
    SELECT *,
        pod IN {SPELL_PODS} AS is_spell,
        CASE WHEN pod IN {SPELL_PODS} THEN end_date ELSE start_date END AS cost_date
    FROM a
),
classified AS (
    SELECT d.*,
        CASE
            WHEN is_spell AND (end_date IS NULL OR end_date > p.period_end) THEN 'open'
            WHEN cost_date < p.period_start OR cost_date > p.period_end THEN 'out_of_period'
            ELSE 'costed'
        END AS status
    FROM dated d CROSS JOIN costing.period p
)
SELECT
    c.row_id, c.source, c.file, c.row_number, c.person_id, 'acute' AS setting,
    c.pod AS service,
    c.provider_code, c.activity_id AS record_id, c.status,
    fy.financial_year,
    strftime(c.cost_date, '%Y-%m') AS activity_month,
    1.0 AS units,
    CASE
        WHEN t.price IS NOT NULL THEN t.price + CASE WHEN c.is_spell
            THEN t.excess_bed_day_price
                 * greatest(0, date_diff('day', c.start_date, c.end_date) - t.trim_point_days)
            ELSE 0 END
        WHEN d.price IS NOT NULL THEN d.price
        ELSE 0.0
    END AS cost,
    CASE
        WHEN t.price IS NOT NULL THEN 'tariff'
        WHEN d.price IS NOT NULL THEN 'pod_default'
        ELSE 'unpriced'
    END AS cost_basis,
    NULL::VARCHAR AS cpa
FROM classified c
JOIN costed_years fy ON fy.start_year = {_fy_of("c.cost_date")}
LEFT JOIN reference.acute_tariff t
    ON t.financial_year = fy.financial_year AND t.hrg_code = c.hrg_code AND t.pod = c.pod
LEFT JOIN reference.acute_pod_default d
    ON d.financial_year = fy.financial_year AND d.pod = c.pod
WHERE c.status = 'costed'
"""

# Rule: an acute EL/NEL spell with no discharge date, or discharged after the period
# end, is open: not costed (the reconciliation counts it in `open_spells`).
OPEN_SPELLS = f"""
SELECT a.row_id
FROM pseudonymised.acute a CROSS JOIN costing.period p
WHERE a.pod IN {SPELL_PODS} AND (a.end_date IS NULL OR a.end_date > p.period_end)
"""


def _package_parts(source: str, setting: str, service: str, record_id: str) -> str:
    """Rule: packages (CHC, social care) are costed per active day, each day to its own
    financial year; an ongoing package runs to the period end inclusive, and nothing
    before the period start or after the period end is costed."""
    return f"""
    WITH a AS ({_linked(source)}),
    parts AS (
        SELECT a.*, fy.financial_year,
            greatest(a.start_date, fy.period_part_start) AS part_start,
            least(coalesce(a.end_date, fy.period_part_end), fy.period_part_end) AS part_end
        FROM a JOIN costed_years fy
          ON a.start_date <= fy.period_part_end
         AND coalesce(a.end_date, fy.period_part_end) >= fy.period_part_start
    )
    SELECT row_id, source, file, row_number, person_id, '{setting}' AS setting,
        {service} AS service, NULL::VARCHAR AS provider_code, {record_id} AS record_id,
        financial_year, strftime(part_start, '%Y-%m') AS activity_month,
        (date_diff('day', part_start, part_end) + 1)::DOUBLE AS units
    FROM parts WHERE part_end >= part_start
    """


# Rule: NHS Continuing Healthcare - weekly_cost / 7 per active day.
CHC_PARTS = f"""
SELECT p.*, 'costed' AS status,
    p.units * c.weekly_cost / 7 AS cost,
    p.units * c.weekly_cost / 7 AS net_cost,
    'package' AS cost_basis, NULL::VARCHAR AS cpa
FROM ({_package_parts("chc", "chc", "care_setting", "package_id")}) p
JOIN pseudonymised.chc c USING (row_id)
"""

# Rule: social care - gross planned_units_per_week x unit_cost / 7 per active day;
# net deducts client_contribution_weekly / 7 per active day, never below 0.
SOCIAL_CARE_PARTS = f"""
SELECT p.*, 'costed' AS status,
    p.units * s.planned_units_per_week * s.unit_cost / 7 AS cost,
    p.units * greatest(
        0.0,
        s.planned_units_per_week * s.unit_cost / 7
            - coalesce(s.client_contribution_weekly, 0.0) / 7
    ) AS net_cost,
    'package' AS cost_basis, NULL::VARCHAR AS cpa
FROM ({_package_parts("social_care", "social_care", "service_type", "service_id")}) p
JOIN pseudonymised.social_care s USING (row_id)
"""

# Rule: mental health inpatient stays - bed days (nights), each night to the year of
# the date it begins; a stay of 0 nights counts 1 bed day on its admission date; an
# open stay is costed as if discharged on the period end.
MH_INPATIENT_PARTS = f"""
WITH a AS ({_linked("mental_health")}),
stays AS (
    SELECT a.*, p.period_start, p.period_end,
        coalesce(a.end_date, p.period_end) AS stay_end
    FROM a CROSS JOIN costing.period p
    WHERE a.record_type = 'INPATIENT'
),
nights AS (
    SELECT *,
        CASE WHEN stay_end = start_date THEN start_date
             ELSE greatest(start_date, period_start) END AS first_night,
        CASE WHEN stay_end = start_date THEN start_date
             ELSE least(stay_end - INTERVAL 1 DAY, period_end)::DATE END AS last_night
    FROM stays
    WHERE stay_end >= start_date
),
parts AS (
    SELECT n.*, fy.financial_year,
        greatest(n.first_night, fy.period_part_start) AS part_start,
        least(n.last_night, fy.period_part_end) AS part_end
    FROM nights n JOIN costed_years fy
      ON n.first_night <= fy.period_part_end AND n.last_night >= fy.period_part_start
)
SELECT row_id, source, file, row_number, person_id, 'mental_health' AS setting, service,
    provider_code, record_id, financial_year,
    strftime(part_start, '%Y-%m') AS activity_month,
    (date_diff('day', part_start, part_end) + 1)::DOUBLE AS units,
    units AS billable_units,
    'mental_health' AS price_source, service AS price_service, NULL::VARCHAR AS price_mode,
    'BED_DAY' AS price_unit, cpa
FROM parts WHERE part_end >= part_start
"""


def _single_day_parts(
    source: str,
    *,
    date_column: str,
    setting: str,
    service: str,
    record_id: str,
    provider: str,
    price_source: str,
    price_mode: str,
    billable: str,
    where: str = "TRUE",
    cpa: str = "NULL::VARCHAR",
    price_service: str | None = None,
) -> str:
    """Rule: a contact or event is costed in the financial year of its date, priced by
    ``price_service`` (default: its service; NULL leaves it unpriced)."""
    return f"""
    SELECT a.row_id, a.source, a.file, a.row_number, a.person_id, '{setting}' AS setting,
        {service} AS service, {provider} AS provider_code, {record_id} AS record_id,
        fy.financial_year, strftime(a.{date_column}, '%Y-%m') AS activity_month,
        1.0 AS units,
        CASE WHEN {billable} THEN 1.0 ELSE 0.0 END AS billable_units,
        '{price_source}' AS price_source, {price_service or service} AS price_service,
        {price_mode} AS price_mode, 'CONTACT' AS price_unit, {cpa} AS cpa
    FROM ({_linked(source)}) a
    JOIN costed_years fy ON fy.start_year = {_fy_of("a." + date_column)}
    WHERE {where}
      AND a.{date_column} BETWEEN fy.period_part_start AND fy.period_part_end
    """


# Rule: community contacts - CONTACT unit cost for (service, contact_mode), else
# (service, any mode); a missed appointment (attended = N) costs 0.
COMMUNITY_PARTS = _single_day_parts(
    "community",
    date_column="contact_date",
    setting="community",
    service="a.service",
    record_id="a.contact_id",
    provider="a.provider_code",
    price_source="community",
    price_mode="a.contact_mode",
    billable="coalesce(a.attended, '') <> 'N'",
)

# Rule: mental health contacts - CONTACT unit cost for the team type. A record whose
# type is neither INPATIENT nor CONTACT (or blank) has no rule: it is kept, unpriced,
# and is not one of the contacts a block contract is shared over.
MH_CONTACT_PARTS = _single_day_parts(
    "mental_health",
    date_column="start_date",
    setting="mental_health",
    service="a.service",
    record_id="a.record_id",
    provider="a.provider_code",
    price_source="mental_health",
    price_mode="NULL::VARCHAR",
    billable="a.record_type = 'CONTACT'",
    where="coalesce(a.record_type, '') <> 'INPATIENT'",
    cpa="a.cpa",
    price_service="CASE WHEN a.record_type = 'CONTACT' THEN a.service END",
)

# Rule: primary care consultations - unit cost for (staff_type, mode), else
# (staff_type, any mode).
PRIMARY_CARE_PARTS = _single_day_parts(
    "primary_care_events",
    date_column="event_date",
    setting="primary_care",
    service="a.staff_type",
    record_id="a.event_id",
    provider="a.practice_code",
    price_source="primary_care",
    price_mode="a.mode",
    billable="TRUE",
)

# Rule: block contracts - where block_contracts.csv has a row for the year, source,
# provider and service, the local unit cost is the contract value (pro rata to the
# year's days inside the period) divided by the accepted, attended contacts or bed
# days of that provider and service in that year; it replaces the national unit cost.
# Otherwise the national unit cost for (service, mode), then (service, any mode).
PRICE_UNIT_COSTED = """
WITH parts AS (
    SELECT * FROM unit_costed_parts
),
block_units AS (
    SELECT financial_year, price_source, provider_code, price_service,
        sum(billable_units) AS billable_units
    FROM parts GROUP BY ALL
),
block_rates AS (
    SELECT b.financial_year, b.source, b.provider_code, b.service,
        b.contract_value * fy.days_in_period / fy.days_in_year
            / nullif(u.billable_units, 0) AS local_unit_cost
    FROM reference.block_contracts b
    JOIN costed_years fy ON fy.financial_year = b.financial_year
    LEFT JOIN block_units u
      ON u.financial_year = b.financial_year AND u.price_source = b.source
     AND u.provider_code = b.provider_code AND u.price_service = b.service
)
SELECT p.row_id, p.source, p.file, p.row_number, p.person_id, p.setting, p.service,
    p.provider_code, p.record_id, 'costed' AS status, p.financial_year,
    p.activity_month, p.units,
    CASE
        WHEN b.financial_year IS NOT NULL THEN p.billable_units * coalesce(b.local_unit_cost, 0)
        WHEN coalesce(exact.cost, any_mode.cost) IS NOT NULL
            THEN p.billable_units * coalesce(exact.cost, any_mode.cost)
        ELSE 0.0
    END AS cost,
    CASE
        WHEN b.financial_year IS NOT NULL THEN 'block_local'
        WHEN coalesce(exact.cost, any_mode.cost) IS NOT NULL THEN 'national_unit_cost'
        ELSE 'unpriced'
    END AS cost_basis,
    p.cpa
FROM parts p
LEFT JOIN block_rates b
  ON b.financial_year = p.financial_year AND b.source = p.price_source
 AND b.provider_code = p.provider_code AND b.service = p.price_service
LEFT JOIN reference.unit_costs exact
  ON exact.financial_year = p.financial_year AND exact.source = p.price_source
 AND exact.service = p.price_service AND exact.unit = p.price_unit
 AND exact.mode = p.price_mode
LEFT JOIN reference.unit_costs any_mode
  ON any_mode.financial_year = p.financial_year AND any_mode.source = p.price_source
 AND any_mode.service = p.price_service AND any_mode.unit = p.price_unit
 AND any_mode.mode IS NULL
"""

_ACTIVITY_COLUMNS = """
    row_id, source, file, row_number, person_id, setting, service, provider_code, record_id,
    financial_year, activity_month, units, cost, net_cost, cost_basis, cpa
"""


class MissingPricesError(ValueError):
    """A reference table has no prices at all for a year in which activity needs them."""


def check_price_coverage(con: duckdb.DuckDBPyConnection) -> None:
    """Stop when a price table has no rows at all for a year its activity falls in (a
    missing year is a delivery mistake, not an unpriced activity). Anything less, such as
    a year of unit costs with no mental health rows, prices as the method says: by
    fallback, else unpriced at £0."""
    missing = con.execute(
        """
        WITH needed AS (
            SELECT 'acute_tariff.csv / acute_pod_default.csv' AS table_name,
                'acute' AS kind, financial_year, count(*) AS rows
            FROM acute_parts WHERE status = 'costed' GROUP BY ALL
            UNION ALL
            SELECT 'unit_costs.csv', 'unit cost', financial_year, count(*)
            FROM unit_costed_parts GROUP BY ALL
        ),
        priced AS (
            SELECT DISTINCT 'acute' AS kind, financial_year FROM reference.acute_tariff
            UNION SELECT DISTINCT 'acute', financial_year FROM reference.acute_pod_default
            UNION SELECT DISTINCT 'unit cost', financial_year FROM reference.unit_costs
        )
        SELECT n.table_name, n.kind, n.financial_year, n.rows
        FROM needed n ANTI JOIN priced p USING (kind, financial_year)
        ORDER BY n.financial_year, n.kind
        """
    ).fetchall()
    if missing:
        lines = [
            f"{table} has no {kind.replace('_', ' ')} prices for {year}, but {rows} "
            f"activity row(s) fall in that year"
            for table, kind, year, rows in missing
        ]
        raise MissingPricesError(
            "; ".join(lines) + ". Add that year's prices to the reference folder, or set "
            "IPC_PERIOD_START/IPC_PERIOD_END to the years you have prices for."
        )


def cost_activity(con: duckdb.DuckDBPyConnection, years: Sequence[str] | None = None) -> None:
    """Build the rows of ``costing.activity`` for ``years`` (financial years such as
    ``2024/25``; every year of the period when None) from the rules above, leaving other
    years' rows as they are. Years outside the period lose their rows."""
    con.execute("CREATE SCHEMA IF NOT EXISTS costing")
    select_costed_years(con, years)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE unit_costed_parts AS
        SELECT * FROM ({COMMUNITY_PARTS})
        UNION ALL BY NAME SELECT * FROM ({MH_CONTACT_PARTS})
        UNION ALL BY NAME SELECT * FROM ({MH_INPATIENT_PARTS})
        UNION ALL BY NAME SELECT * FROM ({PRIMARY_CARE_PARTS})
        """
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE acute_parts AS {ACUTE_PARTS}")
    check_price_coverage(con)
    replace_years(
        con,
        "costing.activity",
        f"""
        SELECT {_ACTIVITY_COLUMNS} FROM (
            SELECT *, cost AS net_cost FROM acute_parts WHERE status = 'costed'
            UNION ALL BY NAME SELECT * FROM ({CHC_PARTS})
            UNION ALL BY NAME SELECT *, cost AS net_cost FROM ({PRICE_UNIT_COSTED})
            UNION ALL BY NAME SELECT * FROM ({SOCIAL_CARE_PARTS})
        )
        """,
        years,
    )
    con.execute("DROP TABLE unit_costed_parts")
    con.execute("DROP TABLE acute_parts")


def build_row_status(con: duckdb.DuckDBPyConnection) -> None:
    """Build ``costing.row_status``: one row per accepted landing row (costed, open, out
    of period or register) with its cost over every year, for the reconciliation."""
    con.execute(
        f"""
        CREATE OR REPLACE TABLE costing.row_status AS
        WITH accepted AS (
            SELECT row_id, source, file, row_number FROM linked.row_links
        ),
        costed AS (
            SELECT row_id,
                bool_or(cost_basis = 'unpriced') AS unpriced,
                {exact_sum("cost")}::DOUBLE AS cost,
                {exact_sum("net_cost")}::DOUBLE AS net_cost
            FROM costing.activity GROUP BY ALL
        ),
        open AS ({OPEN_SPELLS})
        SELECT a.row_id, a.source, a.file, a.row_number,
            CASE
                WHEN c.row_id IS NOT NULL THEN 'costed'
                WHEN o.row_id IS NOT NULL THEN 'open'
                WHEN a.source = 'primary_care_registers' THEN 'register'
                ELSE 'out_of_period'
            END AS status,
            coalesce(c.unpriced, FALSE) AS unpriced,
            coalesce(c.cost, 0.0) AS cost,
            coalesce(c.net_cost, 0.0) AS net_cost
        FROM accepted a
        LEFT JOIN costed c USING (row_id)
        LEFT JOIN open o USING (row_id)
        """
    )
