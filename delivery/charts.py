"""Pictures of the costing figures, for the Dagster UI and the README.

The drawing functions take figures that are already aggregated and through
disclosure control - the cost-concentration curve's percentile points
(:mod:`costing.concentration`) and the published cohort reference costs
(:func:`delivery.tables.cohort_reference_costs`, the same frame the CSV is written
from) - and return PNG bytes. They never see a person's row. Output is
deterministic: matplotlib's default style whatever the local ``matplotlibrc``, a
fixed size and resolution, the bundled DejaVu font and no ``Software`` stamp, so the
same figures give the same bytes.

``python -m delivery.charts WAREHOUSE OUT_DIR`` draws both pictures from a warehouse
(``make pictures`` does it for the bundled sample site).
"""

import argparse
import base64
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from matplotlib import style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter
from PIL import Image

from costing.concentration import TOP_PERCENT, CostConcentration, cost_concentration
from costing.disclosure import DisclosureRule
from delivery import tables
from schemas.sources import SETTINGS

#: Inches and dots per inch: 7 x 4 in at 100 dpi is 700 x 400 pixels.
SIZE = (7.0, 4.0)
DPI = 100
#: Okabe-Ito colours (readable with colour-blindness), one per care setting.
SETTING_COLOURS = dict(
    zip(
        SETTINGS,
        ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"],
        strict=True,
    )
)
_YEAR_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
_NOTE: dict[str, Any] = {"color": "#555555", "fontsize": 8}
#: Colours kept in the PNG's palette (antialiased edges included).
_COLOURS = 128


def _png(figure: Figure) -> bytes:
    """Render with Agg and save as a palette PNG: a chart has few colours, and a
    palette keeps it a third of the size of full colour (well under 60 KB for the UI).
    Pillow writes no time or software stamp, so the bytes depend on the pixels only."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba())
    palette = image.convert("RGB").quantize(
        colors=_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _figure() -> Figure:
    return Figure(figsize=SIZE, dpi=DPI, layout="constrained")


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown showing ``png`` inline (a data URI), as Dagster's UI renders it."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def _pounds(value: float, _position: object = None) -> str:
    return f"£{value:,.0f}"


def cost_concentration_png(concentration: CostConcentration) -> bytes:
    """The cost-concentration curve: share of people, most costly first (x), against
    their cumulative share of spend (y), one line per financial year, with the top
    :data:`~costing.concentration.TOP_PERCENT` percent marked and its share written.

    Draws only ``concentration.points``, at most one point per whole percentile and
    year (anything finer is refused); suppressed years are named above the plot, not
    drawn.
    """
    points, years = concentration.points, concentration.years
    per_year = points.group_by("financial_year", "percentile").len()
    if points["percentile"].is_between(0, 100).not_().any() or (per_year["len"] > 1).any():
        raise ValueError("the cost-concentration curve is drawn at whole percentiles only")
    with style.context("default"):
        figure = _figure()
        ax = figure.add_subplot()
        ax.plot([0, 100], [0, 100], color="#999999", linestyle="--", linewidth=1)
        ax.axvline(TOP_PERCENT, color="#999999", linestyle=":", linewidth=1)
        shown = years.filter(~pl.col("suppressed"))
        notes = []
        for i, year in enumerate(shown.iter_rows(named=True)):
            colour = _YEAR_COLOURS[i % len(_YEAR_COLOURS)]
            curve = points.filter(pl.col("financial_year") == year["financial_year"]).sort(
                "percentile"
            )
            people = f" ({year['people']:,} people)" if year["people"] is not None else ""
            ax.plot(
                curve["percentile"].to_list(),
                [100 * s for s in curve["spend_share"].to_list()],
                color=colour,
                linewidth=1.8,
                label=f"{year['financial_year']}{people}",
            )
            top = 100 * year["top_share"]
            ax.plot([TOP_PERCENT], [top], marker="o", color=colour, markersize=5)
            notes.append((colour, f"{year['financial_year']}: top {TOP_PERCENT}% → {top:.0f}%"))
        for j, (colour, text) in enumerate(notes):
            ax.annotate(
                text,
                xy=(0.97, 0.05 + 0.07 * (len(notes) - 1 - j)),
                xycoords="axes fraction",
                ha="right",
                color=colour,
                fontsize=9,
                fontweight="bold",
            )
        if notes:
            ax.annotate(
                f"share of spend of the costliest {TOP_PERCENT}% of people",
                xy=(0.97, 0.05 + 0.07 * len(notes)),
                xycoords="axes fraction",
                ha="right",
                **_NOTE,
            )
            ax.legend(loc="center right", fontsize=8, frameon=False)
        else:
            ax.text(50, 50, "no year to show", ha="center", va="center", **_NOTE)
        hidden = years.filter(pl.col("suppressed"))["financial_year"].to_list()
        if hidden:
            ax.set_title(
                "not drawn (too few people for whole percentiles, or no spend): "
                + ", ".join(hidden),
                loc="left",
                **_NOTE,
            )
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.xaxis.set_major_formatter(PercentFormatter())
        ax.yaxis.set_major_formatter(PercentFormatter())
        ax.set_xlabel("share of people, most costly first")
        ax.set_ylabel("cumulative share of spend")
        ax.grid(alpha=0.3)
        figure.suptitle("How concentrated is spending?", fontsize=11)
        return _png(figure)


def setting_bars(published: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What :func:`mean_cost_by_setting_png` draws, from published reference costs.

    Returns the bars (``financial_year``, ``cohort``, ``setting``, ``mean_cost``: one
    per cohort shown, year and setting; ``cohort_mean_cost``, the published mean, labels
    the bar) and the cohorts marked instead of drawn
    (``financial_year``, ``cohort``, ``mark``: ``suppressed``, or ``no people``).
    ``published`` must be the frame after disclosure control (it has ``suppressed``).
    """
    if "suppressed" not in published.columns:
        raise ValueError(
            "mean cost by setting is drawn only from reference costs after disclosure "
            "control (tables.cohort_reference_costs)"
        )
    means = [f"mean_cost_{s}" for s in SETTINGS]
    has_figures = pl.all_horizontal(pl.col(c).is_not_null() for c in ["mean_cost", *means])
    shown = published.filter(~pl.col("suppressed") & has_figures)
    bars = (
        shown.select(
            "financial_year", "cohort", pl.col("mean_cost").alias("cohort_mean_cost"), *means
        )
        .unpivot(
            index=["financial_year", "cohort", "cohort_mean_cost"],
            variable_name="setting",
            value_name="mean_cost",
        )
        .with_columns(pl.col("setting").str.strip_prefix("mean_cost_"))
        .select("financial_year", "cohort", "setting", "mean_cost", "cohort_mean_cost")
    )
    marks = published.filter(pl.col("suppressed") | ~has_figures).select(
        "financial_year",
        "cohort",
        pl.when(pl.col("suppressed"))
        .then(pl.lit("suppressed"))
        .otherwise(pl.lit("no people"))
        .alias("mark"),
    )
    return bars, marks


