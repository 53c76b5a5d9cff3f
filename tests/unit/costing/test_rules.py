"""Costing rules (costing-method.md section 2) on small tables worked out by hand.

Prices come from the worked example's reference tables, e.g. 2023/24 DZ65K NEL
£3,236 with trim point 14 and £320 per excess bed day; 2024/25 £3,336, 14, £330.
"""

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from costing.activity import MissingPricesError
from tests.builders import REFERENCE, activity, build_warehouse, person, person_id

END_2025 = dt.date(2025, 3, 31)


def _acute(seed: int, pod: str, start: str, end: str, hrg: str) -> dict[str, str]:
    return person(seed) | {
        "activity_id": f"A{seed}",
        "provider_code": "RVW",
        "pod": pod,
        "start_date": start,
        "end_date": end,
        "hrg_code": hrg,
    }


def _status(con, source: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            f"SELECT status FROM costing.row_status WHERE source = '{source}' ORDER BY row_number"
        ).fetchall()
    ]


def test_non_elective_spell_crossing_1_april_is_costed_whole_in_the_discharge_year(
    tmp_path: Path,
) -> None:
    con = build_warehouse(
        tmp_path,
        {"acute": [_acute(1, "NEL", "2024-03-28", "2024-04-03", "DZ65K")]},
        period_end=END_2025,
    )
    [row] = activity(con)
    # LOS 6 nights is within the trim point: the 2024/25 tariff price alone.
    assert row["financial_year"] == "2024/25"
    assert row["activity_month"] == "2024-04"
    assert row["cost"] == pytest.approx(3336)
    assert row["cost_basis"] == "tariff"


def test_length_of_stay_above_the_trim_point_adds_excess_bed_days(tmp_path: Path) -> None:
    con = build_warehouse(
        tmp_path,
        {"acute": [_acute(1, "NEL", "2023-05-01", "2023-05-21", "DZ65K")]},
        period_end=END_2025,
    )
    [row] = activity(con)
    # 20 nights - trim point 14 = 6 excess bed days at £320, plus the £3,236 price.
    assert row["cost"] == pytest.approx(3236 + 6 * 320)


def test_hrg_missing_from_the_tariff_falls_back_to_the_pod_default(tmp_path: Path) -> None:
    con = build_warehouse(
        tmp_path,
        {"acute": [_acute(1, "EL", "2023-06-01", "2023-06-20", "XX99Z")]},
        period_end=END_2025,
    )
    [row] = activity(con)
    # 2023/24 EL default £3,540; no excess bed days on a POD default.
    assert (row["cost"], row["cost_basis"]) == (pytest.approx(3540), "pod_default")


def test_open_spell_is_not_costed_and_is_reported_open(tmp_path: Path) -> None:
    con = build_warehouse(
        tmp_path,
        {
            "acute": [
                _acute(1, "NEL", "2025-03-20", "", "DZ65K"),
                _acute(2, "NEL", "2025-03-25", "2025-04-02", "DZ65K"),
                _acute(3, "AE", "2025-03-31", "2025-03-31", "VB09Z"),
            ]
        },
        period_end=END_2025,
    )
    assert [r["row_number"] for r in activity(con)] == [3]
    assert _status(con, "acute") == ["open", "open", "costed"]
    [(open_spells,)] = con.execute(
        "SELECT open_spells FROM costing.reconciliation WHERE source = 'acute'"
    ).fetchall()
    assert open_spells == 2


def test_chc_package_is_split_per_day_across_financial_years(tmp_path: Path) -> None:
    package = person(1) | {
        "package_id": "P1",
        "care_setting": "HOME",
        "funding_stream": "CHC",
        "start_date": "2024-03-25",
        "end_date": "2024-04-05",
        "weekly_cost": "70",
    }
    con = build_warehouse(tmp_path, {"chc": [package]}, period_end=END_2025)
    rows = activity(con)
    # £10 a day: 25-31 March is 7 days in 2023/24; 1-5 April is 5 days in 2024/25.
    assert [(r["financial_year"], r["units"], r["cost"]) for r in rows] == [
        ("2023/24", 7, pytest.approx(70)),
        ("2024/25", 5, pytest.approx(50)),
    ]
    assert [r["activity_month"] for r in rows] == ["2024-03", "2024-04"]


