"""Cohort reference costs and banded funding levels: costing-method.md section 5.

These tables are the unsuppressed figures, kept inside the warehouse; every copy
that leaves the pipeline goes through :mod:`costing.disclosure` first.
Percentiles interpolate linearly between order statistics, as ``numpy.percentile``'s
default does (DuckDB's ``quantile_cont``). Means and sums add in a fixed order
(``ORDER BY`` inside the aggregate): floating-point addition depends on order, and two
runs on the same data must publish the same figures to the last bit.
"""

from collections.abc import Sequence

import duckdb

from costing.years import replace_years, year_filter
from schemas.sources import SETTINGS


def cashable_sql(cashable_settings: list[str], prefix: str = "p.") -> str:
    """A person's cashable cost: the sum of the cashable settings' costs."""
    unknown = set(cashable_settings) - set(SETTINGS)
    if unknown or not cashable_settings:
        raise ValueError(
            f"cashable_settings must be a non-empty list of {list(SETTINGS)}; "
            f"got {cashable_settings}"
        )
    return " + ".join(f"{prefix}cost_{s}" for s in cashable_settings)


def build_cohort_reference_costs(
    con: duckdb.DuckDBPyConnection, years: Sequence[str] | None = None
) -> None:
    """Build ``costing.cohort_reference_costs``: one row per cohort and delivery year
    (a cohort with nobody in a year shows 0 people and no figures), for ``years`` (every
    year when None; other years' rows are left as they are)."""
    setting_means = ",\n".join(
        f"avg(p.cost_{s} ORDER BY p.person_id) AS mean_cost_{s}" for s in SETTINGS
    )
    in_years = year_filter("financial_year", years)
    query = f"""
        WITH grid AS (
            SELECT o.cohort, o.cohort_order, y.financial_year
            FROM costing.cohort_order o
            CROSS JOIN (
                SELECT DISTINCT financial_year FROM costing.person_years WHERE {in_years}
            ) y
        ),
        figures AS (
            SELECT m.cohort, m.financial_year,
                count(*) AS people,
                avg(p.cost_total ORDER BY p.person_id) AS mean_cost,
                quantile_cont(p.cost_total, 0.5) AS median_cost,
                quantile_cont(p.cost_total, 0.25) AS p25_cost,
                quantile_cont(p.cost_total, 0.75) AS p75_cost,
                quantile_cont(p.cost_total, 0.9) AS p90_cost,
                {setting_means}
            FROM costing.cohort_membership m
            JOIN costing.person_years p USING (person_id, financial_year)
            WHERE {year_filter("m.financial_year", years)}
            GROUP BY m.cohort, m.financial_year
        )
        SELECT g.cohort, g.financial_year, coalesce(f.people, 0) AS people,
            f.* EXCLUDE (cohort, financial_year, people)
        FROM grid g LEFT JOIN figures f USING (cohort, financial_year)
        ORDER BY g.financial_year, g.cohort_order
        """
    replace_years(con, "costing.cohort_reference_costs", query, years, year_ordered=True)


def build_funding_bands(
    con: duckdb.DuckDBPyConnection,
    cashable_settings: list[str],
    years: Sequence[str] | None = None,
) -> None:
    """Build ``costing.band_membership`` and ``costing.funding_bands`` for ``years``
    (every year when None; other years' rows are left as they are).

    Within each cohort and year, the people with non-zero cashable cost are banded at
    the 20th, 40th, 60th and 80th percentiles of their cashable cost; a cost equal to
    a boundary falls in the lower band. Band 1 starts at £0; band 5 has no upper bound.
    """
    in_years = year_filter("financial_year", years)
    membership = f"""
        WITH cashable AS (
            SELECT m.cohort, m.financial_year, m.person_id,
                {cashable_sql(cashable_settings)} AS cashable_cost
            FROM costing.cohort_membership m
            JOIN costing.person_years p USING (person_id, financial_year)
            WHERE {year_filter("m.financial_year", years)}
        ),
        boundaries AS (
            SELECT cohort, financial_year,
                quantile_cont(cashable_cost, 0.2) AS b1,
                quantile_cont(cashable_cost, 0.4) AS b2,
                quantile_cont(cashable_cost, 0.6) AS b3,
                quantile_cont(cashable_cost, 0.8) AS b4
            FROM cashable WHERE cashable_cost > 0
            GROUP BY cohort, financial_year
        )
        SELECT c.cohort, c.financial_year, c.person_id, c.cashable_cost,
            CASE
                WHEN c.cashable_cost <= 0 THEN NULL
                WHEN c.cashable_cost <= b.b1 THEN 1
                WHEN c.cashable_cost <= b.b2 THEN 2
                WHEN c.cashable_cost <= b.b3 THEN 3
                WHEN c.cashable_cost <= b.b4 THEN 4
                ELSE 5
            END AS band,
            b.b1, b.b2, b.b3, b.b4
        FROM cashable c
        LEFT JOIN boundaries b USING (cohort, financial_year)
        """
    replace_years(con, "costing.band_membership", membership, years)
    bands = f"""
        WITH grid AS (
            SELECT o.cohort, o.cohort_order, y.financial_year, band
            FROM costing.cohort_order o
            CROSS JOIN (
                SELECT DISTINCT financial_year FROM costing.person_years WHERE {in_years}
            ) y
            CROSS JOIN range(1, 6) AS r(band)
        ),
        boundaries AS (
            SELECT DISTINCT cohort, financial_year, b1, b2, b3, b4
            FROM costing.band_membership WHERE band IS NOT NULL AND {in_years}
        ),
        bands AS (
            SELECT cohort, financial_year, band,
                count(*) AS people,
                avg(cashable_cost ORDER BY person_id) AS mean_cashable_cost
            FROM costing.band_membership WHERE band IS NOT NULL AND {in_years}
            GROUP BY ALL
        )
        SELECT g.cohort, g.financial_year, g.band,
            coalesce(s.people, 0) AS people,
            CASE g.band WHEN 1 THEN CASE WHEN b.b1 IS NOT NULL THEN 0.0 END
                WHEN 2 THEN b.b1 WHEN 3 THEN b.b2 WHEN 4 THEN b.b3 ELSE b.b4 END AS lower,
            CASE g.band WHEN 1 THEN b.b1 WHEN 2 THEN b.b2 WHEN 3 THEN b.b3
                WHEN 4 THEN b.b4 ELSE NULL END AS upper,
            s.mean_cashable_cost
        FROM grid g
        LEFT JOIN boundaries b USING (cohort, financial_year)
        LEFT JOIN bands s USING (cohort, financial_year, band)
        ORDER BY g.financial_year, g.cohort_order, g.band
        """
    replace_years(con, "costing.funding_bands", bands, years, year_ordered=True)
