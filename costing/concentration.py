"""How concentrated spending is: the cost-concentration curve, per financial year.

People are ranked from most to least costly (``cost_total`` in ``costing.person_years``)
and, at each whole percentile of people (0, 1, ..., 100), the curve gives the share
of the year's spend held by the costliest that-many percent. What is shown is these
101 points per year, after :func:`protect_concentration`, never one person's value.

Disclosure control (:mod:`costing.disclosure`): "the top k percent" is the costliest
``round(k * people / 100)`` people (half up), so the step from one percentile to the
next adds the spend of a whole number of people. A year is drawn only if every one of
its 100 steps adds more than ``threshold`` people (with the contract's 7: 800 people
or more); otherwise a step describes one to seven people and the year is
suppressed. A year whose spend is £0 has no shares to show and is suppressed too.
Shares are sums of costs fixed to 1e-10 of a pound and added exactly (as
:mod:`costing.money` does), so two runs give the same curve to the last bit; which of
two people with the same cost ranks first changes no sum.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import polars as pl

from costing.disclosure import DisclosureRule
from costing.money import EXACT_MONEY
from costing.years import year_filter

#: The marked share of people at the top of the curve.
TOP_PERCENT = 5

_POINTS_SQL = f"""
    WITH costs AS (
        SELECT financial_year, cost_total::{EXACT_MONEY} AS cost,
            row_number() OVER (PARTITION BY financial_year ORDER BY cost_total DESC) AS rank
        FROM costing.person_years
        WHERE {{years}}
    ),
    cumulative AS (
        SELECT financial_year, rank,
            sum(cost) OVER (
                PARTITION BY financial_year ORDER BY rank ROWS UNBOUNDED PRECEDING
            ) AS spend
        FROM costs
    ),
    years AS (
        SELECT financial_year, count(*) AS people, sum(cost) AS total
        FROM costs GROUP BY financial_year
    ),
    grid AS (
        SELECT y.financial_year, y.people, y.total, p.percentile,
            (p.percentile * y.people + 50) // 100 AS top_people
        FROM years y CROSS JOIN range(0, 101) AS p(percentile)
    )
    SELECT g.financial_year, g.percentile::INTEGER AS percentile, g.people, g.top_people,
        CASE WHEN g.total > 0
            THEN coalesce(c.spend, 0)::DOUBLE / g.total::DOUBLE END AS spend_share
    FROM grid g
    LEFT JOIN cumulative c ON c.financial_year = g.financial_year AND c.rank = g.top_people
    ORDER BY g.financial_year, g.percentile
"""


@dataclass(frozen=True)
class CostConcentration:
    """The curve's points for the years that may be shown, and a line per year.

    ``points``: ``financial_year``, ``percentile`` (0-100, share of people from the most
    costly), ``spend_share`` (0-1, their share of the year's spend); only years not
    suppressed. ``years``: ``financial_year``, ``people`` (rounded as every published
    count is; null when 1 to ``threshold``), ``top_share`` (the top
    :data:`TOP_PERCENT` percent's share of spend; null when suppressed), ``suppressed``.
    """

    points: pl.DataFrame
    years: pl.DataFrame


def concentration_points(
    con: duckdb.DuckDBPyConnection, years: Sequence[str] | None = None
) -> pl.DataFrame:
    """The unprotected curve: every year's 101 points and the people behind each.

    Columns ``financial_year``, ``percentile``, ``people`` (in the year), ``top_people``
    (the costliest people the point covers), ``spend_share``. Stays inside the
    pipeline: pass it through :func:`protect_concentration` before it is shown. Only
    ``years`` (every year when None).
    """
    return con.sql(_POINTS_SQL.replace("{years}", year_filter("financial_year", years))).pl()


def protect_concentration(raw: pl.DataFrame, rule: DisclosureRule) -> CostConcentration:
    """Keep the years none of whose percentile steps adds 1 to ``threshold`` people."""
    steps = raw.sort("financial_year", "percentile").with_columns(
        (pl.col("top_people") - pl.col("top_people").shift(1).over("financial_year")).alias("step")
    )
    years = (
        steps.group_by("financial_year", maintain_order=True)
        .agg(
            pl.col("people").first(),
            rule.suppressed_expr(pl.col("step")).any().alias("small_step"),
            pl.col("spend_share").is_null().any().alias("no_spend"),
            pl.col("spend_share")
            .filter(pl.col("percentile") == TOP_PERCENT)
            .first()
            .alias("top_share"),
        )
        .with_columns((pl.col("small_step") | pl.col("no_spend")).alias("suppressed"))
    )
    shown = years.filter(~pl.col("suppressed"))["financial_year"]
    points = steps.filter(pl.col("financial_year").is_in(shown.to_list())).select(
        "financial_year", "percentile", "spend_share"
    )
    years = years.select(
        "financial_year",
        pl.when(rule.suppressed_expr(pl.col("people")))
        .then(None)
        .otherwise(rule.round_expr(pl.col("people")))
        .alias("people"),
        pl.when(pl.col("suppressed")).then(None).otherwise(pl.col("top_share")).alias("top_share"),
        "suppressed",
    )
    return CostConcentration(points=points, years=years)


def cost_concentration(
    con: duckdb.DuckDBPyConnection, rule: DisclosureRule, years: Sequence[str] | None = None
) -> CostConcentration:
    """The cost-concentration curve of ``costing.person_years`` (``years`` only, or every
    year), after disclosure control."""
    return protect_concentration(concentration_points(con, years), rule)