def test_ongoing_package_runs_to_the_period_end_and_one_begun_earlier_from_its_start(
    tmp_path: Path,
) -> None:
    ongoing = person(1) | {
        "package_id": "P1",
        "care_setting": "CARE_HOME",
        "funding_stream": "CHC",
        "start_date": "2025-03-01",
        "end_date": "",
        "weekly_cost": "700",
    }
    earlier = ongoing | {"package_id": "P2", "start_date": "2022-12-01", "end_date": "2023-04-10"}
    con = build_warehouse(tmp_path, {"chc": [ongoing, earlier]}, period_end=END_2025)
    rows = activity(con)
    # £100 a day: 1-31 March 2025 (31 days) and 1-10 April 2023 (10 days).
    assert [(r["financial_year"], r["units"], r["cost"]) for r in rows] == [
        ("2024/25", 31, pytest.approx(3100)),
        ("2023/24", 10, pytest.approx(1000)),
    ]


def test_social_care_net_cost_deducts_the_contribution_but_never_goes_below_zero(
    tmp_path: Path,
) -> None:
    base = person(1, nhs_number="") | {
        "service_id": "S1",
        "service_type": "HOME_CARE",
        "start_date": "2024-04-01",
        "end_date": "2024-04-07",
        "planned_units_per_week": "10",
        "unit_type": "HOUR",
        "unit_cost": "20",
        "client_contribution_weekly": "70",
    }
    rich = base | {"service_id": "S2", "client_contribution_weekly": "500"}
    con = build_warehouse(tmp_path, {"social_care": [base, rich]}, period_end=END_2025)
    rows = activity(con)
    # 7 days of 10 hours a week at £20 = £200 gross; net £200 - £70 = £130; £0 when
    # the contribution exceeds the cost.
    assert [(r["cost"], r["net_cost"]) for r in rows] == [
        (pytest.approx(200), pytest.approx(130)),
        (pytest.approx(200), pytest.approx(0)),
    ]


def _contact(seed: int, service: str, mode: str, attended: str, provider: str = "RXP"):
    return person(seed) | {
        "contact_id": f"C{seed}",
        "provider_code": provider,
        "service": service,
        "contact_date": "2023-06-01",
        "contact_mode": mode,
        "duration_minutes": "30",
        "attended": attended,
    }


def test_community_contacts_mode_fallback_missed_appointments_and_unpriced(
    tmp_path: Path,
) -> None:
    con = build_warehouse(
        tmp_path,
        {
            "community": [
                _contact(1, "DISTRICT_NURSING", "TEL", "Y"),  # exact mode: £31
                _contact(2, "DISTRICT_NURSING", "F2F", "Y"),  # any mode: £60
                _contact(3, "DISTRICT_NURSING", "F2F", "N"),  # did not attend: £0
                _contact(4, "HYDROTHERAPY", "F2F", "Y"),  # no unit cost: unpriced
            ]
        },
        period_end=END_2025,
    )
    assert [(r["cost"], r["cost_basis"]) for r in activity(con)] == [
        (pytest.approx(31), "national_unit_cost"),
        (pytest.approx(60), "national_unit_cost"),
        (0, "national_unit_cost"),
        (0, "unpriced"),
    ]


def test_block_contract_value_is_shared_over_attended_contacts(tmp_path: Path) -> None:
    contacts = [_contact(i, "PODIATRY", "F2F", "Y", provider="RTR") for i in range(1, 5)]
    contacts.append(_contact(5, "PODIATRY", "TEL", "N", provider="RTR"))
    contacts.append(_contact(6, "PODIATRY", "F2F", "Y", provider="RXP"))
    con = build_warehouse(
        tmp_path,
        {"community": contacts},
        period_start=dt.date(2023, 4, 1),
        period_end=dt.date(2024, 3, 31),
        block_contracts=(
            "financial_year,source,provider_code,service,contract_value\n"
            "2023/24,community,RTR,PODIATRY,1000\n"
        ),
    )
    rows = activity(con)
    # £1,000 over 4 attended contacts = £250 each; the missed one £0; the other
    # provider keeps the national £47.
    assert [(r["cost"], r["cost_basis"]) for r in rows] == [
        *[(pytest.approx(250), "block_local")] * 4,
        (0, "block_local"),
        (pytest.approx(47), "national_unit_cost"),
    ]


