"""The linkage cascade (costing-method.md section 1), stage by stage."""

import datetime as dt
from pathlib import Path

from tests.builders import build_warehouse, nhs_number, person, person_id

END = dt.date(2025, 3, 31)


def _social_care(seed: int, **identity: str) -> dict[str, str]:
    local, nhs = identity.get("local_patient_id", ""), identity.get("nhs_number", "")
    return person(seed, **identity) | {
        "service_id": f"S{seed}-{local}-{nhs}",
        "service_type": "DAY_CARE",
        "start_date": "2024-05-01",
        "end_date": "2024-05-02",
        "planned_units_per_week": "1",
        "unit_type": "DAY",
        "unit_cost": "70",
    }


def _gp_event(seed: int, **identity: str) -> dict[str, str]:
    return person(seed, **identity) | {
        "event_id": f"E{seed}-{identity.get('local_patient_id', '')}",
        "practice_code": "A81001",
        "event_date": "2024-05-01",
        "staff_type": "GP",
        "mode": "SURGERY",
    }


def _links(con) -> list[tuple]:
    return con.execute(
        "SELECT source, row_number, stage, person_id FROM linked.row_links "
        "ORDER BY source, row_number"
    ).fetchall()


def test_each_stage_links_what_it_should(tmp_path: Path) -> None:
    nhs = nhs_number(1)
    con = build_warehouse(
        tmp_path,
        {
            "social_care": [
                _social_care(1, nhs_number=nhs, local_patient_id="SC1"),  # stage 1
                _social_care(1, nhs_number="", local_patient_id="SC1"),  # stage 2 via SC1
                # No NHS number, unknown local id, same name + DOB + sex as the GP row:
                _social_care(2, nhs_number="", local_patient_id="SC9"),  # stage 3
                _social_care(3, nhs_number="", local_patient_id="SC7"),  # stage 4
                _social_care(4, nhs_number="123", local_patient_id=""),  # stage 4, own row
            ],
            "primary_care_events": [_gp_event(2, local_patient_id="GP2")],
        },
        period_end=END,
    )
    gp_person = person_id(f"nhs:{nhs_number(2)}")
    assert _links(con) == [
        ("primary_care_events", 1, 1, gp_person),
        ("social_care", 1, 1, person_id(f"nhs:{nhs}")),
        ("social_care", 2, 2, person_id(f"nhs:{nhs}")),
        ("social_care", 3, 3, gp_person),
        ("social_care", 4, 4, person_id("src:social_care:SC7")),
        ("social_care", 5, 4, person_id("row:social_care:social_care.csv:5")),
    ]


def test_a_local_id_seen_with_two_nhs_numbers_is_ambiguous(tmp_path: Path) -> None:
    con = build_warehouse(
        tmp_path,
        {
            "social_care": [
                _social_care(1, nhs_number=nhs_number(1), local_patient_id="SC1"),
                _social_care(2, nhs_number=nhs_number(2), local_patient_id="SC1"),
                _social_care(3, nhs_number="", local_patient_id="SC1"),
            ]
        },
        period_end=END,
    )
    assert _links(con)[2][2:] == (4, person_id("src:social_care:SC1"))


def test_a_demographic_token_shared_by_two_people_links_nobody(tmp_path: Path) -> None:
    twin = {"given_name": "Sam", "family_name": "Lee", "date_of_birth": "1990-01-01", "sex": "1"}
    con = build_warehouse(
        tmp_path,
        {
            "primary_care_events": [
                _gp_event(1, local_patient_id="GP1", **twin),
                _gp_event(2, local_patient_id="GP2", **twin),
            ],
            "social_care": [_social_care(3, nhs_number="", local_patient_id="SC3", **twin)],
        },
        period_end=END,
    )
    assert [row[2] for row in _links(con)] == [1, 1, 4]


def test_names_are_compared_after_folding_accents_case_and_punctuation(tmp_path: Path) -> None:
    gp = {"given_name": "Zoë", "family_name": "O'Brien-Smith", "date_of_birth": "1940-02-29"}
    social = {"given_name": "ZOE", "family_name": "obrien smith", "date_of_birth": "1940-02-29"}
    con = build_warehouse(
        tmp_path,
        {
            "primary_care_events": [_gp_event(1, local_patient_id="GP1", **gp)],
            "social_care": [_social_care(2, nhs_number="", local_patient_id="SC2", **social)],
        },
        period_end=END,
    )
    assert [row[2:] for row in _links(con)][1] == (3, person_id(f"nhs:{nhs_number(1)}"))


def test_gp_events_and_registers_share_local_ids(tmp_path: Path) -> None:
    con = build_warehouse(
        tmp_path,
        {
            "primary_care_events": [_gp_event(1, local_patient_id="GP1")],
            "primary_care_registers": [
                person(1, nhs_number="", local_patient_id="GP1")
                | {"register": "COPD", "diagnosis_date": "2020-01-01"}
            ],
        },
        period_end=END,
    )
    assert _links(con)[1][:3] == ("primary_care_registers", 1, 2)


def test_unlinked_rows_of_one_source_with_one_local_id_are_one_person(tmp_path: Path) -> None:
    con = build_warehouse(
        tmp_path,
        {
            "social_care": [
                _social_care(5, nhs_number="", local_patient_id="SC5"),
                _social_care(6, nhs_number="0000000000", local_patient_id="SC5"),
            ]
        },
        period_end=END,
    )
    people = {row[3] for row in _links(con)}
    assert people == {person_id("src:social_care:SC5")}
    [(persons, by_nhs)] = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE linked_by_nhs_number) FROM linked.person_spine"
    ).fetchall()
    assert (persons, by_nhs) == (1, 0)
