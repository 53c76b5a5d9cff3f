"""The bundled sample site: its generator (data/sample/generate.py) and the committed files.

These tests read the committed sample in data/sample/ and run the generator on a few
hundred people; they do not depend on the pipeline's own code, so they say what the sample
holds whatever the pipeline does with it.
"""

import csv
import importlib.util
import sys
import unicodedata
from collections import defaultdict
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
LANDING = SAMPLE / "landing"
REFERENCE = SAMPLE / "reference"
WORKED_EXAMPLE_COHORTS = ROOT / "tests" / "data" / "worked_example" / "reference" / "cohorts.yaml"

# data-contract.md section 2, in the worked example's column order
_ID = "nhs_number,local_patient_id,date_of_birth,sex,postcode"
HEADERS = {
    "acute": f"{_ID},activity_id,provider_code,pod,start_date,end_date,hrg_code,primary_diagnosis",
    "chc": f"{_ID},package_id,care_setting,funding_stream,start_date,end_date,weekly_cost",
    "community": (
        f"{_ID},contact_id,provider_code,service,contact_date,contact_mode,duration_minutes,"
        "attended"
    ),
    "mental_health": (f"{_ID},record_id,provider_code,record_type,service,start_date,end_date,cpa"),
    "primary_care_events": (
        f"{_ID},given_name,family_name,event_id,practice_code,event_date,staff_type,mode"
    ),
    "primary_care_registers": f"{_ID},given_name,family_name,register,diagnosis_date",
    "social_care": (
        f"{_ID},given_name,family_name,service_id,service_type,start_date,end_date,"
        "planned_units_per_week,unit_type,unit_cost,client_contribution_weekly"
    ),
}
# data-contract.md section 3, plus the `reference` column the sample adds last
REFERENCE_HEADERS = {
    "acute_tariff": (
        "financial_year,hrg_code,pod,price,trim_point_days,excess_bed_day_price,reference"
    ),
    "acute_pod_default": "financial_year,pod,price,reference",
    "unit_costs": "financial_year,source,service,mode,unit,cost,reference",
    "block_contracts": "financial_year,source,provider_code,service,contract_value,reference",
}
PLACEHOLDERS = {"0000000000", "9999999999"}
IDS = {
    "acute": "activity_id",
    "chc": "package_id",
    "community": "contact_id",
    "mental_health": "record_id",
    "primary_care_events": "event_id",
    "social_care": "service_id",
}


def load_generator() -> ModuleType:
    name = "ipc_sample_generate"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SAMPLE / "generate.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@cache