def test_block_contract_for_a_year_partly_in_the_period_is_pro_rata(tmp_path: Path) -> None:
    contact = _contact(1, "PODIATRY", "F2F", "Y", provider="RTR")
    con = build_warehouse(
        tmp_path,
        {"community": [contact]},
        period_start=dt.date(2023, 4, 1),
        period_end=dt.date(2023, 6, 29),
        block_contracts=(
            "financial_year,source,provider_code,service,contract_value\n"
            "2023/24,community,RTR,PODIATRY,3660\n"
        ),
    )
    [row] = activity(con)
    # 90 of the year's 366 days are inside the period: £3,660 x 90 / 366 = £900.
    assert row["cost"] == pytest.approx(900)


def _stay(seed: int, start: str, end: str, ward: str = "ADULT_ACUTE") -> dict[str, str]:
    return person(seed) | {
        "record_id": f"M{seed}",
        "provider_code": "RX3",
        "record_type": "INPATIENT",
        "service": ward,
        "start_date": start,
        "end_date": end,
        "cpa": "N",
    }


def test_mental_health_bed_days(tmp_path: Path) -> None:
    con = build_warehouse(
        tmp_path,
        {
            "mental_health": [
                _stay(1, "2023-06-01", "2023-06-01"),  # 0 nights: 1 bed day at £720
                _stay(2, "2024-03-30", "2024-04-02"),  # 30, 31 Mar at £720; 1 Apr at £745.20
                _stay(3, "2025-03-29", ""),  # open: nights 29, 30 Mar at £745.20
                _stay(4, "2025-03-31", ""),  # open, admitted on the period end: 1 bed day
            ]
        },
        period_end=END_2025,
    )
    assert [
        (r["row_number"], r["financial_year"], r["units"], r["cost"]) for r in activity(con)
    ] == [
        (1, "2023/24", 1, pytest.approx(720)),
        (2, "2023/24", 2, pytest.approx(1440)),
        (2, "2024/25", 1, pytest.approx(745.2)),
        (3, "2024/25", 2, pytest.approx(1490.4)),
        (4, "2024/25", 1, pytest.approx(745.2)),
    ]


def test_a_mental_health_record_type_outside_the_list_is_unpriced(tmp_path: Path) -> None:
    """Only INPATIENT and CONTACT have a pricing rule: any other type (or none) is kept
    at £0 as unpriced, and is not one of the contacts a block contract is shared over."""

    def record(seed: int, record_type: str) -> dict[str, str]:
        return _stay(seed, "2024-05-01", "", ward="CMHT") | {"record_type": record_type}

    con = build_warehouse(
        tmp_path,
        {"mental_health": [record(1, "CONTACT"), record(2, "OTHER"), record(3, "")]},
        period_end=END_2025,
        block_contracts=(
            "financial_year,source,provider_code,service,contract_value\n"
            "2024/25,mental_health,RX3,CMHT,1000\n"
        ),
    )
    assert [(r["row_number"], r["cost"], r["cost_basis"]) for r in activity(con)] == [
        (1, pytest.approx(1000), "block_local"),  # the one contact carries the block
        (2, 0, "unpriced"),
        (3, 0, "unpriced"),
    ]


def test_a_block_contract_can_price_primary_care(tmp_path: Path) -> None:
    """A block replaces the national unit cost, and primary care is priced by one."""
    con = build_warehouse(
        tmp_path,
        {
            "primary_care_events": [
                person(seed)
                | {
                    "event_id": f"E{seed}",
                    "practice_code": "A81001",
                    "event_date": "2024-05-01",
                    "staff_type": "GP",
                    "mode": "SURGERY",
                }
                for seed in (1, 2)
            ]
        },
        period_end=END_2025,
        block_contracts=(
            "financial_year,source,provider_code,service,contract_value\n"
            "2024/25,primary_care,A81001,GP,500\n"
        ),
    )
    assert [(r["cost"], r["cost_basis"]) for r in activity(con)] == [
        (pytest.approx(250), "block_local"),
        (pytest.approx(250), "block_local"),
    ]


