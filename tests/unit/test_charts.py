"""Pictures of the costing figures (delivery/charts.py): what is drawn, and the bytes.

The drawers are handed figures that are already through disclosure control; these
tests check what they take from them (a suppressed cohort is never a bar) and that
the PNG is small and the same every time.
"""

import base64

import polars as pl
import pytest

from costing.concentration import CostConcentration
from costing.disclosure import DisclosureRule, protect_rows
from delivery.charts import (
    cost_concentration_png,
    markdown_image,
    mean_cost_by_setting_png,
    setting_bars,
)
from delivery.tables import REFERENCE_COST_FIGURES
from schemas.sources import SETTINGS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 60_000


def _concentration() -> CostConcentration:
    def shares(power: float) -> list[float]:
        return [1 - (1 - p / 100) ** power for p in range(101)]

    points = pl.DataFrame(
        {
            "financial_year": ["2023/24"] * 101 + ["2024/25"] * 101,
            "percentile": list(range(101)) * 2,
            "spend_share": shares(8.0) + shares(11.0),
        }
    )
    years = pl.DataFrame(
        {
            "financial_year": ["2022/23", "2023/24", "2024/25"],
            "people": [300, 1_020, 1_040],
            "top_share": [None, shares(8.0)[5], shares(11.0)[5]],
            "suppressed": [True, False, False],
        }
    )
    return CostConcentration(points=points, years=years)


def _unprotected() -> pl.DataFrame:
    """Reference costs as the warehouse holds them: one small cohort, one empty."""
    rows = []
    for year in ("2023/24", "2024/25"):
        for cohort, people in (("older_ltc", 190), ("children_complex", 5), ("high_cost", 0)):
            means = {
                f"mean_cost_{s}": 100.0 * (i + 1) if people else None
                for i, s in enumerate(SETTINGS)
            }
            total = sum(m for m in means.values() if m is not None) if people else None
            rows.append(
                {"cohort": cohort, "financial_year": year, "people": people, "mean_cost": total}
                | {f: None for f in ("median_cost", "p25_cost", "p75_cost", "p90_cost")}
                | means
            )
    return pl.DataFrame(rows)


def _published() -> pl.DataFrame:
    return protect_rows(_unprotected(), DisclosureRule(), figure_columns=REFERENCE_COST_FIGURES)


def test_the_concentration_picture_is_a_small_png_and_the_same_every_time() -> None:
    png = cost_concentration_png(_concentration())
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) < MAX_BYTES
    assert cost_concentration_png(_concentration()) == png


def test_the_concentration_picture_refuses_anything_finer_than_whole_percentiles() -> None:
    whole = _concentration()
    finer = whole.points.with_columns(pl.col("percentile") // 2)  # two points a percentile
    with pytest.raises(ValueError, match="whole percentiles"):
        cost_concentration_png(CostConcentration(points=finer, years=whole.years))


def test_the_concentration_picture_with_nothing_to_draw_is_still_a_picture() -> None:
    empty = CostConcentration(
        points=pl.DataFrame(
            schema={"financial_year": pl.String, "percentile": pl.Int32, "spend_share": pl.Float64}
        ),
        years=pl.DataFrame(
            {
                "financial_year": ["2023/24"],
                "people": [None],
                "top_share": [None],
                "suppressed": [True],
            },
            schema_overrides={"people": pl.Int64, "top_share": pl.Float64},
        ),
    )
    assert cost_concentration_png(empty).startswith(PNG_SIGNATURE)


def test_a_suppressed_cohort_is_marked_never_drawn() -> None:
    bars, marks = setting_bars(_published())
    assert set(bars["cohort"]) == {"older_ltc"}
    assert bars.height == 2 * len(SETTINGS)
    assert set(bars["setting"]) == set(SETTINGS)
    older = bars.filter(pl.col("financial_year") == "2023/24").sort("setting")
    assert older["mean_cost"].to_list() == [
        100.0 * (SETTINGS.index(s) + 1) for s in sorted(SETTINGS)
    ]
    assert older["cohort_mean_cost"].unique().to_list() == [2100.0]
    assert marks.sort("financial_year", "cohort").to_dicts() == [
        {"financial_year": "2023/24", "cohort": "children_complex", "mark": "suppressed"},
        {"financial_year": "2023/24", "cohort": "high_cost", "mark": "no people"},
        {"financial_year": "2024/25", "cohort": "children_complex", "mark": "suppressed"},
        {"financial_year": "2024/25", "cohort": "high_cost", "mark": "no people"},
    ]


def test_the_bars_are_drawn_only_from_figures_after_disclosure_control() -> None:
    with pytest.raises(ValueError, match="after disclosure control"):
        setting_bars(_unprotected())
    with pytest.raises(ValueError, match="after disclosure control"):
        mean_cost_by_setting_png(_unprotected())


def test_the_setting_picture_is_a_small_png_and_the_same_every_time() -> None:
    png = mean_cost_by_setting_png(_published())
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) < MAX_BYTES
    assert mean_cost_by_setting_png(_published()) == png


def test_a_picture_goes_into_markdown_as_a_data_uri() -> None:
    text = markdown_image(PNG_SIGNATURE, "alt text")
    assert text == f"![alt text](data:image/png;base64,{base64.b64encode(PNG_SIGNATURE).decode()})"
