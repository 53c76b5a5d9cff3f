"""The pictures in the costing assets' metadata, from a real materialisation of the
worked example (up to the costing assets; nothing is exported).

They are found where the UI shows them, hold PNGs small enough for it, agree with the
published cohort reference costs, and the costing metadata holds no person's id.
"""

import base64
import re

import dagster as dg
import duckdb
import polars as pl
import pytest

from costing.concentration import cost_concentration
from costing.disclosure import DisclosureRule
from delivery import tables
from delivery.charts import setting_bars
from pipelines.definitions import ALL_ASSETS
from pipelines.partitions import all_years_tags
from schemas.sources import SETTINGS
from tests.conftest import WORKED_EXAMPLE, Delivery, worked_example_delivery

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IMAGE = re.compile(r"^!\[[^\]]+\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)$")
_PERSON_COSTS = dg.AssetKey(["costing", "person_costs"])
_REFERENCE_COSTS = dg.AssetKey(["costing", "cohort_reference_costs"])


@pytest.fixture(scope="module")
def costed(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Delivery, dict[dg.AssetKey, dict[str, object]]]:
    """The worked example, materialised up to the two costing assets with pictures."""
    delivery = worked_example_delivery(tmp_path_factory.mktemp("pictures"), period_end="2025-03-31")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            ALL_ASSETS,
            selection=dg.AssetSelection.assets(_PERSON_COSTS, _REFERENCE_COSTS)
            .upstream()
            .required_multi_asset_neighbors(),
            resources={"ipc": delivery.resource},
            instance=instance,
            tags=all_years_tags(),
        )
    assert result.success
    metadata = {
        event.asset_key: {k: v.value for k, v in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }
    return delivery, metadata


def _png(markdown: object) -> bytes:
    match = _IMAGE.match(str(markdown))
    assert match, "the picture is not a Markdown image with a PNG data URI"
    return base64.b64decode(match.group(1))


@pytest.mark.parametrize(
    ("asset", "name"),
    [(_PERSON_COSTS, "cost_concentration"), (_REFERENCE_COSTS, "mean_cost_by_setting")],
)
def test_each_costing_picture_is_in_its_assets_metadata(
    costed: tuple[Delivery, dict[dg.AssetKey, dict[str, object]]], asset: dg.AssetKey, name: str
) -> None:
    _, metadata = costed
    png = _png(metadata[asset][name])
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) < 60_000


def test_the_top_five_percent_share_is_the_curves_point_at_five(
    costed: tuple[Delivery, dict[dg.AssetKey, dict[str, object]]],
) -> None:
    delivery, metadata = costed
    with duckdb.connect(str(delivery.warehouse), read_only=True) as con:
        concentration = cost_concentration(con, DisclosureRule())
    shares = metadata[_PERSON_COSTS]["top_5_percent_share_of_spend"]
    at_five = concentration.points.filter(pl.col("percentile") == 5)
    assert shares == {
        year: round(share, 3)
        for year, share in at_five.select("financial_year", "spend_share").rows()
    }
    assert set(shares) == {"2023/24", "2024/25"}  # about 1,000 people a year: both drawn
    assert concentration.points.height == 2 * 101


def test_the_setting_picture_draws_what_is_published_and_nothing_suppressed(
    costed: tuple[Delivery, dict[dg.AssetKey, dict[str, object]]],
) -> None:
    delivery, _ = costed
    with duckdb.connect(str(delivery.warehouse), read_only=True) as con:
        bars, marks = setting_bars(tables.cohort_reference_costs(con, DisclosureRule()))
    expected = pl.read_csv(WORKED_EXAMPLE / "expected" / "cohort_reference_costs.csv")
    published = expected.filter(~pl.col("suppressed"))
    assert bars.height == published.height * len(SETTINGS)
    for row in published.iter_rows(named=True):
        drawn = bars.filter(
            (pl.col("cohort") == row["cohort"])
            & (pl.col("financial_year") == row["financial_year"])
        )
        for setting in SETTINGS:
            value = drawn.filter(pl.col("setting") == setting)["mean_cost"].item()
            assert value == pytest.approx(row[f"mean_cost_{setting}"], abs=1e-5)
    suppressed = expected.filter(pl.col("suppressed")).select("financial_year", "cohort")
    assert suppressed.height > 0
    assert (
        marks.filter(pl.col("mark") == "suppressed")
        .select("financial_year", "cohort")
        .sort("financial_year", "cohort")
        .equals(suppressed.sort("financial_year", "cohort"))
    )
    assert bars.join(suppressed, on=["financial_year", "cohort"]).is_empty()


def test_no_costing_metadata_holds_a_person_id(
    costed: tuple[Delivery, dict[dg.AssetKey, dict[str, object]]],
) -> None:
    delivery, metadata = costed
    with duckdb.connect(str(delivery.warehouse), read_only=True) as con:
        ids = {r[0] for r in con.execute("SELECT person_id FROM costing.person_years").fetchall()}
    assert len(ids) > 1000
    costing = {k: v for k, v in metadata.items() if k.path[0] == "costing"}
    assert {_PERSON_COSTS, _REFERENCE_COSTS} <= set(costing)
    text = " ".join(f"{name}: {value}" for m in costing.values() for name, value in m.items())
    assert not {i for i in ids if i in text}