def test_primary_care_mode_fallback_and_unpriced_staff(tmp_path: Path) -> None:
    def event(seed: int, staff: str, mode: str) -> dict[str, str]:
        return person(seed) | {
            "event_id": f"E{seed}",
            "practice_code": "A81001",
            "event_date": "2023-05-01",
            "staff_type": staff,
            "mode": mode,
        }

    con = build_warehouse(
        tmp_path,
        {
            "primary_care_events": [
                event(1, "GP", "HOME_VISIT"),
                event(2, "GP", "SURGERY"),
                event(3, "OTHER", "SURGERY"),
            ]
        },
        period_end=END_2025,
    )
    assert [(r["cost"], r["cost_basis"]) for r in activity(con)] == [
        (pytest.approx(120), "national_unit_cost"),
        (pytest.approx(45), "national_unit_cost"),
        (0, "unpriced"),
    ]


def test_activity_outside_the_period_is_accepted_not_costed(tmp_path: Path) -> None:
    early = _contact(1, "PODIATRY", "F2F", "Y") | {"contact_date": "2022-05-01"}
    con = build_warehouse(
        tmp_path, {"community": [early, _contact(2, "PODIATRY", "F2F", "Y")]}, period_end=END_2025
    )
    assert [r["row_number"] for r in activity(con)] == [2]
    [(out_of_period, accepted)] = con.execute(
        "SELECT rows_out_of_period, rows_accepted FROM costing.reconciliation "
        "WHERE source = 'community'"
    ).fetchall()
    assert (out_of_period, accepted) == (1, 2)


def test_register_only_person_appears_with_zero_cost_in_each_delivery_year(
    tmp_path: Path,
) -> None:
    register = person(9) | {"register": "COPD", "diagnosis_date": "2024-01-10"}
    con = build_warehouse(
        tmp_path,
        {
            "primary_care_registers": [register],
            "community": [
                _contact(1, "PODIATRY", "F2F", "Y"),
                _contact(2, "PODIATRY", "F2F", "Y") | {"contact_date": "2024-06-01"},
            ],
        },
        period_end=END_2025,
    )
    rows = con.execute(
        "SELECT financial_year, cost_total FROM costing.person_years WHERE person_id = ?",
        [person_id(f"nhs:{register['nhs_number']}")],
    ).fetchall()
    # Diagnosed in January 2024: on the register in both delivery years, cost £0.
    assert rows == [("2023/24", 0.0), ("2024/25", 0.0)]


def test_a_whole_year_of_missing_prices_stops_the_run(tmp_path: Path) -> None:
    late = _contact(1, "PODIATRY", "F2F", "Y") | {"contact_date": "2025-05-01"}
    with pytest.raises(
        MissingPricesError, match=r"unit_costs.csv has no unit cost prices for 2025/26"
    ):
        build_warehouse(tmp_path, {"community": [late]}, period_end=dt.date(2025, 6, 30))


def test_a_year_of_unit_costs_without_one_settings_rows_leaves_it_unpriced(
    tmp_path: Path,
) -> None:
    """The table has that year, just no mental health rows: nothing to stop for; the
    method's rule applies (no price, so unpriced at £0)."""
    reference = tmp_path / "reference"
    shutil.copytree(REFERENCE, reference)
    unit_costs = pl.read_csv(reference / "unit_costs.csv", infer_schema=False)
    unit_costs.filter(
        ~((pl.col("source") == "mental_health") & (pl.col("financial_year") == "2024/25"))
    ).write_csv(reference / "unit_costs.csv")
    contact = _stay(1, "2024-05-01", "2024-05-01", ward="CMHT") | {"record_type": "CONTACT"}
    con = build_warehouse(
        tmp_path, {"mental_health": [contact]}, reference_dir=reference, period_end=END_2025
    )
    assert [(r["cost"], r["cost_basis"]) for r in activity(con)] == [(0, "unpriced")]