def mean_cost_by_setting_png(published: pl.DataFrame) -> bytes:
    """Mean cost per person by care setting, per cohort (stacked horizontal bars, one
    panel per financial year), from the published reference costs: a suppressed
    cohort is labelled ``suppressed``, never drawn."""
    bars, marks = setting_bars(published)
    cohorts = published["cohort"].unique(maintain_order=True).to_list()
    years = published["financial_year"].unique(maintain_order=True).sort().to_list()
    with style.context("default"):
        figure = _figure()
        axes = figure.subplots(1, max(1, len(years)), sharey=True, squeeze=False)[0]
        widest = max(
            [0.0, *bars.group_by("financial_year", "cohort").agg(pl.sum("mean_cost"))["mean_cost"]]
        )
        for ax, year in zip(axes, years, strict=False):
            left = dict.fromkeys(cohorts, 0.0)
            for setting in SETTINGS:
                part = bars.filter(
                    (pl.col("financial_year") == year) & (pl.col("setting") == setting)
                )
                values = dict(zip(part["cohort"], part["mean_cost"], strict=True))
                drawn = [c for c in cohorts if c in values]
                ax.barh(
                    [cohorts.index(c) for c in drawn],
                    [values[c] for c in drawn],
                    left=[left[c] for c in drawn],
                    color=SETTING_COLOURS[setting],
                    label=setting,
                    height=0.7,
                )
                for c in drawn:
                    left[c] += values[c]
            # Each bar ends at the sum of its settings' means; its label is the
            # published mean cost (the same figure, as the CSV has it).
            labels = bars.filter(pl.col("financial_year") == year).unique(
                "cohort", maintain_order=True
            )
            for cohort, total in labels.select("cohort", "cohort_mean_cost").iter_rows():
                ax.text(
                    left[cohort] + widest * 0.02,
                    cohorts.index(cohort),
                    _pounds(total),
                    va="center",
                    fontsize=7,
                )
            for mark in marks.filter(pl.col("financial_year") == year).iter_rows(named=True):
                ax.text(
                    widest * 0.02,
                    cohorts.index(mark["cohort"]),
                    mark["mark"],
                    va="center",
                    style="italic",
                    **_NOTE,
                )
            ax.set_title(year, fontsize=10)
            ax.xaxis.set_major_formatter(FuncFormatter(_pounds))
            ax.tick_params(axis="x", labelsize=7, labelrotation=30)
            ax.set_xlim(0, widest * 1.25 or 1)
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(range(len(cohorts)), [c.replace("_", " ") for c in cohorts], fontsize=8)
        axes[0].set_ylim(len(cohorts) - 0.5, -0.5)
        handles, labels = axes[0].get_legend_handles_labels()
        figure.legend(
            handles,
            [label.replace("_", " ") for label in labels],
            loc="outside lower center",
            ncols=len(SETTINGS),
            fontsize=7,
            frameon=False,
        )
        figure.suptitle(
            "Mean cost per person by setting (published figures, after disclosure control)",
            fontsize=10,
        )
        return _png(figure)


def _rule(con: duckdb.DuckDBPyConnection) -> DisclosureRule:
    content = con.execute(
        "SELECT content FROM reference.documents WHERE name = 'settings'"
    ).fetchall()[0][0]
    return DisclosureRule.from_settings(json.loads(content))


def pictures(con: duckdb.DuckDBPyConnection, rule: DisclosureRule) -> dict[str, bytes]:
    """Both pictures of a costed warehouse, by file name."""
    return {
        "cost-concentration.png": cost_concentration_png(cost_concentration(con, rule)),
        "mean-cost-by-setting.png": mean_cost_by_setting_png(
            tables.cohort_reference_costs(con, rule)
        ),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Write both pictures of a costed warehouse into a folder."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    with duckdb.connect(str(args.warehouse), read_only=True) as con:
        drawn = pictures(con, _rule(con))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, png in drawn.items():
        (args.out_dir / name).write_bytes(png)


if __name__ == "__main__":
    main()
