"""Person-level costs: costing-method.md section 3.

For each person and financial year of the delivery, the sum of costs per setting
and the total. The delivery's years are those in which any costed activity falls. A
person appears in a year when they have any activity attributed to it (missed
appointments and unpriced rows included) or a register that counts in it (diagnosis
on or before its last day), so that cohort averages include people who used nothing.
"""

from collections.abc import Sequence

import duckdb

from costing.money import exact_sum
from costing.years import replace_years, select_costed_years, year_filter
from schemas.sources import SETTINGS

AGE_BAND_SQL = """
    CASE
        WHEN {age} < 18 THEN '0-17'
        WHEN {age} < 65 THEN '18-64'
        WHEN {age} < 75 THEN '65-74'
        WHEN {age} < 85 THEN '75-84'
        ELSE '85+'
    END
"""

#: Age on 1 April of the year, from the minimised birth fields kept in the spine.
AGE_ON_1_APRIL_SQL = """
    greatest(0, {year} - s.birth_year - CASE WHEN s.born_after_1_april THEN 1 ELSE 0 END)
"""


def age_sql(year_column: str) -> str:
    return AGE_ON_1_APRIL_SQL.format(year=year_column).strip()


def age_band_sql(age_expression: str) -> str:
    return AGE_BAND_SQL.format(age=age_expression).strip()


def build_person_costs(con: duckdb.DuckDBPyConnection, years: Sequence[str] | None = None) -> None:
    """Build ``costing.person_years`` (one row per person and year, costs by setting,
    added exactly so that two runs publish the same figures) for ``years`` (every year
    when None; other years' rows are left as they are)."""
    select_costed_years(con, years)
    in_years = year_filter("financial_year", years)
    setting_sums = ",\n".join(
        f"coalesce({exact_sum('a.cost')} FILTER (WHERE a.setting = '{s}'), 0) AS cost_{s}"
        for s in SETTINGS
    )
    setting_cols = ", ".join(f"coalesce(c.cost_{s}, 0)::DOUBLE AS cost_{s}" for s in SETTINGS)
    total = " + ".join(f"coalesce(c.cost_{s}, 0)" for s in SETTINGS)
    query = f"""
        WITH delivery_years AS (
            SELECT fy.* FROM costed_years fy
            WHERE fy.financial_year IN (
                SELECT DISTINCT financial_year FROM costing.activity WHERE {in_years}
            )
        ),
        activity_costs AS (
            SELECT a.person_id, a.financial_year, {setting_sums}
            FROM costing.activity a WHERE {in_years}
            GROUP BY a.person_id, a.financial_year
        ),
        register_years AS (
            SELECT DISTINCT l.person_id, y.financial_year
            FROM pseudonymised.primary_care_registers r
            JOIN linked.row_links l
              ON l.row_id = r.row_id
            JOIN delivery_years y ON r.diagnosis_date <= y.fy_end
        ),
        present AS (
            SELECT person_id, financial_year FROM activity_costs
            UNION
            SELECT person_id, financial_year FROM register_years
        )
        SELECT p.person_id, p.financial_year, y.start_year,
            {age_sql("y.start_year")} AS age,
            {age_band_sql(age_sql("y.start_year"))} AS age_band,
            s.sex, s.postcode_district, s.linked_by_nhs_number,
            {setting_cols},
            ({total})::DOUBLE AS cost_total
        FROM present p
        JOIN delivery_years y USING (financial_year)
        JOIN linked.person_spine s USING (person_id)
        LEFT JOIN activity_costs c
          ON c.person_id = p.person_id AND c.financial_year = p.financial_year
        ORDER BY p.financial_year, p.person_id
        """
    replace_years(con, "costing.person_years", query, years)
