"""Individual Statements of Resources: costing-method.md section 6.

For each person in an IPC cohort and each year: what is typically spent on people of
the same profile (the members of their primary cohort in their age band, or the whole
cohort when that profile has ``threshold`` people or fewer), their own retrospective
cost, and an indicative personal budget from the banded funding levels.
"""

from collections.abc import Sequence

import duckdb

from costing.disclosure import DisclosureRule
from costing.reference_costs import cashable_sql
from costing.years import replace_years, year_filter
from schemas.sources import SETTINGS

#: The columns of one statement, flattened (``individual_statements/*.jsonl`` nests them).
STATEMENT_COLUMNS = (
    ["person_id", "financial_year", "cohorts", "primary_cohort", "age_band"]
    + ["profile_cohort", "profile_age_band", "profile_people", "fallback_to_cohort"]
    + [f"profile_mean_cost_{s}" for s in [*SETTINGS, "total"]]
    + [f"own_cost_{s}" for s in [*SETTINGS, "total"]]
    + ["budget_amount", "budget_band", "budget_band_lower", "budget_band_upper", "budget_basis"]
)


def build_statements(
    con: duckdb.DuckDBPyConnection,
    rule: DisclosureRule,
    cashable_settings: list[str],
    years: Sequence[str] | None = None,
) -> None:
    """Build ``costing.statements``: one row per person and year in a statement cohort,
    for ``years`` (every year when None; other years' rows are left as they are)."""
    in_years = year_filter("financial_year", years)
    means = ", ".join(f"avg(cost_{s} ORDER BY person_id) AS mean_{s}" for s in [*SETTINGS, "total"])
    threshold = rule.threshold
    r = rule.rounding

    def chosen(column: str) -> str:
        return (
            f"CASE WHEN pr.people > {threshold} THEN pr.{column} "
            f"WHEN co.people > {threshold} THEN co.{column} END"
        )

    profile_figures = ",\n".join(
        f"{chosen('mean_' + s)} AS profile_mean_cost_{s}" for s in [*SETTINGS, "total"]
    )
    own = ",\n".join(f"p.cost_{s} AS own_cost_{s}" for s in [*SETTINGS, "total"])
    query = f"""
        WITH members AS (
            SELECT m.cohort, p.* FROM costing.cohort_membership m
            JOIN costing.person_years p USING (person_id, financial_year)
            WHERE {year_filter("m.financial_year", years)}
        ),
        profiles AS (
            SELECT cohort, financial_year, age_band, count(*) AS people, {means}
            FROM members GROUP BY ALL
        ),
        whole_cohorts AS (
            SELECT cohort, financial_year, count(*) AS people, {means}
            FROM members GROUP BY ALL
        ),
        all_cohorts AS (
            SELECT person_id, financial_year,
                list(cohort ORDER BY cohort_order) AS cohorts
            FROM costing.cohort_membership WHERE {in_years} GROUP BY ALL
        ),
        primaries AS (
            SELECT person_id, financial_year,
                arg_min(cohort, cohort_order) AS primary_cohort
            FROM costing.cohort_membership WHERE statement AND {in_years} GROUP BY ALL
        ),
        band_status AS (
            SELECT cohort, financial_year, bool_or(people <= {threshold}) AS suppressed
            FROM costing.funding_bands WHERE {in_years} GROUP BY ALL
        ),
        non_zero AS (
            SELECT cohort, financial_year, count(*) AS people,
                avg(cashable_cost ORDER BY person_id) AS mean_cashable_cost
            FROM costing.band_membership WHERE cashable_cost > 0 AND {in_years} GROUP BY ALL
        )
        SELECT p.person_id, p.financial_year, c.cohorts, pm.primary_cohort, p.age_band,
            pm.primary_cohort AS profile_cohort,
            CASE WHEN pr.people > {threshold} THEN p.age_band END AS profile_age_band,
            CASE
                WHEN pr.people > {threshold} THEN (2 * pr.people + {r}) // {2 * r} * {r}
                WHEN co.people > {threshold} THEN (2 * co.people + {r}) // {2 * r} * {r}
            END AS profile_people,
            pr.people <= {threshold} AS fallback_to_cohort,
            {profile_figures},
            {own},
            {cashable_sql(cashable_settings)} AS own_cashable_cost,
            CASE
                WHEN {cashable_sql(cashable_settings)} <= 0 THEN 0.0
                WHEN bs.suppressed AND nz.people > {threshold} THEN nz.mean_cashable_cost
                WHEN bs.suppressed THEN NULL
                ELSE fb.mean_cashable_cost
            END AS budget_amount,
            CASE WHEN {cashable_sql(cashable_settings)} > 0 AND NOT bs.suppressed
                THEN bm.band END AS budget_band,
            CASE WHEN {cashable_sql(cashable_settings)} > 0 AND NOT bs.suppressed
                THEN fb.lower END AS budget_band_lower,
            CASE WHEN {cashable_sql(cashable_settings)} > 0 AND NOT bs.suppressed
                THEN fb.upper END AS budget_band_upper,
            CASE
                WHEN {cashable_sql(cashable_settings)} <= 0 THEN 'none'
                WHEN bs.suppressed AND nz.people > {threshold} THEN 'cohort'
                WHEN bs.suppressed THEN 'suppressed'
                ELSE 'band'
            END AS budget_basis
        FROM primaries pm
        JOIN costing.person_years p USING (person_id, financial_year)
        JOIN all_cohorts c USING (person_id, financial_year)
        JOIN profiles pr
          ON pr.cohort = pm.primary_cohort AND pr.financial_year = p.financial_year
         AND pr.age_band = p.age_band
        JOIN whole_cohorts co
          ON co.cohort = pm.primary_cohort AND co.financial_year = p.financial_year
        LEFT JOIN band_status bs
          ON bs.cohort = pm.primary_cohort AND bs.financial_year = p.financial_year
        LEFT JOIN non_zero nz
          ON nz.cohort = pm.primary_cohort AND nz.financial_year = p.financial_year
        LEFT JOIN costing.band_membership bm
          ON bm.cohort = pm.primary_cohort AND bm.financial_year = p.financial_year
         AND bm.person_id = p.person_id
        LEFT JOIN costing.funding_bands fb
          ON fb.cohort = pm.primary_cohort AND fb.financial_year = p.financial_year
         AND fb.band = bm.band
        ORDER BY p.financial_year, p.person_id
        """
    replace_years(con, "costing.statements", query, years)