def raw_rows(source: str) -> tuple[list[str], list[list[str]]]:
    """Header and every data row of a committed landing file, malformed rows included."""
    with (LANDING / f"{source}.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


@cache
def rows(source: str) -> list[dict[str, str]]:
    """Well-formed data rows of a committed landing file as dicts."""
    header, data = raw_rows(source)
    return [dict(zip(header, r, strict=True)) for r in data if len(r) == len(header)]


def digits(nhs: str) -> str:
    return nhs.replace(" ", "").replace("-", "")


@cache
def valid_nhs(nhs: str) -> bool:
    """costing-method.md section 1, written independently of the generator."""
    s = digits(nhs)
    if len(s) != 10 or not s.isdigit() or len(set(s)) == 1:
        return False
    check = 11 - sum(int(d) * w for d, w in zip(s[:9], range(10, 1, -1), strict=True)) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(s[9])


_FOLD = {"ß": "SS", "Æ": "AE", "Œ": "OE", "Ø": "O", "Ł": "L", "Đ": "D", "Þ": "TH"}


@cache
def norm_name(name: str) -> str:
    s = "".join(_FOLD.get(c, c) for c in name.upper())
    s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    return "".join(c for c in s.upper() if "A" <= c <= "Z")


def token(row: dict[str, str]) -> tuple[str, str, str, str]:
    return (
        norm_name(row["family_name"]),
        norm_name(row["given_name"]),
        row["date_of_birth"],
        row["sex"],
    )


@cache
def gp_tokens() -> dict[tuple[str, str, str, str], set[str]]:
    """Demographic token -> valid NHS numbers, from rows with a valid number and both names."""
    out: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for source in ("primary_care_events", "primary_care_registers", "social_care"):
        for r in rows(source):
            if valid_nhs(r["nhs_number"]) and r["given_name"] and r["family_name"]:
                out[token(r)].add(digits(r["nhs_number"]))
    return out


def numbers_by_local_id(source: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for r in rows(source):
        if valid_nhs(r["nhs_number"]):
            out[r["local_patient_id"]].add(digits(r["nhs_number"]))
    return out


# --- the generator -------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    gen = load_generator()
    outputs = []
    for run in ("a", "b"):
        landing, reference = tmp_path / run / "landing", tmp_path / run / "reference"
        argv = ["--people", "300", "--seed", "7", "--out", str(landing)]
        assert gen.main([*argv, "--reference-out", str(reference), "--quiet"]) == 0
        outputs.append(
            {
                p.relative_to(tmp_path / run): p.read_bytes()
                for p in sorted((tmp_path / run).rglob("*"))
                if p.is_file()
            }
        )
    assert len(outputs[0]) == 7 + 6
    assert outputs[0] == outputs[1]


def test_small_runs_have_the_contract_headers_and_test_range_numbers(tmp_path: Path) -> None:
    gen = load_generator()
    gen.main(
        [
            "--people",
            "300",
            "--out",
            str(tmp_path),
            "--reference-out",
            str(tmp_path / "ref"),
            "--chunk-size",
            "120",
            "--quiet",
        ]
    )
    for source, header in HEADERS.items():
        lines = (tmp_path / f"{source}.csv").read_text(encoding="utf-8").splitlines()
        assert lines[0] == header
        for line in lines[1:]:
            nhs = line.split(",", 1)[0]
            assert not nhs or digits(nhs).startswith("999") or nhs in PLACEHOLDERS


def test_the_committed_sample_is_what_the_defaults_write(tmp_path: Path) -> None:
    """`python data/sample/generate.py` with no arguments reproduces the committed files."""
    gen = load_generator()
    gen.main(
        ["--out", str(tmp_path / "landing"), "--reference-out", str(tmp_path / "ref"), "--quiet"]
    )
    for folder, committed in (("landing", LANDING), ("ref", REFERENCE)):
        names = sorted(p.name for p in committed.iterdir())
        assert names == sorted(p.name for p in (tmp_path / folder).iterdir())
        for name in names:
            assert (tmp_path / folder / name).read_bytes() == (committed / name).read_bytes()


# --- the committed sample: shape and identifiers -------------------------------------


@pytest.mark.parametrize("source", sorted(HEADERS))
def test_committed_landing_header_is_the_contract(source: str) -> None:
    first = (LANDING / f"{source}.csv").read_bytes().split(b"\n", 1)[0]
    assert first.decode("utf-8") == HEADERS[source]


def test_committed_sample_is_small_enough() -> None:
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert total < 11 * 1024 * 1024


def test_nhs_numbers_are_from_the_test_range_and_mostly_valid() -> None:
    seen = valid = 0
    for source in HEADERS:
        for r in rows(source):
            nhs = r["nhs_number"]
            if not nhs:
                continue
            seen += 1
            # the repeated-digit placeholder 0000000000 is the one non-999 value: it is
            # what systems write for "unknown", not a number
            assert digits(nhs).startswith("999") or nhs in PLACEHOLDERS, (source, nhs)
            valid += valid_nhs(nhs)
    assert valid / seen > 0.98


def test_nhs_number_formats_vary() -> None:
    values = [r["nhs_number"] for s in HEADERS for r in rows(s) if r["nhs_number"]]
    assert any(len(v) == 12 and v[3] == " " and v[7] == " " for v in values)
    assert any(len(v) == 12 and v[3] == "-" and v[7] == "-" for v in values)
    assert sum(len(v) == 10 for v in values) > 0.9 * len(values)


def test_invalid_and_placeholder_nhs_numbers_are_present() -> None:
    values = [r["nhs_number"] for s in HEADERS for r in rows(s) if r["nhs_number"]]
    bad_check = [v for v in values if v not in PLACEHOLDERS and not valid_nhs(v)]
    assert len(bad_check) >= 3
    assert "9999999999" in values
    assert "0000000000" in values


def test_names_and_postcodes_exercise_normalisation() -> None:
    names = {r["given_name"] for s in ("primary_care_events", "social_care") for r in rows(s)}
    names |= {r["family_name"] for s in ("primary_care_events", "social_care") for r in rows(s)}
    assert {"O'Brien", "Smith-Jones"} <= names
    assert any(ch in n for n in names for ch in "ëŁłéüßØ")
    assert any(n.isupper() for n in names)  # an older system's upper case
    postcodes = {r["postcode"] for s in HEADERS for r in rows(s)}
    assert all(p[:2].upper() in ("TS", "DL") for p in postcodes)
    assert any(" " not in p for p in postcodes)
    assert any(p != p.upper() for p in postcodes)


def test_local_ids_are_stable_per_source_and_shared_by_the_gp_files() -> None:
    gp_ids = {r["local_patient_id"] for r in rows("primary_care_events")}
    reg_ids = {r["local_patient_id"] for r in rows("primary_care_registers")}
    assert len(reg_ids & gp_ids) > 0.8 * len(reg_ids)
    prefixes = {
        "acute": "RTRH",
        "chc": "CHC",
        "community": "CM",
        "mental_health": "MH",
        "primary_care_events": "GP",
        "social_care": "SC",
    }
    for source, prefix in prefixes.items():
        assert all(r["local_patient_id"].startswith(prefix) for r in rows(source))
    # one date of birth per GP id (the twins case shares a token, never an id)
    dob: dict[str, set[str]] = defaultdict(set)
    for r in rows("primary_care_events"):
        dob[r["local_patient_id"]].add(r["date_of_birth"])
    assert all(len(v) == 1 for v in dob.values())


# --- the committed sample: linkage cases ---------------------------------------------


def test_social_care_has_many_blank_nhs_numbers() -> None:
    sc = rows("social_care")
    blank = [r for r in sc if not r["nhs_number"]]
    assert 0.25 < len(blank) / len(sc) < 0.6


def test_social_care_stage_2_3_and_4_cases() -> None:
    by_id = numbers_by_local_id("social_care")
    tokens = gp_tokens()
    stage2 = stage3 = stage4 = 0
    for r in rows("social_care"):
        if r["nhs_number"]:
            continue
        if len(by_id.get(r["local_patient_id"], ())) == 1:
            stage2 += 1
        elif len(tokens.get(token(r), ())) == 1:
            stage3 += 1
        elif not tokens.get(token(r)):
            stage4 += 1
    assert stage2 >= 5
    assert stage3 >= 20
    assert stage4 >= 3


def test_a_local_id_seen_with_two_nhs_numbers() -> None:
    for source in ("social_care", "acute"):
        assert any(len(v) >= 2 for v in numbers_by_local_id(source).values()), source


def test_a_demographic_token_shared_by_two_people() -> None:
    gp: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for r in rows("primary_care_events"):
        if valid_nhs(r["nhs_number"]):
            gp[token(r)].add(digits(r["nhs_number"]))
    shared = [t for t, v in gp.items() if len(v) >= 2]  # twins-like: two GP patients
    assert shared
    # and a social care row without NHS number carries it (stage 3 must not link it)
    sc_tokens = {token(r) for r in rows("social_care") if not r["nhs_number"]}
    assert sc_tokens & set(shared)


# --- the committed sample: costing cases ---------------------------------------------


def test_acute_spells() -> None:
    acute = rows("acute")
    inpatient = [r for r in acute if r["pod"] in ("EL", "NEL")]
    assert len([r for r in inpatient if not r["end_date"]]) >= 3  # open spells
    assert (
        any(not r["end_date"] and r["pod"] == "EL" for r in inpatient)
        or len([r for r in inpatient if not r["end_date"]]) >= 5
    )
    assert sum(r["start_date"] < "2023-04-01" <= r["end_date"] for r in inpatient) >= 2
    crossing = [
        r for r in inpatient if r["start_date"][:7] == "2024-03" and r["end_date"][:7] == "2024-04"
    ]
    assert len(crossing) >= 2
    for r in acute:
        if r["pod"] not in ("EL", "NEL") and _is_real_date(r["start_date"]):
            assert r["end_date"] == r["start_date"]
    assert any(not r["primary_diagnosis"] for r in acute)


def test_acute_los_above_trim_point_and_unknown_hrgs() -> None:
    with (REFERENCE / "acute_tariff.csv").open(encoding="utf-8") as fh:
        tariff = {(t["hrg_code"], t["pod"]): int(t["trim_point_days"]) for t in csv.DictReader(fh)}
    from datetime import date

    above = unknown = 0
    for r in rows("acute"):
        key = (r["hrg_code"], r["pod"])
        if key not in tariff:
            unknown += 1
        elif r["pod"] in ("EL", "NEL") and r["end_date"] and r["start_date"] <= r["end_date"]:
            try:
                los = date.fromisoformat(r["end_date"]) - date.fromisoformat(r["start_date"])
            except ValueError:
                continue
            above += los.days > tariff[key]
    assert above >= 5
    assert unknown >= 3


def test_chc_and_social_care_packages() -> None:
    for source in ("chc", "social_care"):
        packages = rows(source)
        assert sum(not r["end_date"] for r in packages) >= 3, source  # ongoing
        assert sum(r["start_date"] < "2023-04-01" for r in packages) >= 3, source
    streams = {r["funding_stream"] for r in rows("chc")}
    assert {"CHC", "FNC"} <= streams
    kids = [r for r in rows("chc") if r["date_of_birth"] > "2006-04-01"]
    assert kids  # children's continuing care, for the children_complex cohort
    contributions = {r["client_contribution_weekly"] for r in rows("social_care")}
    assert "" in contributions and len(contributions) > 10
    assert {"HOUR", "WEEK", "GBP"} <= {r["unit_type"] for r in rows("social_care")}


def test_community_cases() -> None:
    community = rows("community")
    assert sum(r["attended"] == "N" for r in community) >= 10
    assert {"F2F", "TEL", "VIDEO"} <= {r["contact_mode"] for r in community}
    with (REFERENCE / "unit_costs.csv").open(encoding="utf-8") as fh:
        priced = {u["service"] for u in csv.DictReader(fh) if u["source"] == "community"}
    assert any(r["service"] not in priced for r in community)  # unpriced service
    with (REFERENCE / "block_contracts.csv").open(encoding="utf-8") as fh:
        blocks = {(b["provider_code"], b["service"]) for b in csv.DictReader(fh)}
    assert sum((r["provider_code"], r["service"]) in blocks for r in community) >= 50


def test_mental_health_cases() -> None:
    mh = rows("mental_health")
    stays = [r for r in mh if r["record_type"] == "INPATIENT"]
    assert sum(not r["end_date"] for r in stays) >= 1  # still in hospital
    assert sum(r["end_date"] == r["start_date"] for r in stays) >= 1  # 0-night stay
    assert sum(r["start_date"] < "2023-04-01" for r in stays) >= 1
    assert sum(r["cpa"] == "Y" for r in mh) >= 20
    contacts = [r for r in mh if r["record_type"] == "CONTACT"]
    assert {"", "x"} & {("" if not r["end_date"] else "x") for r in contacts} == {"", "x"}


def test_primary_care_cases() -> None:
    events = rows("primary_care_events")
    staff = {r["staff_type"] for r in events}
    assert staff == {"GP", "NURSE", "HCA", "PHARMACIST", "OTHER"}
    assert {r["mode"] for r in events} == {"SURGERY", "TELEPHONE", "HOME_VISIT", "VIDEO"}
    registers = {r["register"] for r in rows("primary_care_registers")}
    assert {"COPD", "DIABETES", "LEARNING_DISABILITY", "SMI", "AUTISM"} <= registers
    # some diagnoses fall inside the period (the register counts from the second year only)
    assert any(r["diagnosis_date"] >= "2024-04-01" for r in rows("primary_care_registers"))


# --- the committed sample: rows the contract quarantines -----------------------------


def _is_real_date(value: str) -> bool:
    from datetime import date

    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def test_quarantine_cases() -> None:
    malformed = bad_date = blank_date = blank_number = negative = end_before = dup = 0
    dates = {
        "acute": "start_date",
        "community": "contact_date",
        "mental_health": "start_date",
        "primary_care_events": "event_date",
        "primary_care_registers": "diagnosis_date",
        "social_care": "start_date",
        "chc": "start_date",
    }
    numbers = {
        "chc": ["weekly_cost"],
        "community": ["duration_minutes"],
        "social_care": ["planned_units_per_week", "unit_cost"],
    }
    for source in HEADERS:
        header, data = raw_rows(source)
        malformed += sum(len(r) != len(header) for r in data)
        ids: dict[str, int] = defaultdict(int)
        for r in rows(source):
            for col in (dates[source], "end_date"):
                value = r.get(col, "")
                if value and not _is_real_date(value):
                    bad_date += 1
            blank_date += not r[dates[source]] or not r["date_of_birth"]
            for col in numbers.get(source, []):
                blank_number += not r[col]
                negative += r[col].startswith("-")
            negative += r.get("client_contribution_weekly", "").startswith("-")
            if (
                r.get("end_date")
                and _is_real_date(r["end_date"])
                and _is_real_date(r["start_date"])
                and r["end_date"] < r["start_date"]
            ):
                end_before += 1
            key = (
                r[IDS[source]]
                if source in IDS
                else "|".join((r["nhs_number"], r["local_patient_id"], r["register"]))
            )
            ids[key] += 1
        dup += sum(n - 1 for n in ids.values() if n > 1)
    assert malformed >= 4
    assert bad_date >= 4
    assert blank_date >= 4
    assert blank_number >= 3
    assert negative >= 3
    assert end_before >= 3
    assert dup >= 5


# --- the committed reference tables --------------------------------------------------


@pytest.mark.parametrize("name", sorted(REFERENCE_HEADERS))
def test_reference_csv_columns_and_reference_on_every_row(name: str) -> None:
    path = REFERENCE / f"{name}.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        data = list(reader)
    assert ",".join(header) == REFERENCE_HEADERS[name]
    assert data
    for r in data:
        assert len(r) == len(header)
        assert r[-1].strip(), r


def test_reference_years_and_tariff_coverage() -> None:
    with (REFERENCE / "acute_tariff.csv").open(encoding="utf-8") as fh:
        tariff = list(csv.DictReader(fh))
    years = {t["financial_year"] for t in tariff}
    assert years == {"2023/24", "2024/25"}
    for year in years:
        assert 30 <= sum(t["financial_year"] == year for t in tariff) <= 70
    assert all("INVENTED" in t["reference"] for t in tariff if t["pod"] in ("EL", "NEL"))
    used = {(r["hrg_code"], r["pod"]) for r in rows("acute")}
    assert {(t["hrg_code"], t["pod"]) for t in tariff} <= used
    with (REFERENCE / "acute_pod_default.csv").open(encoding="utf-8") as fh:
        pods = {(p["financial_year"], p["pod"]) for p in csv.DictReader(fh)}
    assert pods == {(y, p) for y in years for p in ("EL", "NEL", "DC", "OPFA", "OPFU", "AE")}
    with (REFERENCE / "unit_costs.csv").open(encoding="utf-8") as fh:
        units = list(csv.DictReader(fh))
    for year in years:
        for source in ("community", "mental_health", "primary_care"):
            assert any(u["financial_year"] == year and u["source"] == source for u in units)


def test_cohorts_and_settings() -> None:
    assert (REFERENCE / "cohorts.yaml").read_bytes() == WORKED_EXAMPLE_COHORTS.read_bytes()
    settings = yaml.safe_load((REFERENCE / "settings.yaml").read_text(encoding="utf-8"))
    assert settings == {
        "cashable_settings": ["chc", "social_care", "community"],
        "disclosure": {"threshold": 7, "rounding": 5},
        "k_anonymity": {"k": 5},
        "recipients_open_pseudonymiser": {},
    }
