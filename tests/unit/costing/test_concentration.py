"""The cost-concentration curve (costing/concentration.py) on small tables worked out by hand."""

from itertools import pairwise

import duckdb
import polars as pl
import pytest

from costing.concentration import TOP_PERCENT, concentration_points, cost_concentration
from costing.disclosure import DisclosureRule

CONTRACT = DisclosureRule()
#: No suppression, no rounding: to check the arithmetic on a handful of people.
NONE = DisclosureRule(threshold=0, rounding=1, override_reason="unit test of the arithmetic")


def _person_years(costs_by_year: dict[str, list[float]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA costing")
    con.execute(
        "CREATE TABLE costing.person_years (person_id VARCHAR, financial_year VARCHAR, "
        "cost_total DOUBLE)"
    )
    rows = [
        (f"{year}-{i}", year, cost)
        for year, costs in costs_by_year.items()
        for i, cost in enumerate(costs)
    ]
    if rows:
        con.executemany("INSERT INTO costing.person_years VALUES (?, ?, ?)", rows)
    return con


def _curve(points: pl.DataFrame, year: str) -> list[float]:
    return (
        points.filter(pl.col("financial_year") == year).sort("percentile")["spend_share"].to_list()
    )


def test_top_shares_of_twenty_people_worked_by_hand() -> None:
    # 20 people: £500, £300, and 18 at £10 - £980 in all. The top 5% is
    # round(5 * 20 / 100) = 1 person (£500); the top 10% is 2 people (£800); the
    # top 15% is round(3.0) = 3 people (£810); the top 12% is round(2.4) = 2 people.
    con = _person_years({"2023/24": [10.0] * 9 + [300.0] + [10.0] * 9 + [500.0]})
    curve = _curve(cost_concentration(con, NONE).points, "2023/24")
    assert len(curve) == 101
    assert curve[0] == 0.0
    assert curve[5] == pytest.approx(500 / 980)
    assert curve[10] == pytest.approx(800 / 980)
    assert curve[12] == pytest.approx(800 / 980)
    assert curve[15] == pytest.approx(810 / 980)
    assert curve[100] == 1.0
    years = cost_concentration(con, NONE).years.row(0, named=True)
    assert years == {
        "financial_year": "2023/24",
        "people": 20,
        "top_share": pytest.approx(500 / 980),
        "suppressed": False,
    }


def test_every_curve_rises_from_nothing_to_all_spend_and_never_falls() -> None:
    # 1,200 and 900 people: every step of the curve adds the same number of people.
    costs = [float((i * 7919) % 1000) for i in range(1_200)]  # includes some £0
    con = _person_years({"2023/24": costs, "2024/25": [c * 3 + 1 for c in costs[:900]]})
    concentration = cost_concentration(con, CONTRACT)
    for year in ("2023/24", "2024/25"):
        curve = _curve(concentration.points, year)
        assert len(curve) == 101
        assert (curve[0], curve[-1]) == (0.0, 1.0)
        assert all(b >= a for a, b in pairwise(curve))
        # Most costly first: each step (of as many people) adds no more than the last.
        steps = [b - a for a, b in pairwise(curve)]
        assert all(later <= earlier + 1e-12 for earlier, later in pairwise(steps))
        assert curve[TOP_PERCENT] >= TOP_PERCENT / 100


def test_a_year_whose_percentile_steps_hold_seven_or_fewer_people_is_not_drawn() -> None:
    # 800 people: every step of the curve adds 8 people. 799: some step adds 7.
    con = _person_years({"2023/24": [1.0 + i for i in range(800)], "2024/25": [5.0] * 799})
    raw = concentration_points(con)
    steps = raw.with_columns(pl.col("top_people").diff().over("financial_year").alias("step"))
    assert steps.filter(pl.col("financial_year") == "2023/24")["step"].min() == 8
    assert steps.filter(pl.col("financial_year") == "2024/25")["step"].min() == 7

    concentration = cost_concentration(con, CONTRACT)
    assert concentration.points["financial_year"].unique().to_list() == ["2023/24"]
    assert concentration.years.to_dicts() == [
        {
            "financial_year": "2023/24",
            "people": 800,
            "top_share": pytest.approx(sum(range(761, 801)) / sum(range(1, 801))),
            "suppressed": False,
        },
        {"financial_year": "2024/25", "people": 800, "top_share": None, "suppressed": True},
    ]


def test_few_people_are_never_shown_and_counts_are_rounded() -> None:
    con = _person_years({"2023/24": [100.0, 50.0, 0.0], "2024/25": [10.0] * 12})
    concentration = cost_concentration(con, CONTRACT)
    assert concentration.points.is_empty()
    assert concentration.years.to_dicts() == [
        {"financial_year": "2023/24", "people": None, "top_share": None, "suppressed": True},
        {"financial_year": "2024/25", "people": 10, "top_share": None, "suppressed": True},
    ]


def test_a_year_with_no_spend_has_no_curve() -> None:
    con = _person_years({"2023/24": [0.0] * 1_000})
    concentration = cost_concentration(con, CONTRACT)
    assert concentration.points.is_empty()
    assert concentration.years["suppressed"].to_list() == [True]


def test_people_with_the_same_cost_in_any_order_give_the_same_curve() -> None:
    costs = [float(c) for c in [7, 3, 3, 3, 9, 0, 3, 7] * 120]
    forward = cost_concentration(_person_years({"2023/24": costs}), CONTRACT).points
    backward = cost_concentration(_person_years({"2023/24": costs[::-1]}), CONTRACT).points
    assert forward.equals(backward)


def test_no_people_gives_nothing_to_draw() -> None:
    concentration = cost_concentration(_person_years({}), CONTRACT)
    assert concentration.points.is_empty()
    assert concentration.years.is_empty()
