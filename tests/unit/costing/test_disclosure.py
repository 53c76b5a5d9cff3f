"""Disclosure control: suppression, rounding, band groups and k-anonymity."""

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costing.disclosure import DisclosureRule, k_anonymise, protect_groups, protect_rows

RULE = DisclosureRule()


@given(st.integers(min_value=0, max_value=10_000))
def test_round_count_is_the_nearest_multiple_of_five(people: int) -> None:
    rounded = RULE.round_count(people)
    assert rounded % 5 == 0
    assert abs(rounded - people) <= 2


@given(st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=40))
def test_no_published_row_describes_one_to_seven_people(counts: list[int]) -> None:
    frame = pl.DataFrame({"people": counts, "mean_cost": [float(c) * 10 for c in counts]})
    out = protect_rows(frame, RULE, figure_columns=["mean_cost"])
    for original, row in zip(counts, out.iter_rows(named=True), strict=True):
        if 1 <= original <= 7:
            assert row == {"people": None, "mean_cost": None, "suppressed": True}
        else:
            assert row["people"] == RULE.round_count(original)
            assert row["mean_cost"] == original * 10  # figures come from unrounded data
            assert row["suppressed"] is False


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=5, max_size=5))
def test_bands_are_published_five_together_or_not_at_all(band_people: list[int]) -> None:
    frame = pl.DataFrame(
        {"cohort": ["c"] * 5, "band": [1, 2, 3, 4, 5], "people": band_people, "lower": [1.0] * 5}
    )
    out = protect_groups(frame, RULE, group_columns=["cohort"], figure_columns=["lower"])
    hidden = any(p <= 7 for p in band_people)
    assert out["suppressed"].to_list() == [hidden] * 5
    assert out["people"].null_count() == (5 if hidden else 0)


def test_lowering_the_threshold_needs_a_recorded_reason() -> None:
    with pytest.raises(ValueError, match="override"):
        DisclosureRule(threshold=3)
    assert DisclosureRule(threshold=3, override_reason="national publication").threshold == 3


_bands = st.sampled_from(["0-17", "18-64", "65-74", "75-84", "85+"])
_sexes = st.sampled_from(["0", "1", "2", "9"])
_districts = st.sampled_from(["TS1", "TS18", "DL3", None])


@given(
    st.lists(st.tuples(_bands, _sexes, _districts), min_size=5, max_size=120),
    st.integers(min_value=2, max_value=6),
)
def test_k_anonymity_leaves_no_group_smaller_than_k(
    people: list[tuple[str, str, str | None]], k: int
) -> None:
    frame = pl.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(len(people))],
            "financial_year": ["2024/25"] * len(people),
            "age_band": [p[0] for p in people],
            "sex": [p[1] for p in people],
            "postcode_district": [p[2] for p in people],
        }
    )
    out, report = k_anonymise(frame, k)
    sizes = out.group_by("financial_year", "age_band", "sex", "postcode_district").len()
    if len(people) >= k:
        assert sizes["len"].min() >= k
        assert report.groups_below_k == 0
    assert out["person_id"].to_list() == frame["person_id"].to_list()
    assert sum(report.people_by_level.values()) == len(people)
    # A person is only ever generalised, never changed to something else.
    for before, after in zip(frame.iter_rows(named=True), out.iter_rows(named=True), strict=True):
        assert after["postcode_district"] in (before["postcode_district"], None)
        assert after["sex"] in (before["sex"], "0")
        coarse = {"0-17": "0-17", "18-64": "18-64"}.get(before["age_band"], "65+")
        assert after["age_band"] in (before["age_band"], coarse, None)


def test_a_person_alone_in_a_year_is_generalised_to_blanks_written_as_nulls() -> None:
    frame = pl.DataFrame(
        {
            "person_id": ["p0"],
            "financial_year": ["2024/25"],
            "age_band": ["75-84"],
            "sex": ["2"],
            "postcode_district": ["TS18"],
        }
    )
    out, _ = k_anonymise(frame, 5)
    assert out.select("age_band", "sex", "postcode_district").row(0) == (None, "0", None)


def test_k_anonymity_generalises_only_small_groups() -> None:
    frame = pl.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(10)],
            "financial_year": ["2024/25"] * 10,
            "age_band": ["65-74"] * 5 + ["75-84"] * 3 + ["85+"] * 2,
            "sex": ["1"] * 10,
            "postcode_district": ["TS1"] * 10,
        }
    )
    out, report = k_anonymise(frame, 5)
    # The five 65-74s keep everything; the five older people become one 65+ group
    # with no district.
    assert out["postcode_district"].to_list() == ["TS1"] * 5 + [None] * 5
    assert out["age_band"].to_list() == ["65-74"] * 5 + ["65+"] * 5
    assert report.people_by_level == {"as recorded": 5, "age band coarsened": 5}
    assert report.groups_below_k == 0
