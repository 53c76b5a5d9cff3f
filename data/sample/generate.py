#!/usr/bin/env python
"""Generate the bundled sample site: seven landing extracts and the reference tables.

    python data/sample/generate.py --people 5000 --seed 20231 --out data/sample/landing

The defaults are exactly those, so running the script with no arguments reproduces the
committed files byte for byte. People are generated in chunks (``--chunk-size``, default
10,000) and each chunk's rows are appended to the seven CSV files, so a run for a million
people never holds more than one chunk in memory. Every random draw of a chunk comes from
``numpy.random.default_rng([seed, chunk_number])``: the output depends only on the seed,
the number of people and the chunk size.

Everything here is synthetic: NHS numbers come from the 999 test range, names from fixed
lists below and postcodes are made up. The reference tables are written from the constants
in this file (figures copied from the NHS England National Cost Collection and PSSRU, each
row citing its source, invented values said to be invented); the script reads nothing.
See data/sample/README.md.
"""

import argparse
import io
import math
import sys
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
DEFAULT_PEOPLE = 5000
DEFAULT_SEED = 20231
DEFAULT_CHUNK = 10_000
DEFAULT_OUT = HERE / "landing"
DEFAULT_REFERENCE_OUT = HERE / "reference"


def day(iso: str) -> int:
    """Days since 1970-01-01 of a YYYY-MM-DD date."""
    return int(np.datetime64(iso, "D").astype(np.int64))


P_START = day("2023-04-01")  # first day of 2023/24
FY_SPLIT = day("2024-04-01")  # first day of 2024/25
P_END = day("2025-03-31")  # last day of 2024/25; the extracts are taken on this day
PERIOD_DAYS = P_END - P_START + 1
YEARS = PERIOD_DAYS / 365.25
AGE_REF = FY_SPLIT  # ages below are ages on 1 April 2024
NO_DATE = -(10**6)  # sentinel for a blank date

SOURCES = (
    "acute",
    "chc",
    "community",
    "mental_health",
    "primary_care_events",
    "primary_care_registers",
    "social_care",
)
_ID = ["nhs_number", "local_patient_id", "date_of_birth", "sex", "postcode"]
_NAMES = ["given_name", "family_name"]
COLUMNS: dict[str, list[str]] = {
    "acute": [
        *_ID,
        "activity_id",
        "provider_code",
        "pod",
        "start_date",
        "end_date",
        "hrg_code",
        "primary_diagnosis",
    ],
    "chc": [
        *_ID,
        "package_id",
        "care_setting",
        "funding_stream",
        "start_date",
        "end_date",
        "weekly_cost",
    ],
    "community": [
        *_ID,
        "contact_id",
        "provider_code",
        "service",
        "contact_date",
        "contact_mode",
        "duration_minutes",
        "attended",
    ],
    "mental_health": [
        *_ID,
        "record_id",
        "provider_code",
        "record_type",
        "service",
        "start_date",
        "end_date",
        "cpa",
    ],
    "primary_care_events": [
        *_ID,
        *_NAMES,
        "event_id",
        "practice_code",
        "event_date",
        "staff_type",
        "mode",
    ],
    "primary_care_registers": [*_ID, *_NAMES, "register", "diagnosis_date"],
    "social_care": [
        *_ID,
        *_NAMES,
        "service_id",
        "service_type",
        "start_date",
        "end_date",
        "planned_units_per_week",
        "unit_type",
        "unit_cost",
        "client_contribution_weekly",
    ],
}
# id column, id prefix, digits of the running number
ROW_ID: dict[str, tuple[str, str, int]] = {
    "acute": ("activity_id", "APC", 8),
    "chc": ("package_id", "CHCP", 7),
    "community": ("contact_id", "CSDS", 8),
    "mental_health": ("record_id", "MHS", 8),
    "primary_care_events": ("event_id", "GPEV", 8),
    "social_care": ("service_id", "CLD", 7),
}

# ---------------------------------------------------------------------------------------
# Population: England-like age structure (ONS mid-2022 estimates for England, rounded to
# 0.1 percentage points, five-year bands; 90+ spread over 90-100).
AGE_BANDS = [(lo, lo + 4) for lo in range(0, 90, 5)] + [(90, 100)]
AGE_BAND_SHARE = np.array(
    [5.4, 5.9, 6.1, 5.9, 6.1, 6.6, 6.9, 6.7, 6.4, 6.0, 6.7, 6.7, 5.9, 5.0, 4.9, 3.8, 2.5, 1.5, 0.9]
)
AGE_BAND_SHARE = AGE_BAND_SHARE / AGE_BAND_SHARE.sum()
# groups used by every rate table below
AGE_GROUP_EDGES = np.array([5, 18, 45, 65, 75, 85])  # 0-4, 5-17, 18-44, 45-64, 65-74, 75-84, 85+
N_GROUPS = 7

REGISTERS = [
    "COPD",
    "ASTHMA",
    "DIABETES",
    "HEART_FAILURE",
    "CHD",
    "STROKE",
    "CKD",
    "DEMENTIA",
    "LEARNING_DISABILITY",
    "AUTISM",
    "SMI",
    "DEPRESSION",
    "CANCER",
    "FRAILTY_SEVERE",
]
R = {name: i for i, name in enumerate(REGISTERS)}
LTC = [R[x] for x in ("COPD", "ASTHMA", "DIABETES", "HEART_FAILURE", "CHD", "STROKE", "CKD")] + [
    R["DEMENTIA"],
    R["CANCER"],
]
# register prevalence: relative shape by age group, scaled to the all-age target (per cent).
# Targets approximate QOF 2023/24 all-age prevalences (COPD ~2%, asthma ~6%, diabetes ~7%,
# learning disability ~0.5%, SMI ~1%); autism and severe frailty are assumptions.
REGISTER_SHAPE = {
    "COPD": ([0, 0, 0.002, 0.02, 0.05, 0.075, 0.08], 2.0, 0.6),
    "ASTHMA": ([0.03, 0.08, 0.065, 0.065, 0.07, 0.07, 0.06], 6.0, 0.3),
    "DIABETES": ([0, 0.002, 0.02, 0.09, 0.17, 0.2, 0.17], 7.0, 0.5),
    "HEART_FAILURE": ([0, 0, 0.001, 0.006, 0.025, 0.055, 0.1], 1.0, 0.7),
    "CHD": ([0, 0, 0.002, 0.025, 0.09, 0.14, 0.18], 3.0, 0.5),
    "STROKE": ([0, 0, 0.002, 0.012, 0.045, 0.08, 0.11], 1.8, 0.6),
    "CKD": ([0, 0, 0.003, 0.025, 0.09, 0.2, 0.35], 3.5, 0.5),
    "DEMENTIA": ([0, 0, 0, 0.001, 0.01, 0.05, 0.17], 0.7, 0.7),
    "LEARNING_DISABILITY": ([0.003, 0.007, 0.006, 0.005, 0.003, 0.002, 0.001], 0.5, 0.3),
    "AUTISM": ([0.01, 0.035, 0.012, 0.003, 0.001, 0.0005, 0.0003], 1.0, 0.2),
    "SMI": ([0, 0.001, 0.012, 0.014, 0.011, 0.009, 0.008], 1.0, 0.4),
    "DEPRESSION": ([0, 0.01, 0.17, 0.19, 0.15, 0.13, 0.12], 12.0, 0.4),
    "CANCER": ([0, 0.001, 0.006, 0.03, 0.09, 0.13, 0.15], 3.3, 0.4),
    "FRAILTY_SEVERE": ([0, 0, 0, 0.001, 0.02, 0.07, 0.2], 0.8, 0.8),
}
# youngest age at which a register's first diagnosis is dated
REGISTER_MIN_AGE = {"DIABETES": 10, "COPD": 35, "DEMENTIA": 50, "FRAILTY_SEVERE": 60, "CKD": 18}


def _group_share() -> np.ndarray:
    share = np.zeros(N_GROUPS)
    for (lo, hi), s in zip(AGE_BANDS, AGE_BAND_SHARE, strict=True):
        ages = np.arange(lo, hi + 1)
        groups = np.searchsorted(AGE_GROUP_EDGES, ages, side="right")
        np.add.at(share, groups, s / len(ages))
    return share


GROUP_SHARE = _group_share()


def _register_probabilities() -> np.ndarray:
    """[registers, age groups] probability before the latent-health adjustment."""
    out = np.zeros((len(REGISTERS), N_GROUPS))
    for name, (shape, target, _) in REGISTER_SHAPE.items():
        s = np.array(shape, dtype=float)
        out[R[name]] = s * (target / 100) / float((s * GROUP_SHARE).sum())
    return out


REGISTER_P = _register_probabilities()
REGISTER_BETA = np.array([REGISTER_SHAPE[r][2] for r in REGISTERS])

# ---------------------------------------------------------------------------------------
# Activity volumes (rows per person per year across all ages) and who gets them.
# rate: facts.md section 2 (per 10,000 people per year / 10,000) unless marked assumed.
# age: relative rate by age group (0-4, 5-17, 18-44, 45-64, 65-74, 75-84, 85+).
# sigma: spread of the latent health effect; k: gamma shape of the person-level
# over-dispersion (small k = a few people get most of it); ltc: extra rate per long-term
# condition register.


@dataclass(frozen=True)
class Rate:
    rate: float
    age: tuple[float, ...]
    sigma: float
    k: float
    ltc: float = 0.0


RATES: dict[str, Rate] = {
    # acute (facts.md 2: emergency admissions 1,050; outpatients 17,100 first:follow-up 1:2;
    # A&E 4,400 per 10,000 a year). Elective inpatient 260 and day case 1,140: assumed.
    "NEL": Rate(0.105, (1.5, 0.45, 0.55, 0.85, 1.5, 2.8, 5.0), 0.8, 0.6, 0.35),
    "EL": Rate(0.026, (0.2, 0.2, 0.5, 1.0, 2.2, 2.4, 1.4), 0.3, 1.0, 0.1),
    "DC": Rate(0.114, (0.1, 0.15, 0.5, 1.2, 2.2, 2.3, 1.5), 0.4, 0.8, 0.15),
    "OPFA": Rate(0.57, (0.6, 0.4, 0.7, 1.1, 1.7, 2.0, 1.7), 0.4, 1.0, 0.2),
    "OPFU": Rate(1.14, (0.5, 0.35, 0.6, 1.1, 1.9, 2.3, 2.0), 0.6, 0.7, 0.3),
    "AE": Rate(0.44, (1.4, 0.8, 1.0, 0.8, 0.9, 1.3, 2.2), 0.6, 0.7, 0.2),
    # primary care (facts.md 2: 58,000 GP practice appointments per 10,000 a year)
    "GP": Rate(5.8, (1.1, 0.45, 0.7, 0.95, 1.4, 1.9, 2.3), 0.5, 1.5, 0.25),
    # community (facts.md 2: 12,600 contacts, 4,500 district nursing); split assumed
    "DISTRICT_NURSING": Rate(0.45, (0.02, 0.01, 0.05, 0.2, 1.0, 3.5, 9.0), 1.0, 0.12, 0.3),
    "PHYSIOTHERAPY": Rate(0.31, (0.2, 0.4, 0.8, 1.2, 1.5, 1.6, 1.4), 0.5, 0.3, 0.1),
    "OCCUPATIONAL_THERAPY": Rate(0.11, (0.3, 0.4, 0.4, 0.8, 1.5, 2.5, 3.5), 0.7, 0.2, 0.2),
    "SPEECH_LANGUAGE": Rate(0.06, (2.0, 1.5, 0.2, 0.4, 1.0, 1.8, 2.2), 0.5, 0.2, 0.1),
    "PODIATRY": Rate(0.20, (0.0, 0.05, 0.3, 0.9, 2.0, 3.0, 3.5), 0.5, 0.3, 0.3),
    "COMMUNITY_MATRON": Rate(0.07, (0, 0, 0.05, 0.3, 1.5, 3.5, 6.0), 1.0, 0.15, 0.4),
    "RESPIRATORY": Rate(0.05, (0.2, 0.2, 0.3, 0.9, 2.5, 3.0, 2.5), 0.6, 0.2, 0.2),
    # a local service with no national unit cost (unpriced): assumed
    "CONTINENCE": Rate(0.01, (0.1, 0.2, 0.2, 0.6, 1.5, 3.0, 5.0), 0.6, 0.3, 0.1),
    # mental health (facts.md 2: 3,950 contacts per 10,000 a year)
    "MH_CONTACT": Rate(0.395, (0.2, 1.2, 1.3, 1.0, 0.6, 0.8, 1.0), 0.6, 0.15, 0.0),
}
COMMUNITY_SERVICES = [
    "DISTRICT_NURSING",
    "PHYSIOTHERAPY",
    "OCCUPATIONAL_THERAPY",
    "SPEECH_LANGUAGE",
    "PODIATRY",
    "COMMUNITY_MATRON",
    "RESPIRATORY",
    "CONTINENCE",
]
# MH inpatient stays per person-year, tuned so that bed days inside the period come to
# about 1,100 per 10,000 people a year (facts.md 2)
MH_STAY_RATE = 0.00217
# people per 10,000 at a point in time (facts.md 2: CHC eligible ~11; long-term social
# care ~150); FNC, the social care split by client group and reablement: assumed
CHC_PREVALENCE = 11.0
FNC_PREVALENCE = 8.0
SC_OLDER_PREVALENCE = 100.0
SC_YOUNGER_PREVALENCE = 15.0
SC_LD_SHARE = 0.6  # of adults on the learning disability register
SC_MH_PREVALENCE = 8.0
REABLEMENT_PER_YEAR = 60.0

# ---------------------------------------------------------------------------------------
# Acute HRGs. Prices: NHS England National Cost Collection national schedule unit cost of
# the HRG in that department (NEL = long stay and short stay together: total cost / total
# activity). mean_los: the generator's mean length of stay. trim: trim point in days,
# INVENTED (the NCC has no trim points). age: relative weight by age group.


@dataclass(frozen=True)
class Hrg:
    code: str
    pod: str
    desc: str
    price_2324: float
    price_2425: float
    mean_los: float
    trim: int
    icd10: tuple[str, ...]
    age: tuple[float, ...]
    boost: tuple[str, ...] = ()


# fmt: off
HRGS: list[Hrg] = [
    Hrg("DZ65H", "NEL", "COPD or bronchitis, without interventions, CC 5-8", 2590.57, 2679.52, 6, 18, ("J44.1", "J44.0"), (0, 0, 0, 2, 6, 6, 4), ("COPD",)),  # noqa: E501
    Hrg("DZ65J", "NEL", "COPD or bronchitis, without interventions, CC 0-4", 2214.62, 2280.38, 4, 13, ("J44.1",), (0, 0, 0, 2, 4, 3, 2), ("COPD",)),  # noqa: E501
    Hrg("DZ65K", "NEL", "COPD or bronchitis, length of stay 1 day or less, discharged home", 638.75, 665.06, 0.4, 2, ("J44.1",), (0, 0, 0, 2, 3, 2, 1), ("COPD",)),  # noqa: E501
    Hrg("DZ11R", "NEL", "Lobar, atypical or viral pneumonia, without interventions, CC 14+", 3894.00, 3928.69, 9, 26, ("J18.1", "J18.9"), (0, 0, 0, 1, 3, 6, 9)),  # noqa: E501
    Hrg("DZ11S", "NEL", "Lobar, atypical or viral pneumonia, without interventions, CC 10-13", 2688.97, 2735.59, 7, 21, ("J18.9",), (0, 0, 1, 2, 4, 5, 5)),  # noqa: E501
    Hrg("DZ11T", "NEL", "Lobar, atypical or viral pneumonia, without interventions, CC 7-9", 1992.22, 2021.76, 5, 16, ("J18.9", "J12.9"), (1, 1, 2, 2, 3, 3, 2)),  # noqa: E501
    Hrg("DZ22P", "NEL", "Unspecified acute lower respiratory infection, without interventions, CC 5-8", 1414.60, 1443.35, 4, 13, ("J22",), (0, 0, 1, 2, 3, 4, 4)),  # noqa: E501
    Hrg("DZ22Q", "NEL", "Unspecified acute lower respiratory infection, without interventions, CC 0-4", 711.02, 730.50, 2, 8, ("J22",), (3, 2, 3, 3, 2, 2, 1)),  # noqa: E501
    Hrg("EB03C", "NEL", "Heart failure or shock, CC 8-10", 2162.38, 2152.68, 8, 23, ("I50.0", "I50.9"), (0, 0, 0, 1, 3, 5, 6), ("HEART_FAILURE",)),  # noqa: E501
    Hrg("EB03D", "NEL", "Heart failure or shock, CC 4-7", 1646.67, 1618.93, 6, 18, ("I50.0",), (0, 0, 0, 1, 2, 3, 3), ("HEART_FAILURE",)),  # noqa: E501
    Hrg("LA04Q", "NEL", "Kidney or urinary tract infections, without interventions, CC 4-7", 2152.22, 2204.42, 6, 18, ("N39.0", "N10"), (0, 0, 0, 1, 2, 5, 7)),  # noqa: E501
    Hrg("LA04R", "NEL", "Kidney or urinary tract infections, without interventions, CC 2-3", 1421.47, 1465.64, 4, 13, ("N39.0",), (0, 0, 1, 1, 2, 3, 3)),  # noqa: E501
    Hrg("LA04S", "NEL", "Kidney or urinary tract infections, without interventions, CC 0-1", 885.08, 885.27, 2, 8, ("N39.0", "N10"), (1, 1, 3, 2, 1, 1, 1)),  # noqa: E501
    Hrg("AA35C", "NEL", "Stroke, CC 10-12", 4339.80, 4157.91, 14, 38, ("I63.9", "I61.9"), (0, 0, 0, 1, 2, 4, 4), ("STROKE",)),  # noqa: E501
    Hrg("AA35E", "NEL", "Stroke, CC 4-6", 2420.50, 2469.08, 8, 23, ("I63.9",), (0, 0, 0, 1, 2, 2, 2), ("STROKE",)),  # noqa: E501
    Hrg("HE11E", "NEL", "Hip fracture without interventions, CC 12+", 6812.05, 7047.92, 16, 43, ("S72.0",), (0, 0, 0, 0, 1, 2, 4), ("FRAILTY_SEVERE",)),  # noqa: E501
    Hrg("HE11G", "NEL", "Hip fracture without interventions, CC 4-7", 4127.57, 4202.06, 10, 28, ("S72.0", "S72.1"), (0, 0, 0, 0, 1, 3, 5), ("FRAILTY_SEVERE",)),  # noqa: E501
    Hrg("WJ06H", "NEL", "Sepsis without interventions, CC 5-8", 2819.99, 2891.54, 7, 21, ("A41.9",), (0, 0, 1, 2, 3, 4, 4)),  # noqa: E501
    Hrg("WJ06J", "NEL", "Sepsis without interventions, CC 0-4", 2081.56, 2168.08, 4, 13, ("A41.9",), (1, 1, 1, 1, 1, 1, 1)),  # noqa: E501
    Hrg("EB08D", "NEL", "Syncope or collapse, CC 4-6", 991.34, 1001.92, 2, 8, ("R55",), (0, 1, 2, 3, 3, 4, 4)),  # noqa: E501
    Hrg("EB12C", "NEL", "Unspecified chest pain, CC 0-4", 387.16, 397.65, 0.6, 3, ("R07.4", "R07.3"), (0, 0, 8, 8, 4, 2, 1)),  # noqa: E501
    Hrg("FD01H", "NEL", "Gastrointestinal infections without interventions, CC 2-4", 1613.82, 1620.05, 3, 11, ("A09.9", "A08.4"), (2, 2, 3, 2, 2, 2, 2)),  # noqa: E501
    Hrg("FD05B", "NEL", "Abdominal pain without interventions", 688.34, 702.67, 1, 5, ("R10.4", "R10.3"), (0, 2, 10, 7, 3, 2, 1)),  # noqa: E501
    Hrg("WH09F", "NEL", "Tendency to fall, senility or other conditions affecting cognitive functions, CC 2-3", 2375.61, 2485.93, 8, 23, ("R29.6", "R54"), (0, 0, 0, 0, 2, 5, 8), ("FRAILTY_SEVERE",)),  # noqa: E501
    Hrg("WD02Z", "NEL", "Alzheimers disease or dementia, non-specialist mental health provider", 4768.90, 5150.78, 14, 38, ("F03", "G30.9"), (0, 0, 0, 0, 1, 3, 4), ("DEMENTIA",)),  # noqa: E501
    Hrg("DZ15R", "NEL", "Asthma without interventions, CC 0-2", 876.48, 932.88, 1.5, 6, ("J45.9", "J46"), (0, 0, 3, 2, 1, 0, 0), ("ASTHMA",)),  # noqa: E501
    Hrg("KB02J", "NEL", "Diabetes with hyperglycaemic disorders, CC 2-4", 1157.48, 1237.43, 3, 11, ("E11.6", "E10.1"), (0, 0, 1, 2, 1, 1, 1), ("DIABETES",)),  # noqa: E501
    Hrg("EB10D", "NEL", "Actual or suspected myocardial infarction, CC 4-6", 1664.74, 1713.66, 4, 13, ("I21.9", "I21.4"), (0, 0, 1, 3, 3, 3, 2), ("CHD",)),  # noqa: E501
    Hrg("PD12B", "NEL", "Paediatric asthma or wheezing, CC 1-3", 1530.42, 1528.95, 0.8, 4, ("J45.9", "R06.2"), (12, 4, 0, 0, 0, 0, 0)),  # noqa: E501
    Hrg("PX29B", "NEL", "Paediatric abdominal pain, CC 1-2", 927.30, 911.54, 0.7, 3, ("R10.4",), (5, 10, 0, 0, 0, 0, 0)),  # noqa: E501
    Hrg("HN12E", "EL", "Very major hip procedures for non-trauma, CC 2-3", 8786.07, 8949.66, 3.5, 10, ("M16.9", "M16.1"), (0, 0, 0, 2, 4, 3, 1)),  # noqa: E501
    Hrg("HN12F", "EL", "Very major hip procedures for non-trauma, CC 0-1", 8358.10, 8464.22, 2.5, 8, ("M16.1",), (0, 0, 1, 3, 4, 2, 0)),  # noqa: E501
    Hrg("HN22D", "EL", "Very major knee procedures for non-trauma, CC 2-3", 8557.74, 8465.59, 3, 9, ("M17.1", "M17.9"), (0, 0, 0, 2, 4, 3, 1)),  # noqa: E501
    Hrg("HN22E", "EL", "Very major knee procedures for non-trauma, CC 0-1", 8037.57, 8104.50, 2.2, 7, ("M17.1",), (0, 0, 1, 3, 4, 2, 0)),  # noqa: E501
    Hrg("LB25F", "EL", "Transurethral prostate resection procedures, CC 0-2", 4843.77, 4957.20, 1.5, 5, ("N40",), (0, 0, 0, 2, 4, 4, 2)),  # noqa: E501
    Hrg("FF62C", "EL", "Inguinal, umbilical or femoral hernia procedures, 19 years and over, CC 1-2", 4384.46, 4430.57, 1, 4, ("K40.9", "K42.9"), (1, 1, 3, 3, 2, 1, 1)),  # noqa: E501
    Hrg("BZ34B", "DC", "Phacoemulsification cataract extraction and lens implant, CC 2-3", 1413.05, 1438.26, 0, 0, ("H25.9", "H25.1"), (0, 0, 0, 1, 4, 6, 4)),  # noqa: E501
    Hrg("BZ34C", "DC", "Phacoemulsification cataract extraction and lens implant, CC 0-1", 1379.96, 1414.06, 0, 0, ("H25.9",), (0, 0, 0, 2, 5, 5, 2)),  # noqa: E501
    Hrg("FE21Z", "DC", "Diagnostic endoscopic upper gastrointestinal tract procedures with biopsy, 19 years and over", 745.44, 789.93, 0, 0, ("K21.9", "K29.7"), (0, 0, 3, 4, 3, 2, 1)),  # noqa: E501
    Hrg("FE31Z", "DC", "Diagnostic colonoscopy with biopsy, 19 years and over", 978.07, 1030.69, 0, 0, ("K63.5", "K57.3"), (0, 0, 2, 4, 4, 3, 1)),  # noqa: E501
    Hrg("FE32Z", "DC", "Diagnostic colonoscopy, 19 years and over", 787.39, 840.09, 0, 0, ("K57.3", "Z12.1"), (0, 0, 2, 4, 4, 3, 1)),  # noqa: E501
    Hrg("LB72A", "DC", "Diagnostic flexible cystoscopy, 19 years and over", 536.05, 611.11, 0, 0, ("R31", "N32.9"), (0, 0, 1, 3, 4, 4, 2)),  # noqa: E501
    Hrg("SB12Z", "DC", "Deliver simple parenteral chemotherapy at first attendance", 418.29, 435.51, 0, 0, ("C50.9", "C18.9", "C34.9"), (0, 0, 1, 3, 3, 2, 1), ("CANCER",)),  # noqa: E501
    Hrg("JC43C", "DC", "Minor skin procedures, 19 years and over", 900.37, 868.05, 0, 0, ("L82", "D22.9"), (0, 1, 2, 3, 4, 4, 3)),  # noqa: E501
    Hrg("FF62D", "DC", "Inguinal, umbilical or femoral hernia procedures, 19 years and over, CC 0", 3061.52, 3122.22, 0, 0, ("K40.9",), (1, 1, 3, 3, 2, 1, 0)),  # noqa: E501
    Hrg("WF01B", "OPFA", "Non-admitted face-to-face attendance, first", 232.07, 0, 0, 0, (), (80,)),
    Hrg("WF01D", "OPFA", "Non-admitted non-face-to-face attendance, first", 167.61, 0, 0, 0, (), (15,)),  # noqa: E501
    Hrg("WF02B", "OPFA", "Multiprofessional non-admitted face-to-face attendance, first", 277.36, 0, 0, 0, (), (5,)),  # noqa: E501
    Hrg("WF01A", "OPFU", "Non-admitted face-to-face attendance, follow-up", 192.28, 0, 0, 0, (), (72,)),  # noqa: E501
    Hrg("WF01C", "OPFU", "Non-admitted non-face-to-face attendance, follow-up", 153.84, 0, 0, 0, (), (22,)),  # noqa: E501
    Hrg("WF02A", "OPFU", "Multiprofessional non-admitted face-to-face attendance, follow-up", 249.12, 0, 0, 0, (), (6,)),  # noqa: E501
    Hrg("VB01Z", "AE", "Emergency medicine, any investigation with category 5 treatment", 333.18, 1179.98, 0, 0, (), (0.2, 0.6)),  # noqa: E501
    Hrg("VB02Z", "AE", "Emergency medicine, category 3 investigation with category 4 treatment", 866.37, 872.61, 0, 0, (), (1.5, 4.0)),  # noqa: E501
    Hrg("VB03Z", "AE", "Emergency medicine, category 3 investigation with category 1-3 treatment", 497.67, 515.45, 0, 0, (), (6.0, 14.0)),  # noqa: E501
    Hrg("VB04Z", "AE", "Emergency medicine, category 2 investigation with category 4 treatment", 677.26, 683.68, 0, 0, (), (3.5, 8.0)),  # noqa: E501
    Hrg("VB05Z", "AE", "Emergency medicine, category 2 investigation with category 3 treatment", 471.85, 503.29, 0, 0, (), (1.2, 2.0)),  # noqa: E501
    Hrg("VB06Z", "AE", "Emergency medicine, category 1 investigation with category 3-4 treatment", 353.92, 391.24, 0, 0, (), (2.0, 2.0)),  # noqa: E501
    Hrg("VB07Z", "AE", "Emergency medicine, category 2 investigation with category 2 treatment", 359.29, 367.49, 0, 0, (), (9.5, 12.0)),  # noqa: E501
    Hrg("VB08Z", "AE", "Emergency medicine, category 2 investigation with category 1 treatment", 260.93, 269.19, 0, 0, (), (22.0, 24.0)),  # noqa: E501
    Hrg("VB09Z", "AE", "Emergency medicine, category 1 investigation with category 1-2 treatment", 177.01, 182.12, 0, 0, (), (23.0, 18.0)),  # noqa: E501
    Hrg("VB11Z", "AE", "Emergency medicine, no investigation with no significant treatment", 123.75, 126.76, 0, 0, (), (31.0, 15.4)),  # noqa: E501
]
# fmt: on
# HRG codes that the generator uses but the tariff does not hold (priced by POD default)
UNKNOWN_HRG = {"NEL": "UZ01Z", "DC": "UZ01Z", "AE": "VB99Z", "EL": "DZ65H"}
# The 2024/25 NCC tabulation has no consultant-led WF01*/WF02* rows: the 2023/24 unit cost
# is uplifted by this INVENTED factor.
OP_UPLIFT_2425 = 1.035
# Excess bed day price: INVENTED. Reference costs 2016/17 excess bed day £313 (HFMA news,
# 5 December 2017) uplifted by an invented 25% to 2023/24 and a further invented 3.5%.
EXCESS_BED_DAY = {"2023/24": 391.0, "2024/25": 405.0}

# POD defaults: NCC department average = total cost / total activity over the department's
# rows that report activity (computed from the national schedules, see README)
POD_DEFAULT: dict[str, dict[str, tuple[float, str]]] = {
    "2023/24": {
        "EL": (6214.17, "Elective Inpatients"),
        "NEL": (2595.43, "Non-Elective Inpatient - Long Stay and Short Stay together"),
        "DC": (1031.11, "Daycase"),
        "OPFA": (222.82, "Consultant Led WF01B, WF01D, WF02B, WF02D (first attendances)"),
        "OPFU": (184.35, "Consultant Led WF01A, WF01C, WF02A, WF02C (follow-ups)"),
        "AE": (272.97, "Emergency Care (all VB HRGs)"),
    },
    "2024/25": {
        "EL": (6685.38, "Elective Inpatients"),
        "NEL": (2709.82, "Non-Elective Inpatient - Long Stay and Short Stay together"),
        "DC": (1077.08, "Daycase"),
        "OPFA": (230.62, ""),
        "OPFU": (190.80, ""),
        "AE": (280.17, "Emergency Care (all VB HRGs)"),
    },
}

# ---------------------------------------------------------------------------------------
# Unit costs (community, mental health, primary care) for unit_costs.csv.
NCC = "NHS England National Cost Collection national schedule"
# (service, mode, currency, 2023/24 unit cost, 2024/25 unit cost, description)
COMMUNITY_COSTS = [
    ("DISTRICT_NURSING", "F2F", "N02AF", 58.11, 59.65, "District Nurse, Adult, Face to face"),
    ("DISTRICT_NURSING", "TEL", "N02AN", 40.03, 43.08, "District Nurse, Adult, Non face to face"),
    ("DISTRICT_NURSING", "VIDEO", "N02AN", 40.03, 43.08, "District Nurse, Adult, Non face to face"),
    ("PHYSIOTHERAPY", "", "A08A1", 75.62, 79.06, "Physiotherapist, Adult, One to One"),
    (
        "OCCUPATIONAL_THERAPY",
        "",
        "A06A1",
        126.69,
        132.70,
        "Occupational Therapist, Adult, One to One",
    ),
    (
        "SPEECH_LANGUAGE",
        "",
        "A13A1",
        119.95,
        132.91,
        "Speech and Language Therapist, Adult, One to One",
    ),
    ("PODIATRY", "", "A09A", 75.11, 76.83, "Podiatrist, Tier 1, General Podiatry"),
    (
        "COMMUNITY_MATRON",
        "F2F",
        "N06AF",
        136.14,
        144.69,
        "Specialist Nursing, Active Case Management (Community Matrons), Adult, Face to face",
    ),
    (
        "COMMUNITY_MATRON",
        "",
        "N06AN",
        98.35,
        87.09,
        "Specialist Nursing, Active Case Management (Community Matrons), Adult, Non face to face",
    ),
    (
        "RESPIRATORY",
        "F2F",
        "N08AF",
        110.61,
        120.35,
        "Specialist Nursing, Asthma and Respiratory Nursing/Liaison, Adult, Face to face",
    ),
    (
        "RESPIRATORY",
        "",
        "N08AN",
        62.38,
        64.50,
        "Specialist Nursing, Asthma and Respiratory Nursing/Liaison, Adult, Non face to face",
    ),
]
# mental health 2024/25 by ward or team; 2023/24: the 2023/24 tabulation holds only the
# all-service averages MHPS (£651.29 per bed day) and MHCC (£302.11 per contact)
MH_COSTS_2425 = [
    ("ADULT_ACUTE", "BED_DAY", "200MHPS", 719.10, "Acute Adult Mental Health Care"),
    (
        "OLDER_ADULT",
        "BED_DAY",
        "201MHPS",
        787.59,
        "Acute Older Adult Mental Health Care (Organic and Functional)",
    ),
    (
        "PICU",
        "BED_DAY",
        "202MHPS",
        1265.89,
        "Adult Psychiatric Intensive Care Unit (Acute Mental Health Care)",
    ),
    (
        "REHAB",
        "BED_DAY",
        "212MHPS",
        603.99,
        "Adult Mental Health Rehabilitation (Mainstream Service)",
    ),
    ("CMHT", "CONTACT", "A06", 278.91, "Community Mental Health Team - Functional"),
    ("CRISIS", "CONTACT", "A02", 356.83, "Crisis Resolution Team/Home Treatment Service"),
    ("MEMORY", "CONTACT", "A17", 252.50, "Memory Services/Clinic/Drop in service"),
    ("EARLY_INTERVENTION", "CONTACT", "A14", 314.44, "Early Intervention Team for Psychosis"),
    (
        "CAMHS",
        "CONTACT",
        "MHCC",
        305.94,
        "department average of all Mental Health Care Contact currencies (total cost /"
        " total activity); the schedule has no generic CAMHS team currency",
    ),
]
MH_2324 = {
    "BED_DAY": (651.29, "MHPS", "Mental Health Provider Spell"),
    "CONTACT": (302.11, "MHCC", "Mental Health Care Contact"),
}
PSSRU = "PSSRU Unit Costs of Health and Social Care 2024 (2023/24 prices)"
PRIMARY_UPLIFT_2425 = 1.03  # INVENTED uplift for 2024/25 primary care figures
# (staff_type, mode, 2023/24 cost, reference)
PRIMARY_COSTS = [
    ("GP", "", 45.00, f"{PSSRU} table 9.4.2: GP surgery consultation, 10 minutes"),
    ("GP", "SURGERY", 45.00, f"{PSSRU} table 9.4.2: GP surgery consultation, 10 minutes"),
    ("GP", "TELEPHONE", 18.63, f"{PSSRU} table 9.6.1: telephone triage, GP-led (4 minutes)"),
    (
        "GP",
        "VIDEO",
        44.70,
        f"{PSSRU}: GP £4.47 per minute of patient contact x 10 minutes (the 10-minute"
        " length is assumed)",
    ),
    (
        "GP",
        "HOME_VISIT",
        134.10,
        f"{PSSRU}: GP £4.47 per minute of patient contact x 30 minutes including travel"
        " (the 30 minutes is INVENTED)",
    ),
    (
        "NURSE",
        "",
        10.18,
        "PSSRU-based practice nurse 10-minute face-to-face consultation (COSTmos), 2023/24",
    ),
    (
        "NURSE",
        "TELEPHONE",
        6.11,
        "PSSRU-based practice nurse 6-minute telephone consultation (COSTmos), 2023/24",
    ),
    (
        "NURSE",
        "HOME_VISIT",
        15.78,
        "PSSRU-based practice nurse 15.5-minute visit (COSTmos), 2023/24",
    ),
    (
        "HCA",
        "",
        6.50,
        "INVENTED for the sample: about 60% of the practice nurse 10-minute figure"
        " (£10.18, PSSRU-based, COSTmos)",
    ),
    ("PHARMACIST", "", 15.50, "INVENTED for the sample: 15 minutes at an invented £62 per hour"),
]
# Block contract: INVENTED values, sized for the default 5,000-person sample: 2023/24 about
# 90% of what the provider's attended 2023/24 sample contacts (191) cost at the NCC A09A
# unit cost (£75.11); 2024/25 that value with an invented 3% uplift
BLOCK_CONTRACTS = [
    (
        "2023/24",
        "community",
        "RXP",
        "PODIATRY",
        12900.00,
        "about 90% of what RXP's 191 attended"
        " podiatry contacts in the 2023/24 sample cost at the NCC 2023/24 A09A unit cost (£75.11)",
    ),
    (
        "2024/25",
        "community",
        "RXP",
        "PODIATRY",
        13300.00,
        "the 2023/24 value (£12,900) with an invented 3% uplift",
    ),
]

# ---------------------------------------------------------------------------------------
# Identity: names, postcodes, providers.


def _words(text: str) -> list[str]:
    return text.split()


GIVEN_F_OLD = _words(
    """Margaret Patricia Barbara Jean Dorothy Joan Irene Doreen Sheila Maureen Eileen
Brenda Pauline Christine Elizabeth Mary Anne Susan Linda Carol Janet Valerie Sandra Kathleen
Brenda Gillian Hilda Edna Marjorie Elsie Renée Siân Zoë Bernadette Agnieszka Małgorzata
Mavis Winifred Audrey Sylvia"""
)
GIVEN_F_YOUNG = _words(
    """Olivia Amelia Isla Ava Mia Sophia Grace Lily Freya Emily Ivy Ella Rosie Evie
Florence Poppy Charlotte Sarah Emma Laura Rebecca Claire Nicola Joanne Karen Julie Helen Angela
Tracey Lisa Kelly Gemma Jessica Hannah Chloë Zoë Anaïs Siobhan Aoife Niamh Sinead Fatima Aisha
Priya Mariam Zofia Amira"""
)
GIVEN_M_OLD = _words(
    """John Robert Brian Kenneth Norman Ronald Derek Raymond Alan Keith Trevor Colin
Peter David Michael William James George Thomas Arthur Frederick Albert Harold Dennis Geoffrey
Malcolm Roy Stanley Bernard Jürgen Zoltán Seán Tadeusz Gordon Frank Leslie"""
)
GIVEN_M_YOUNG = _words(
    """Oliver Noah Leo Harry Oscar Jack Charlie Thomas James William Daniel Matthew
David Michael Paul Mark Andrew Stephen Richard Gary Darren Lee Craig Jamie Ryan Liam Connor
Mohammed Ahmed Ali Tomasz Łukasz Piotr José Raúl Ciarán Seán Kai Zain Ibrahim"""
)
FAMILY = _words(
    """Smith Jones Taylor Brown Wilson Johnson Davies Robinson Wright Thompson Evans Walker
White Roberts Green Hall Wood Jackson Clarke Hughes Turner Hill Harrison Atkinson Bell Dixon
Hutchinson Hetherington Wetherell Gallagher Lucas Scott Jordan Rahman Khan Hussain Patel Begum
Kowalski Nowak Wiśniewski Szymański Łukaszewicz O'Brien O'Neill McDonald Smith-Jones
Taylor-Brown Müller Strauß Ødegaard Brontë Đurić Allan Armstrong Bainbridge Brennan Carr Chapman
Coates Cook Crawford Dawson Dobson Donnelly Elliott Ferguson Fletcher Forster Graham Gray Hardy
Harper Henderson Heron Hodgson Holmes Hunter Irving Jameson Johnstone Kelly Kirby Lamb Lowes
Marshall Milburn Moore Morgan Murray Nicholson Parker Pearson Pickering Potts Proctor Reed
Richardson Ridley Robson Rutherford Shaw Simpson Stephenson Stoker Swales Tate Thornton Todd
Wade Watson Weatherill Whitfield Wilkinson Young"""
)
NICKNAMES = {
    "William": "Bill",
    "Robert": "Bob",
    "Margaret": "Peggy",
    "Elizabeth": "Betty",
    "Kathleen": "Kath",
    "Frederick": "Fred",
    "Albert": "Bert",
    "Patricia": "Pat",
    "Dorothy": "Dot",
    "Michael": "Mick",
    "James": "Jim",
    "Thomas": "Tom",
    "Kenneth": "Ken",
    "Susan": "Sue",
    "Christine": "Chris",
    "Ronald": "Ron",
}
# postcode districts (made-up inward codes); acute/community provider and practices by area
TS_DISTRICTS = [f"TS{i}" for i in range(1, 30) if i not in (13,)]
DL_DISTRICTS = [f"DL{i}" for i in (1, 2, 3, 4, 5, 6, 7, 14, 15, 16, 17)]
INWARD_LETTERS = list("ABDEFGHJLNPQRSTUWXYZ")
PRACTICES_SOUTH = [f"A810{i:02d}" for i in range(1, 13)]  # TS1-TS14
PRACTICES_NORTH = [f"A810{i:02d}" for i in range(13, 25)]  # TS15-TS29
PRACTICES_DL = [f"A830{i:02d}" for i in range(1, 10)]
MH_PROVIDER = "RX3"
# local patient id per source: prefix, digits, multiplier of the affine permutation
LOCAL_ID = {
    "acute": ("RTRH", 7, 7_654_321),
    "chc": ("CHC", 7, 3_141_593),
    "community": ("CM", 7, 2_718_281),
    "mental_health": ("MH", 7, 1_618_033),
    "primary_care": ("GP", 8, 48_271_371),
    "social_care": ("SC", 7, 9_876_541),
}

_SPECIAL_FOLD = {
    "ß": "SS",
    "ẞ": "SS",
    "Æ": "AE",
    "æ": "AE",
    "Œ": "OE",
    "œ": "OE",
    "Ø": "O",
    "ø": "O",
    "Ł": "L",
    "ł": "L",
    "Đ": "D",
    "đ": "D",
    "Þ": "TH",
    "þ": "TH",
}


@lru_cache(maxsize=4096)
def ascii_upper(name: str) -> str:
    """How an older social care system writes a name: accents folded, upper case,
    apostrophes dropped and hyphens as spaces (``O'Brien`` -> ``OBRIEN``)."""
    s = "".join(_SPECIAL_FOLD.get(c, c) for c in name)
    s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    return s.upper().replace("'", "").replace("-", " ")


# ---------------------------------------------------------------------------------------
# NHS numbers


def nhs_check_digit(prefix9: np.ndarray) -> np.ndarray:
    """Modulus 11 check digit of 9-digit prefixes (10 means no valid number exists)."""
    digits = (prefix9[:, None] // 10 ** np.arange(8, -1, -1, dtype=np.int64)) % 10
    total = (digits * np.arange(10, 1, -1, dtype=np.int64)).sum(axis=1)
    check = 11 - total % 11
    return np.where(check == 11, 0, check)


def is_valid_nhs_number(value: str) -> bool:
    """The contract's rule (costing-method.md section 1), for tests and checks."""
    s = value.replace(" ", "").replace("-", "")
    if len(s) != 10 or not s.isdigit() or len(set(s)) == 1:
        return False
    check = nhs_check_digit(np.array([int(s[:9])], dtype=np.int64))[0]
    return bool(check != 10 and check == int(s[9]))


@lru_cache(maxsize=4)
def nhs_pools(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(valid numbers in the 999 test range, shuffled by the seed; 9-digit prefixes that
    have no valid check digit). The range holds 909,090 valid numbers (9999999999 is a
    placeholder): people beyond that many get no NHS number."""
    # prefixes 999dddddd in increasing order; weighted sum of the six free digits by
    # broadcasting (weights 7..2), plus 9 x (10 + 9 + 8) for the fixed 999
    digit = np.arange(10, dtype=np.int64)
    total = np.zeros((1,), dtype=np.int64) + 9 * (10 + 9 + 8)
    for w in range(7, 1, -1):
        total = (total[:, None] + digit[None, :] * w).reshape(-1)
    check = 11 - total % 11
    check = np.where(check == 11, 0, check)
    prefixes = np.arange(999_000_000, 1_000_000_000, dtype=np.int64)
    ok = check != 10
    valid = prefixes[ok] * 10 + check[ok]
    valid = valid[valid != 9_999_999_999]  # repeated digits: a placeholder, not a number
    rng = np.random.default_rng([seed, 7_777])
    return rng.permutation(valid), prefixes[~ok]


# ---------------------------------------------------------------------------------------
# People


@dataclass
class People:
    gidx: np.ndarray  # global person number
    age: np.ndarray  # age on 1 April 2024
    group: np.ndarray  # age group index
    dob: np.ndarray  # days
    sex: np.ndarray  # 1 male, 2 female
    z: np.ndarray  # latent health (higher = sicker)
    reg: np.ndarray  # bool [n, registers]
    reg_date: np.ndarray  # days [n, registers]
    exposure: np.ndarray = field(default_factory=lambda: np.zeros(0))  # years in period

    @property
    def n(self) -> int:
        return len(self.gidx)

    def on(self, name: str) -> np.ndarray:
        return self.reg[:, R[name]]

    @property
    def n_ltc(self) -> np.ndarray:
        return self.reg[:, LTC].sum(axis=1)


def make_people(rng: np.random.Generator, first: int, n: int) -> People:
    band = rng.choice(len(AGE_BANDS), size=n, p=AGE_BAND_SHARE)
    lo = np.array([b[0] for b in AGE_BANDS])[band]
    width = np.array([b[1] - b[0] + 1 for b in AGE_BANDS])[band]
    # within 90+: fewer at each older age
    u = rng.random(n)
    offs = np.where(lo >= 90, np.minimum(rng.geometric(0.3, n) - 1, 10), (u * width).astype(int))
    age = lo + offs
    dob = AGE_REF - np.round(age * 365.25).astype(np.int64) - rng.integers(0, 365, n)
    group = np.searchsorted(AGE_GROUP_EDGES, age, side="right")
    p_female = np.where(age >= 85, 0.63, np.where(age >= 65, 0.54, 0.5))
    sex = np.where(rng.random(n) < p_female, 2, 1)
    z = rng.standard_normal(n)
    # registers: probability by age group x latent health (mean-preserving)
    p = REGISTER_P[:, group].T * np.exp(np.outer(z, REGISTER_BETA) - REGISTER_BETA**2 / 2)
    reg = rng.random((n, len(REGISTERS))) < np.minimum(p, 0.9)
    # diagnosis dates: 5% first diagnosed inside the period, the rest before it
    min_age = np.array([REGISTER_MIN_AGE.get(r, 0) for r in REGISTERS])
    earliest = np.maximum(dob[:, None] + (min_age * 365.25).astype(np.int64), day("1995-01-01"))
    earliest = np.maximum(earliest, dob[:, None])
    latest = np.full_like(earliest, P_START - 1)
    incident = (rng.random(reg.shape) < 0.05) | (earliest > latest)
    lo_d = np.where(incident, np.maximum(P_START, dob[:, None]), earliest)
    hi_d = np.where(incident, P_END, latest)
    hi_d = np.maximum(hi_d, lo_d)
    reg_date = lo_d + (rng.random(reg.shape) * (hi_d - lo_d + 1)).astype(np.int64)
    people = People(
        np.arange(first, first + n, dtype=np.int64), age, group, dob, sex, z, reg, reg_date
    )
    people.exposure = (P_END - np.maximum(P_START, dob) + 1).clip(0) / 365.25
    return people


def relative_weight(people: People, name: str) -> np.ndarray:
    """Relative expected count of an activity per person over the period (not normalised)."""
    r = RATES[name]
    w = np.array(r.age)[people.group] * np.exp(r.sigma * people.z - r.sigma**2 / 2)
    w = w * (1 + r.ltc * people.n_ltc)
    if name == "NEL":
        w *= 1 + 0.6 * people.on("FRAILTY_SEVERE") + 0.3 * people.on("DEMENTIA")
    elif name == "RESPIRATORY":
        w *= 1 + 6 * people.on("COPD") + 1.5 * people.on("ASTHMA")
    elif name == "PODIATRY":
        w *= 1 + 2 * people.on("DIABETES")
    elif name == "MH_CONTACT":
        w *= (
            1
            + 12 * people.on("SMI")
            + 1.5 * people.on("DEPRESSION")
            + 4 * people.on("DEMENTIA")
            + 2 * people.on("AUTISM") * (people.age < 18)
        )
    elif name == "GP":
        w *= 1 + 0.3 * people.on("DEPRESSION") + 0.3 * (people.sex == 2) * (people.age >= 16)
    return w * people.exposure


def expected_counts(people: People, name: str) -> np.ndarray:
    """Expected count per person over the period: the chunk's people share rate x years x
    people in proportion to their relative weight, so every chunk has the volumes of
    RATES (facts.md section 2) and the weights only decide who gets them."""
    w = relative_weight(people, name)
    mean = float(w.mean()) if len(w) else 0.0
    if mean <= 0:
        return np.zeros(people.n)
    return RATES[name].rate * YEARS * w / mean


def draw_counts(
    rng: np.random.Generator, people: People, name: str, window: float = 1.0
) -> np.ndarray:
    """Counts per person; `window` scales for dates drawn over a longer window."""
    k = RATES[name].k
    lam = expected_counts(people, name) * window
    # person-level over-dispersion (gamma, mean 1), rescaled so that it moves activity
    # between people without moving the chunk's total away from its expectation
    g = rng.gamma(k, 1 / k, people.n)
    total = float((lam * g).sum())
    if total > 0:
        g *= float(lam.sum()) / total
    return rng.poisson(lam * g)


# ---------------------------------------------------------------------------------------
# A chunk: people, their identifiers and which of them use social care and CHC


@dataclass
class Chunk:
    number: int
    rng: np.random.Generator
    people: People
    seed: int
    ident: pl.DataFrame = field(default_factory=pl.DataFrame)
    sc_people: list[dict] = field(default_factory=list)
    chc_people: list[dict] = field(default_factory=list)
    force_gp: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    area: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    nhs_value: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n(self) -> int:
        return self.people.n


def _choose_weighted(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    nz = int((weights > 0).sum())
    size = min(size, nz)
    if size <= 0:
        return np.zeros(0, dtype=np.int64)
    return rng.choice(len(weights), size=size, replace=False, p=weights / weights.sum())


def _pick(rng: np.random.Generator, items: Sequence, p: Sequence[float] | None = None):
    if p is None:
        return items[int(rng.integers(len(items)))]
    return items[int(rng.choice(len(items), p=np.asarray(p) / np.sum(p)))]


def build_identity(ch: Chunk) -> None:
    """Per-person identifiers of the chunk (canonical forms; rows vary their formatting)."""
    rng, pp, n = ch.rng, ch.people, ch.n
    valid, no_check = nhs_pools(ch.seed)
    nhs = np.where(pp.gidx < len(valid), valid[np.minimum(pp.gidx, len(valid) - 1)], -1)
    # about 0.3% of people carry an invalid number (no valid check digit) in every source
    bad = rng.random(n) < 0.003
    bad_no = no_check[pp.gidx % len(no_check)] * 10 + pp.gidx % 10
    nhs = np.where(bad, bad_no, nhs)
    ch.nhs_value = np.where(bad, -1, nhs)  # the valid number, or -1
    # sex: a handful indeterminate
    sex = np.where(rng.random(n) < 0.0005, 9, pp.sex)
    # names
    born_old = pp.dob < day("1966-01-01")
    lists = {
        (1, True): GIVEN_M_OLD,
        (1, False): GIVEN_M_YOUNG,
        (2, True): GIVEN_F_OLD,
        (2, False): GIVEN_F_YOUNG,
    }
    given = np.empty(n, dtype=object)
    for (s, old), names in lists.items():
        m = (pp.sex == s) & (born_old == old)
        given[m] = np.array(names, dtype=object)[rng.integers(0, len(names), int(m.sum()))]
    family = np.array(FAMILY, dtype=object)[rng.integers(0, len(FAMILY), n)]
    # postcodes: 75% Tees (TS), 25% Darlington (DL)
    in_ts = rng.random(n) < 0.75
    district = np.where(
        in_ts,
        np.array(TS_DISTRICTS, dtype=object)[rng.integers(0, len(TS_DISTRICTS), n)],
        np.array(DL_DISTRICTS, dtype=object)[rng.integers(0, len(DL_DISTRICTS), n)],
    )
    letters = np.array(INWARD_LETTERS, dtype=object)
    inward = (
        rng.integers(0, 10, n).astype(str).astype(object)
        + letters[rng.integers(0, len(letters), n)]
        + letters[rng.integers(0, len(letters), n)]
    )
    postcode = district + " " + inward
    dnum = np.array([int(d[2:]) for d in district])
    # 0: South Tees (TS1-TS14), 1: North Tees & Hartlepool (TS15-TS29), 2: Darlington (DL)
    ch.area = np.where(~in_ts, 2, np.where(dnum <= 14, 0, 1))
    practice = np.empty(n, dtype=object)
    for a, lst in enumerate((PRACTICES_SOUTH, PRACTICES_NORTH, PRACTICES_DL)):
        m = ch.area == a
        practice[m] = np.array(lst, dtype=object)[rng.integers(0, len(lst), int(m.sum()))]
    cols: dict[str, object] = {
        "nhs": pl.Series(nhs).cast(pl.String).str.zfill(10),
        "dob": pl.Series(pp.dob.astype(np.int32)).cast(pl.Date).cast(pl.String),
        "sex": pl.Series(sex).cast(pl.String),
        "postcode": pl.Series(postcode.astype(str)),
        "given": pl.Series(given.astype(str)),
        "family": pl.Series(family.astype(str)),
        "practice": pl.Series(practice.astype(str)),
    }
    ident = pl.DataFrame(cols).with_columns(
        nhs=pl.when(pl.Series(nhs) >= 0).then(pl.col("nhs")).otherwise(None)
    )
    # local ids: an affine permutation of the global person number, unique per source
    for source, (prefix, digits, mult) in LOCAL_ID.items():
        offset = int(np.random.default_rng([ch.seed, len(source)]).integers(0, 10**digits))
        num = (pp.gidx * mult + offset) % 10**digits
        ident = ident.with_columns(
            (pl.lit(prefix) + pl.Series(num).cast(pl.String).str.zfill(digits)).alias(
                f"id_{source}"
            )
        )
    ch.ident = ident.with_columns(
        given_sc=pl.col("given"),
        family_sc=pl.col("family"),
        dob_sc=pl.col("dob"),
        given_alt=pl.Series([ascii_upper(g) for g in given]),
        family_alt=pl.Series([ascii_upper(f) for f in family]),
    )


# ---------------------------------------------------------------------------------------
# Identity columns of rows


@dataclass(frozen=True)
class Style:
    """Row-level variation of identifiers in one source."""

    space: float  # NHS number written 999 634 6501
    hyphen: float  # NHS number written 999-634-6501
    blank: float  # NHS number missing
    pc_nospace: float
    pc_lower: float
    sex_unknown: float
    name_alt: float = 0.0  # given/family written as an older system would (ascii, upper)
    name_upper: float = 0.0


STYLES = {
    "acute": Style(0.03, 0.01, 0.01, 0.10, 0.02, 0.002),
    "chc": Style(0.10, 0.05, 0.005, 0.10, 0.05, 0.0),
    "community": Style(0.02, 0.05, 0.02, 0.15, 0.05, 0.003),
    "mental_health": Style(0.05, 0.02, 0.02, 0.10, 0.08, 0.003),
    "primary_care_events": Style(0.0, 0.0, 0.002, 0.03, 0.0, 0.0),
    "primary_care_registers": Style(0.0, 0.0, 0.001, 0.03, 0.0, 0.0),
    "social_care": Style(0.15, 0.10, 0.0, 0.25, 0.15, 0.005, 0.35, 0.15),
}
ID_SOURCE = {
    "acute": "acute",
    "chc": "chc",
    "community": "community",
    "mental_health": "mental_health",
    "primary_care_events": "primary_care",
    "primary_care_registers": "primary_care",
    "social_care": "social_care",
}


def identity_rows(
    ch: Chunk, source: str, pos: np.ndarray, nhs_blank: np.ndarray | None = None
) -> pl.DataFrame:
    st = STYLES[source]
    rng = ch.rng
    m = len(pos)
    g = ch.ident.select(pl.all().gather(pos))
    u = rng.random((m, 5))
    blank = u[:, 0] < st.blank
    if nhs_blank is not None:
        blank = blank | nhs_blank
    nhs = pl.col("nhs")
    spaced = pl.concat_str(
        [nhs.str.slice(0, 3), pl.lit(" "), nhs.str.slice(3, 3), pl.lit(" "), nhs.str.slice(6, 4)]
    )
    hyphened = pl.concat_str(
        [nhs.str.slice(0, 3), pl.lit("-"), nhs.str.slice(3, 3), pl.lit("-"), nhs.str.slice(6, 4)]
    )
    g = g.with_columns(
        _b=pl.Series(blank), _f=pl.Series(u[:, 1]), _p=pl.Series(u[:, 2]), _s=pl.Series(u[:, 3])
    )
    pc = pl.col("postcode")
    exprs = [
        pl.when(pl.col("_b"))
        .then(None)
        .when(pl.col("_f") < st.space)
        .then(spaced)
        .when(pl.col("_f") < st.space + st.hyphen)
        .then(hyphened)
        .otherwise(nhs)
        .alias("nhs_number"),
        pl.col(f"id_{ID_SOURCE[source]}").alias("local_patient_id"),
        (pl.col("dob_sc") if source == "social_care" else pl.col("dob")).alias("date_of_birth"),
        pl.when(pl.col("_s") < st.sex_unknown / 2)
        .then(None)
        .when(pl.col("_s") < st.sex_unknown)
        .then(pl.lit("0"))
        .otherwise(pl.col("sex"))
        .alias("sex"),
        pl.when(pl.col("_p") < st.pc_lower)
        .then(pc.str.to_lowercase())
        .when(pl.col("_p") < st.pc_lower + st.pc_nospace)
        .then(pc.str.replace(" ", "", literal=True))
        .when(pl.col("_p") < 2 * st.pc_lower + st.pc_nospace)
        .then(pc.str.to_lowercase().str.replace(" ", "", literal=True))
        .otherwise(pc)
        .alias("postcode"),
    ]
    if source in ("primary_care_events", "primary_care_registers"):
        exprs += [pl.col("given").alias("given_name"), pl.col("family").alias("family_name")]
    elif source == "social_care":
        v = u[:, 4]
        g = g.with_columns(_v=pl.Series(v))
        for col, alt, base in (
            ("given_name", "given_alt", "given_sc"),
            ("family_name", "family_alt", "family_sc"),
        ):
            exprs.append(
                pl.when(pl.col("_v") < st.name_alt)
                .then(pl.col(alt))
                .when(pl.col("_v") < st.name_alt + st.name_upper)
                .then(pl.col(base).str.to_uppercase())
                .otherwise(pl.col(base))
                .alias(col)
            )
    return g.select(exprs)


# ---------------------------------------------------------------------------------------
# Helpers for dates and money


def uniform_dates(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.maximum(np.asarray(hi, dtype=np.int64), lo)
    return lo + (rng.random(len(lo)) * (hi - lo + 1)).astype(np.int64)


def date_str(days: np.ndarray) -> pl.Series:
    """ISO date strings of day numbers; NO_DATE becomes a blank (null)."""
    d = pl.col("d")
    return (
        pl.DataFrame({"d": np.asarray(days, dtype=np.int64)})
        .select(pl.when(d == NO_DATE).then(None).otherwise(d.cast(pl.Int32).cast(pl.Date)))
        .to_series()
        .cast(pl.String)
    )


def iso(d: int) -> str:
    return str(np.datetime64(int(d), "D"))


def money(x: float) -> str:
    return f"{x:.2f}"


def fy_of(d: int) -> int:
    """Start year of the financial year holding day d."""
    y = int(str(np.datetime64(int(d), "D"))[:4])
    return y if d >= day(f"{y}-04-01") else y - 1


def repeat_positions(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def categorical(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One draw per row from row-specific weights [rows, categories]."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    return np.minimum((cum <= u[:, None]).sum(axis=1), weights.shape[1] - 1)


# ---------------------------------------------------------------------------------------
# Sources. Each returns a frame of identity + activity columns (strings, nulls for blanks)
# plus a `_sort` date column; ids are assigned later.


PROVIDERS = ["RTR", "RVW", "RXP"]  # by area: South Tees, North Tees, Darlington


def pick(options: Sequence[str | None], idx: np.ndarray) -> pl.Series:
    """Strings by index into a short list of options (None gives a blank)."""
    return pl.Series(list(options), dtype=pl.String).gather(np.asarray(idx, dtype=np.int64))


def _ensure_spells(
    rng: np.random.Generator, pod: str, start: np.ndarray, end: np.ndarray, dob: np.ndarray
) -> None:
    """Make sure a chunk holds the inpatient cases the sample promises, whatever the draw:
    open spells, spells admitted in March and discharged in April 2024, and spells admitted
    before the period and discharged inside it (changes start/end in place)."""
    adults = np.nonzero(dob < P_START - 18 * 365)[0]
    wanted = {"NEL": (2, 2, 2), "EL": (1, 1, 1)}[pod]
    checks = (
        end > P_END,  # still in hospital on the extract date
        (start < FY_SPLIT) & (end >= FY_SPLIT) & (end <= P_END),  # crosses 1 April 2024
        (start < P_START) & (end >= P_START) & (end <= P_END),  # began before the period
    )
    for case, (have, want) in enumerate(zip(checks, wanted, strict=True)):
        missing = want - int(have.sum())
        free = np.setdiff1d(adults, np.nonzero(have)[0])
        if missing <= 0 or len(free) < missing:
            continue
        for i in rng.choice(free, size=missing, replace=False):
            if case == 0:
                start[i] = P_END - int(rng.integers(0, 4))
                end[i] = P_END + 1 + int(rng.integers(0, 20))
            else:
                boundary = FY_SPLIT if case == 1 else P_START
                start[i] = boundary - int(rng.integers(1, 15))
                end[i] = boundary + int(rng.integers(0, 15))


def gen_acute(ch: Chunk) -> pl.DataFrame:
    rng, pp = ch.rng, ch.people
    parts = []
    for pod in ("NEL", "EL", "DC", "OPFA", "OPFU", "AE"):
        # inpatient spells may start up to 30 days before the period (those discharged
        # before it are not in the extract)
        early = 30 if pod in ("NEL", "EL") else 0
        counts = draw_counts(rng, pp, pod, (PERIOD_DAYS + early) / PERIOD_DAYS)
        pos = repeat_positions(counts)
        m = len(pos)
        hrgs = [h for h in HRGS if h.pod == pod]
        if pod in ("NEL", "EL", "DC"):
            w = np.array([h.age for h in hrgs])[:, pp.group[pos]].T.astype(float)
            for j, h in enumerate(hrgs):
                for reg in h.boost:
                    w[:, j] *= np.where(pp.on(reg)[pos], 5.0, 1.0)
                if h.code == "LB25F":
                    w[:, j] *= pp.sex[pos] == 1
            w[w.sum(axis=1) == 0] = 1.0
            which = categorical(rng, w)
        elif pod == "AE":
            old = (pp.age[pos] >= 75).astype(int)
            w = np.array([h.age for h in hrgs])[:, old].T
            which = categorical(rng, w)
        else:
            p = np.array([h.age[0] for h in hrgs], dtype=float)
            which = rng.choice(len(hrgs), size=m, p=p / p.sum())
        los_mean = np.array([h.mean_los for h in hrgs])[which]
        lo = np.maximum(P_START - early, pp.dob[pos])
        start = uniform_dates(rng, lo, np.full(m, P_END))
        if pod in ("NEL", "EL"):
            los = rng.geometric(1 / (los_mean + 1)) - 1
            short_only = np.array([h.code == "DZ65K" for h in hrgs])[which]
            los = np.where(short_only, np.minimum(los, 1), los)
            end = start + los
            if ch.n >= 1000:
                _ensure_spells(rng, pod, start, end, pp.dob[pos])
            keep = end >= P_START
            end = np.where(end > P_END, NO_DATE, end)  # not discharged yet: open spell
        else:
            end = start.copy()
            keep = np.ones(m, dtype=bool)
        # diagnosis: one of the HRG's ICD-10 codes; options list = all codes + R69 + blank
        dx_codes = sorted({c for h in hrgs for c in h.icd10} | {"R69"})
        dx_opts = [*dx_codes, None]
        width = max(1, max(len(h.icd10) for h in hrgs))
        table = np.array(
            [
                [dx_codes.index(c) for c in h.icd10]
                + [dx_codes.index(h.icd10[0]) if h.icd10 else len(dx_codes)]
                * (width - len(h.icd10))
                for h in hrgs
            ]
        )
        n_opt = np.array([max(1, len(h.icd10)) for h in hrgs])[which]
        dx = table[which, (rng.random(m) * n_opt).astype(int)]
        if pod == "AE":
            dx = np.where(rng.random(m) < 0.5, dx_codes.index("R69"), dx)
        blank_dx = rng.random(m) < (0.01 if pod in ("NEL", "EL", "DC") else 0.97)
        dx = np.where(blank_dx, len(dx_codes), dx)
        # a few codes the tariff does not hold (priced by the POD default)
        codes = [h.code for h in hrgs] + [UNKNOWN_HRG.get(pod, "UZ01Z")]
        unknown = rng.random(m) < (0.003 if pod in ("NEL", "DC", "AE", "EL") else 0.0)
        if pod in UNKNOWN_HRG and ch.n >= 1000 and m and not unknown.any():
            unknown[int(rng.integers(m))] = True
        which = np.where(unknown, len(hrgs), which)
        area = ch.area[pos]
        provider = np.where(rng.random(m) < 0.08, rng.integers(0, 3, m), area)
        df = identity_rows(ch, "acute", pos).with_columns(
            provider_code=pick(PROVIDERS, provider),
            pod=pl.lit(pod),
            start_date=date_str(start),
            end_date=date_str(end),
            hrg_code=pick(codes, which),
            primary_diagnosis=pick(dx_opts, dx),
            _sort=pl.Series(start),
            _pos=pl.Series(pos),
        )
        parts.append(df.filter(pl.Series(keep)))
    return pl.concat(parts)


COMMUNITY_STYLE = {  # mode shares (F2F, TEL, VIDEO), durations, share not attended
    "DISTRICT_NURSING": ([0.92, 0.08, 0.0], [15, 20, 30, 45], 0.02),
    "PHYSIOTHERAPY": ([0.80, 0.12, 0.08], [30, 45, 60], 0.08),
    "OCCUPATIONAL_THERAPY": ([0.85, 0.15, 0.0], [30, 45, 60, 90], 0.06),
    "SPEECH_LANGUAGE": ([0.80, 0.10, 0.10], [30, 45, 60], 0.08),
    "PODIATRY": ([0.98, 0.02, 0.0], [20, 30], 0.07),
    "COMMUNITY_MATRON": ([0.75, 0.25, 0.0], [20, 30, 45, 60], 0.03),
    "RESPIRATORY": ([0.60, 0.35, 0.05], [20, 30, 45], 0.06),
    "CONTINENCE": ([0.90, 0.10, 0.0], [30, 45], 0.05),
}


def gen_community(ch: Chunk) -> pl.DataFrame:
    rng, pp = ch.rng, ch.people
    parts = []
    for service in COMMUNITY_SERVICES:
        counts = draw_counts(rng, pp, service)
        pos = repeat_positions(counts)
        m = len(pos)
        # contacts cluster in an episode of care per person
        ep_start = rng.integers(P_START - 60, P_END + 1, pp.n)
        ep_len = np.exp(rng.normal(4.6, 0.9, pp.n)).astype(np.int64) + 7
        d = ep_start[pos] + (rng.random(m) * ep_len[pos]).astype(np.int64)
        lo = np.maximum(P_START, pp.dob[pos])
        inside = (d >= lo) & (d <= P_END)
        d = np.where(inside, d, uniform_dates(rng, lo, np.full(m, P_END)))
        p_mode, durations, dna = COMMUNITY_STYLE[service]
        mode = rng.choice(3, size=m, p=np.array(p_mode) / sum(p_mode))
        dur = np.array(durations)[rng.integers(0, len(durations), m)]
        dur = np.where(mode == 0, dur, np.minimum(dur, 20))
        attended = (rng.random(m) < dna).astype(np.int64)
        parts.append(
            identity_rows(ch, "community", pos).with_columns(
                provider_code=pick(PROVIDERS, ch.area[pos]),
                service=pl.lit(service),
                contact_date=date_str(d),
                contact_mode=pick(["F2F", "TEL", "VIDEO"], mode),
                duration_minutes=pl.Series(dur).cast(pl.String),
                attended=pick(["Y", "N"], attended),
                _sort=pl.Series(d),
                _pos=pl.Series(pos),
            )
        )
    return pl.concat(parts)


def gen_mental_health(ch: Chunk) -> pl.DataFrame:
    rng, pp = ch.rng, ch.people
    n = pp.n
    smi, dem = pp.on("SMI"), pp.on("DEMENTIA")
    # each person's main team
    team = np.where(
        pp.age < 18,
        "CAMHS",
        np.where(
            dem | ((pp.age >= 65) & (rng.random(n) < 0.35)),
            "MEMORY",
            np.where(smi & (pp.age < 36) & (rng.random(n) < 0.6), "EARLY_INTERVENTION", "CMHT"),
        ),
    ).astype(object)
    on_cpa = (smi & (rng.random(n) < 0.45)) | (rng.random(n) < 0.002)
    # contacts
    counts = draw_counts(rng, pp, "MH_CONTACT")
    pos = repeat_positions(counts)
    m = len(pos)
    start = uniform_dates(rng, np.maximum(P_START, pp.dob[pos]), np.full(m, P_END))
    service = np.where((pp.age[pos] >= 18) & (rng.random(m) < 0.12), "CRISIS", team[pos])
    end = np.where(rng.random(m) < 0.5, NO_DATE, start)
    contacts = identity_rows(ch, "mental_health", pos).with_columns(
        provider_code=pl.lit(MH_PROVIDER),
        record_type=pl.lit("CONTACT"),
        service=pl.Series(service.astype(str)),
        start_date=date_str(start),
        end_date=date_str(end),
        cpa=pick(["N", "Y"], on_cpa[pos].astype(np.int64)),
        _sort=pl.Series(start),
        _pos=pl.Series(pos),
    )
    # inpatient stays (adults only)
    w = _mh_stay_weight(pp)
    # stays are drawn over a window starting 270 days before the period
    window = (PERIOD_DAYS + 270) / 365.25
    mean_w = max(float(w.mean()), 1e-9)
    lam = MH_STAY_RATE * window * w / mean_w
    spos = repeat_positions(rng.poisson(lam))
    s = len(spos)
    older = pp.age[spos] >= 65
    u = rng.random(s)
    ward = np.where(
        older,
        np.where(u < 0.9, "OLDER_ADULT", "ADULT_ACUTE"),
        np.where(u < 0.7, "ADULT_ACUTE", np.where(u < 0.85, "PICU", "REHAB")),
    ).astype(object)
    mean_los = np.select(
        [ward == "ADULT_ACUTE", ward == "OLDER_ADULT", ward == "PICU"], [35.0, 60.0, 18.0], 150.0
    )
    los = np.round(rng.lognormal(np.log(mean_los) - 0.28, 0.75)).astype(np.int64)
    los = np.where(rng.random(s) < 0.04, 0, los)  # admitted and discharged the same day
    st_lo = np.maximum(P_START - 270, pp.dob[spos] + 18 * 365)
    sstart = uniform_dates(rng, st_lo, np.full(s, P_END))
    send = sstart + los
    if ch.n >= 1000 and s >= 3:
        # make sure the chunk has a stay still open, a 0-night stay and one admitted before
        # the period, whatever the draw
        i, j, k = rng.choice(s, size=3, replace=False)
        sstart[i], send[i] = P_END - int(rng.integers(5, 60)), P_END + 1
        send[j] = sstart[j] = max(sstart[j], P_START)
        if st_lo[k] < P_START - 30:
            sstart[k] = max(P_START - int(rng.integers(30, 200)), st_lo[k])
            send[k] = P_START + int(rng.integers(5, 60))
    keep = send >= P_START
    send = np.where(send > P_END, NO_DATE, send)  # still in hospital
    stays = identity_rows(ch, "mental_health", spos).with_columns(
        provider_code=pl.lit(MH_PROVIDER),
        record_type=pl.lit("INPATIENT"),
        service=pl.Series(ward.astype(str)),
        start_date=date_str(sstart),
        end_date=date_str(send),
        cpa=pick(["N", "Y"], on_cpa[spos].astype(np.int64)),
        _sort=pl.Series(sstart),
        _pos=pl.Series(spos),
    )
    return pl.concat([contacts, stays.filter(pl.Series(keep))])


def _mh_stay_weight(pp: People) -> np.ndarray:
    return (
        (pp.age >= 18)
        * np.array([0, 0, 1.2, 1.0, 0.8, 1.0, 1.0])[pp.group]
        * (1 + 20 * pp.on("SMI") + 1.0 * pp.on("DEPRESSION") + 4 * pp.on("DEMENTIA"))
        * np.exp(0.5 * pp.z)
    )


def gen_primary_care_events(ch: Chunk) -> pl.DataFrame:
    rng, pp = ch.rng, ch.people
    counts = draw_counts(rng, pp, "GP")
    counts = np.maximum(counts, ch.force_gp.astype(int))
    pos = repeat_positions(counts)
    m = len(pos)
    d = uniform_dates(rng, np.maximum(P_START, pp.dob[pos]), np.full(m, P_END))
    staff = rng.choice(5, size=m, p=[0.45, 0.25, 0.17, 0.10, 0.03])
    age = pp.age[pos]
    u = rng.random(m)
    home = np.where(age >= 85, 0.10, np.where(age >= 75, 0.03, 0.002))
    home = np.where(staff <= 1, home, 0.0)  # GP and nurse visit at home
    mode = np.select([u < home, u < home + 0.025, u < home + 0.025 + 0.34], [3, 2, 1], 0)
    return identity_rows(ch, "primary_care_events", pos).with_columns(
        practice_code=ch.ident["practice"].gather(pos),
        event_date=date_str(d),
        staff_type=pick(["GP", "NURSE", "HCA", "PHARMACIST", "OTHER"], staff),
        mode=pick(["SURGERY", "TELEPHONE", "VIDEO", "HOME_VISIT"], mode),
        _sort=pl.Series(d),
        _pos=pl.Series(pos),
    )


def gen_primary_care_registers(ch: Chunk) -> pl.DataFrame:
    pp = ch.people
    pos, ri = np.nonzero(pp.reg)
    d = pp.reg_date[pos, ri]
    return identity_rows(ch, "primary_care_registers", pos).with_columns(
        register=pick(REGISTERS, ri),
        diagnosis_date=date_str(d),
        _sort=pl.Series(d),
        _pos=pl.Series(pos),
    )


# --- CHC and social care: a few hundred people per 10,000, built person by person -------


def _split_at_april(
    start: int, end: int | None, years: Sequence[int]
) -> list[tuple[int, int | None]]:
    """Split [start, end] at 1 April of the given years where the period spans it."""
    out = []
    s = start
    for y in years:
        b = day(f"{y}-04-01")
        if s < b and (end is None or end >= b):
            out.append((s, b - 1))
            s = b
    out.append((s, end))
    return out


FNC_RATE = {2022: 209.19, 2023: 219.71, 2024: 235.88}  # DHSC standard weekly rate


def plan_chc(ch: Chunk) -> None:
    rng, pp = ch.rng, ch.people
    n = pp.n
    frail = pp.on("FRAILTY_SEVERE") | pp.on("DEMENTIA")
    age_w = np.array([0, 0.02, 0.1, 0.4, 1.0, 3.0, 8.0])[pp.group]
    w = age_w * np.exp(0.8 * pp.z) * (1 + 0.3 * pp.n_ltc + 2 * frail + 1.5 * pp.on("STROKE"))
    history = (P_END - day("2021-04-01") + 1) / 365.25
    # CHC episodes: arrival rate = prevalence / mean duration (0.9 year)
    n_chc = rng.poisson(CHC_PREVALENCE / 10_000 * n / 0.9 * history)
    chosen = _choose_weighted(rng, w, n_chc)
    plans = []
    for i in chosen:
        fast = rng.random() < 0.3
        start = int(rng.integers(day("2021-04-01"), P_END - 5))
        dur = int(rng.exponential(60 if fast else 420)) + 14
        end = start + dur
        if end < P_START and rng.random() < 0.85:
            continue  # most episodes closed before the period are not extracted
        plans.append({"pos": int(i), "kind": "fast" if fast else "chc", "start": start, "end": end})
    # FNC: self-funders in nursing homes (not also CHC)
    w2 = w.copy()
    w2[chosen] = 0
    n_fnc = rng.poisson(FNC_PREVALENCE / 10_000 * n / 1.5 * (history - 1))
    for i in _choose_weighted(rng, w2 * (pp.age >= 65), n_fnc):
        start = int(rng.integers(day("2022-04-01"), P_END - 5))
        end = start + int(rng.exponential(550)) + 14
        if end < P_START:
            continue
        plans.append({"pos": int(i), "kind": "fnc", "start": start, "end": end})
    # children's continuing care: a couple per chunk so the sample's children_complex cohort
    # has members (about 4 per 10,000 people: more than national, on purpose)
    kids = np.nonzero((pp.age >= 1) & (pp.age < 18))[0]
    n_kids = min(len(kids), max(1, round(n / 2500))) if n >= 1000 else 0
    if n_kids:
        kw = 1 + 10 * (pp.on("LEARNING_DISABILITY") | pp.on("AUTISM"))[kids] + np.exp(pp.z[kids])
        for i in kids[_choose_weighted(rng, kw.astype(float), n_kids)]:
            start = int(rng.integers(day("2020-04-01"), P_END - 60))
            plans.append({"pos": int(i), "kind": "child", "start": start, "end": P_END + 400})
    ch.chc_people = plans


def gen_chc(ch: Chunk) -> pl.DataFrame:
    rng = ch.rng
    rows = []  # (pos, setting, stream, start, end|None, weekly)
    for plan in ch.chc_people:
        i, kind, start, end = plan["pos"], plan["kind"], plan["start"], plan["end"]
        end_or_none = None if end > P_END else end
        if kind == "fnc":
            for s, e in _split_at_april(start, end_or_none, (2022, 2023, 2024)):
                rows.append((i, "NURSING_HOME", "FNC", s, e, FNC_RATE[fy_of(s)]))
            continue
        if kind == "child":
            weekly = float(rng.lognormal(np.log(2600), 0.35))
            for s, e in _split_at_april(start, end_or_none, (2024,)):
                rows.append((i, "HOME", "CHC", s, e, weekly))
                weekly *= 1.04
            continue
        if kind == "fast":
            setting = _pick(rng, ["HOME", "CARE_HOME", "NURSING_HOME"], [0.6, 0.15, 0.25])
            periods = [(setting, start, end_or_none)]
        else:
            first = _pick(rng, ["HOME", "CARE_HOME", "NURSING_HOME"], [0.3, 0.25, 0.45])
            if first == "HOME" and (end - start) > 120 and rng.random() < 0.4:
                switch = start + int((end - start) * rng.uniform(0.2, 0.6))
                periods = [(first, start, switch - 1), ("NURSING_HOME", switch, end_or_none)]
            else:
                periods = [(first, start, end_or_none)]
        stream = "JOINT" if rng.random() < 0.15 else "CHC"
        for setting, s0, e0 in periods:
            if s0 > P_END:
                continue  # a move planned after the extract date is not in it
            if e0 is not None and e0 > P_END:
                e0 = None
            median = {"HOME": 1100, "CARE_HOME": 1050, "NURSING_HOME": 1250}[setting]
            weekly = float(rng.lognormal(np.log(median), 0.45 if setting == "HOME" else 0.2))
            if stream == "JOINT":
                weekly *= 0.5
            split = (2024,) if rng.random() < 0.5 else ()
            for s, e in _split_at_april(s0, e0, split):
                rows.append((i, setting, stream, s, e, weekly))
                weekly *= 1.04
    if not rows:
        return _empty("chc")
    pos = np.array([r[0] for r in rows])
    start = np.array([r[3] for r in rows])
    end = np.array([NO_DATE if r[4] is None else r[4] for r in rows])
    return identity_rows(ch, "chc", pos).with_columns(
        care_setting=pl.Series([r[1] for r in rows]),
        funding_stream=pl.Series([r[2] for r in rows]),
        start_date=date_str(start),
        end_date=date_str(end),
        weekly_cost=pl.Series([money(r[5]) for r in rows]),
        _sort=pl.Series(start),
        _pos=pl.Series(pos),
    )


def plan_social_care(ch: Chunk) -> None:
    """Who receives social care, in which pathway and how their NHS number is recorded."""
    rng, pp = ch.rng, ch.people
    n = pp.n
    history = 6.0  # years of arrivals simulated before the period
    window = history + YEARS
    frail = pp.on("FRAILTY_SEVERE") | pp.on("DEMENTIA")
    age_w = np.array([0, 0, 0, 0, 1.0, 3.0, 8.0])[pp.group]
    w_older = age_w * np.exp(0.8 * pp.z) * (1 + 0.4 * pp.n_ltc + 2 * frail)
    w_young = (pp.age >= 18) * (pp.age < 65) * np.exp(0.8 * pp.z) * (1 + 0.3 * pp.n_ltc)
    ld = pp.on("LEARNING_DISABILITY") & (pp.age >= 18)
    w_young = w_young * ~ld
    w_mh = (pp.age >= 18) * pp.on("SMI") * ~ld * 1.0
    plans: list[dict] = []
    taken = np.zeros(n, dtype=bool)

    def add(weights: np.ndarray, count: int, pathway: str, mean_years: float) -> None:
        weights = weights * ~taken
        for i in _choose_weighted(rng, weights.astype(float), count):
            start = int(rng.integers(P_END - int(history * 365.25), P_END - 3))
            end = start + int(rng.exponential(mean_years * 365.25)) + 28
            if end < P_START and rng.random() < 0.9:
                continue  # closed long before the period: mostly not in the extract
            taken[i] = True
            plans.append({"pos": int(i), "pathway": pathway, "start": start, "end": end})

    add(w_older, rng.poisson(SC_OLDER_PREVALENCE / 10_000 * n / 2.2 * window), "older", 2.2)
    add(w_young, rng.poisson(SC_YOUNGER_PREVALENCE / 10_000 * n / 4.0 * window), "younger", 4.0)
    add(w_mh, rng.poisson(SC_MH_PREVALENCE / 10_000 * n / 3.0 * window), "mh", 3.0)
    for i in np.nonzero(ld & (rng.random(n) < SC_LD_SHARE) & ~taken)[0]:
        start = int(rng.integers(day("2008-04-01"), P_END - 3))
        end = start + int(rng.exponential(20 * 365.25)) + 28
        if end < P_START:
            continue
        taken[i] = True
        plans.append({"pos": int(i), "pathway": "ld", "start": start, "end": end})
    # reablement after a hospital stay (may also be on long-term support)
    n_re = rng.poisson(REABLEMENT_PER_YEAR / 10_000 * n * YEARS)
    for i in _choose_weighted(rng, w_older.astype(float), n_re):
        start = int(rng.integers(P_START - 20, P_END + 1))
        plans.append(
            {
                "pos": int(i),
                "pathway": "reablement",
                "start": start,
                "end": start + int(rng.integers(14, 43)),
            }
        )
    # how each person's NHS number is recorded (a person may have several plans: the first
    # one's category counts)
    cat: dict[int, str] = {}
    for plan in plans:
        if plan["pos"] not in cat:
            cat[plan["pos"]] = _pick(rng, ["A", "B", "C", "D"], [0.50, 0.20, 0.25, 0.05])
        plan["nhs"] = cat[plan["pos"]]
    ch.sc_people = plans


SC_PRICE_2324 = {  # (unit_type, median unit cost 2023/24, spread)
    "HOME_CARE": ("HOUR", 24.50, 0.08),
    "SUPPORTED_LIVING": ("HOUR", 21.50, 0.06),
    "REABLEMENT": ("HOUR", 30.00, 0.04),
    "RESIDENTIAL": ("WEEK", 897.0, 0.15),
    "NURSING": ("WEEK", 1003.0, 0.15),
}


def _sc_price(rng: np.random.Generator, service: str, fy: int) -> tuple[str, float, float]:
    """(unit_type, units per week, unit cost) for a service period starting in year fy."""
    uplift = 1.06 ** (fy - 2023)
    if service == "DAY_CARE":
        if rng.random() < 0.6:
            return "DAY", float(rng.integers(1, 4)), 87.0 * uplift
        return "SESSION", float(rng.integers(1, 6)), round(float(rng.uniform(38, 52)), 2) * uplift
    if service == "DIRECT_PAYMENT":
        return "GBP", round(float(rng.lognormal(np.log(320), 0.5)), 2), 1.0
    unit, median, spread = SC_PRICE_2324[service]
    cost = float(rng.lognormal(np.log(median), spread)) * uplift
    if unit == "WEEK":
        return unit, 1.0, cost
    hours = {
        "HOME_CARE": [3.5, 5, 7, 7, 10.5, 14, 14, 17.5, 21, 28],
        "SUPPORTED_LIVING": [20, 28, 35, 42, 56, 70],
        "REABLEMENT": [7, 10.5, 14],
    }[service]
    return unit, float(_pick(rng, hours)), cost


def gen_social_care(ch: Chunk) -> pl.DataFrame:
    rng = ch.rng
    rows = []  # pos, service, start, end|None, units, unit_type, unit_cost, contribution|None
    for plan in ch.sc_people:
        i, pathway, start, end = plan["pos"], plan["pathway"], plan["start"], plan["end"]
        segments: list[tuple[str, int, int]] = []
        if pathway == "reablement":
            segments.append(("REABLEMENT", start, end))
        elif pathway == "older":
            if end - start > 180 and rng.random() < 0.35:
                switch = start + int((end - start) * rng.uniform(0.2, 0.7))
                home = _pick(rng, ["RESIDENTIAL", "NURSING"], [0.6, 0.4])
                segments += [("HOME_CARE", start, switch - 1), (home, switch, end)]
            else:
                segments.append(("HOME_CARE", start, end))
            if rng.random() < 0.15:
                segments.append(("DAY_CARE", start + int(rng.integers(0, 60)), end))
        elif pathway == "younger":
            segments.append((_pick(rng, ["HOME_CARE", "DIRECT_PAYMENT"]), start, end))
        elif pathway == "mh":
            segments.append((_pick(rng, ["SUPPORTED_LIVING", "HOME_CARE"], [0.4, 0.6]), start, end))
        else:  # learning disability
            options = ["SUPPORTED_LIVING", "RESIDENTIAL", "DIRECT_PAYMENT"]
            main = _pick(rng, options, [0.6, 0.25, 0.15])
            segments.append((main, start, end))
            if rng.random() < 0.5:
                segments.append(("DAY_CARE", start + int(rng.integers(0, 365)), end))
        for service, s0, e0 in segments:
            if e0 < day("2022-04-01") or s0 > P_END or e0 < s0:
                continue  # old history is not extracted, nor anything after the extract date
            if service == "REABLEMENT":
                # a planned end after the extract date is kept half the time
                e1 = e0 if e0 <= P_END or rng.random() < 0.5 else None
            else:
                e1 = None if e0 > P_END else e0
            years = (2023, 2024) if rng.random() < 0.7 else ()
            for s, e in _split_at_april(s0, e1, years):
                if e is not None and e < day("2022-04-01"):
                    continue
                unit, units, cost = _sc_price(rng, service, max(fy_of(s), 2022))
                contrib: float | None = None
                u = rng.random()
                if service in ("RESIDENTIAL", "NURSING") and u < 0.8:
                    contrib = float(rng.uniform(150, 320))
                elif service == "HOME_CARE" and u < 0.4:
                    contrib = float(rng.uniform(10, 90))
                elif service == "DIRECT_PAYMENT" and u < 0.2:
                    contrib = float(rng.uniform(20, 60))
                elif u > 0.9:
                    contrib = 0.0
                rows.append((i, service, s, e, units, unit, cost, contrib, plan["nhs"]))
    if not rows:
        return _empty("social_care")
    pos = np.array([r[0] for r in rows])
    cat = np.array([r[8] for r in rows])
    # NHS number recording: A always, B some rows, C and D never (D: names or date of birth
    # differ from the GP record too, so nothing links them)
    blank = np.isin(cat, ["C", "D"])
    b_rows = np.nonzero(cat == "B")[0]
    by_person: dict[int, list[int]] = {}
    for r in b_rows:
        by_person.setdefault(int(pos[r]), []).append(int(r))
    for rs in by_person.values():
        if len(rs) < 2:
            continue  # one row only: recorded with the number
        flags = rng.random(len(rs)) < 0.5
        flags[0], flags[-1] = False, True  # at least one with and one without
        blank[rs] = flags
    start = np.array([r[2] for r in rows])
    end = np.array([NO_DATE if r[3] is None else r[3] for r in rows])
    return identity_rows(ch, "social_care", pos, nhs_blank=blank).with_columns(
        service_type=pl.Series([r[1] for r in rows]),
        start_date=date_str(start),
        end_date=date_str(end),
        planned_units_per_week=pl.Series([money(r[4]) for r in rows]),
        unit_type=pl.Series([r[5] for r in rows]),
        unit_cost=pl.Series([money(r[6]) for r in rows]),
        client_contribution_weekly=pl.Series(
            [None if r[7] is None else money(r[7]) for r in rows], dtype=pl.String
        ),
        _sort=pl.Series(start),
        _pos=pl.Series(pos),
        _cat=pl.Series(cat),
    )


def _empty(source: str) -> pl.DataFrame:
    cols = [c for c in COLUMNS[source] if c != ROW_ID.get(source, ("",))[0]]
    schema = {c: pl.String for c in cols} | {"_sort": pl.Int64, "_pos": pl.Int64}
    return pl.DataFrame(schema=schema)


def apply_name_deviations(ch: Chunk) -> None:
    """Social care people of category D: their social care record's given name (a
    'known as' name) or date of birth (day and month swapped) differs from the GP record."""
    rng = ch.rng
    given_sc = ch.ident["given"].to_list()
    dob_sc = ch.ident["dob"].to_list()
    for plan in ch.sc_people:
        i = plan["pos"]
        if plan["nhs"] != "D" or given_sc[i] != ch.ident["given"][i]:
            continue
        g, d = given_sc[i], dob_sc[i]
        if g in NICKNAMES and rng.random() < 0.6:
            given_sc[i] = NICKNAMES[g]
        elif int(d[8:10]) <= 12 and d[8:10] != d[5:7]:
            dob_sc[i] = f"{d[:4]}-{d[8:10]}-{d[5:7]}"
        else:
            pool = GIVEN_F_OLD if ch.people.sex[i] == 2 else GIVEN_M_OLD
            given_sc[i] = _pick(rng, [x for x in pool if x != g])
    ch.ident = ch.ident.with_columns(
        given_sc=pl.Series(given_sc, dtype=pl.String),
        dob_sc=pl.Series(dob_sc, dtype=pl.String),
        given_alt=pl.Series([ascii_upper(g) for g in given_sc], dtype=pl.String),
    )


def make_twins(ch: Chunk) -> list[int]:
    """One name + date of birth + sex token shared by two people with different NHS
    numbers: the base person is a social care client recorded without NHS number
    (category C), the twin anyone else of the same sex born the same year."""
    rng, pp = ch.rng, ch.people
    made = []
    bases = [p["pos"] for p in ch.sc_people if p["nhs"] == "C" and ch.nhs_value[p["pos"]] > 0]
    sc_all = {p["pos"] for p in ch.sc_people}
    want = max(1, round(ch.n / 5000))
    years = pp.dob.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970
    for b in bases[: 4 * want]:
        if len(made) >= 2 * want:
            break
        year = years[b]
        cand = np.nonzero((years == year) & (pp.sex == pp.sex[b]) & (ch.nhs_value > 0))[0]
        cand = [c for c in cand if c != b and c not in sc_all and c not in made]
        if not cand:
            continue
        t = int(_pick(rng, cand))
        for col in (
            "given",
            "family",
            "dob",
            "given_sc",
            "family_sc",
            "dob_sc",
            "given_alt",
            "family_alt",
        ):
            src = {"given_sc": "given", "family_sc": "family", "dob_sc": "dob"}.get(col, col)
            vals = ch.ident[col].to_list()
            vals[t] = ch.ident[src][b] if col in ("given_sc", "family_sc", "dob_sc") else vals[b]
            ch.ident = ch.ident.with_columns(pl.Series(col, vals, dtype=pl.String))
        pp.dob[t] = pp.dob[b]
        pp.reg_date[t] = np.maximum(pp.reg_date[t], pp.dob[t])
        made += [b, t]
    return made


# ---------------------------------------------------------------------------------------
# Faults: rows the contract quarantines, NHS numbers it does not accept, ambiguous links

IMPOSSIBLE_DATES = ["2024-02-30", "2023-02-29", "2023-06-31", "2024-13-01", "2025-04-31"]
FAULTS: dict[str, list[tuple[str, int]]] = {
    "acute": [
        ("malformed_extra", 1),
        ("bad_date:start_date", 1),
        ("blank:start_date", 1),
        ("blank:date_of_birth", 1),
        ("end_before_start", 1),
        ("duplicate", 1),
        ("duplicate_changed:hrg_code", 1),
    ],
    "chc": [
        ("bad_date:end_date", 1),
        ("blank:weekly_cost", 1),
        ("negative:weekly_cost", 1),
        ("end_before_start", 1),
        ("duplicate", 1),
        ("negative_and_end_before_start:weekly_cost", 1),
    ],
    "community": [
        ("malformed_short", 1),
        ("bad_date:contact_date", 1),
        ("blank:contact_date", 1),
        ("blank:duration_minutes", 1),
        ("negative:duration_minutes", 1),
        ("duplicate", 2),
    ],
    "mental_health": [
        ("malformed_extra", 1),
        ("bad_date:start_date", 1),
        ("end_before_start", 1),
        ("duplicate", 1),
    ],
    "primary_care_events": [
        ("malformed_name_comma", 1),
        ("bad_date:event_date", 1),
        ("blank:event_date", 1),
        ("duplicate", 1),
        ("duplicate_changed:mode", 1),
    ],
    "primary_care_registers": [
        ("bad_date:diagnosis_date", 1),
        ("blank:diagnosis_date", 1),
        ("duplicate_changed:diagnosis_date", 2),
    ],
    "social_care": [
        ("malformed_short", 1),
        ("bad_date:start_date", 1),
        ("blank:unit_cost", 1),
        ("blank:planned_units_per_week", 1),
        ("negative:planned_units_per_week", 1),
        ("negative:client_contribution_weekly", 1),
        ("text:client_contribution_weekly", 1),
        ("end_before_start", 1),
        ("duplicate", 1),
    ],
}
# in-place NHS number faults (rows stay accepted): typo = wrong check digit
NHS_FAULTS = {
    "acute": [("typo", 2), ("9999999999", 1), ("0000000000", 1)],
    "community": [("typo", 1), ("0000000000", 1)],
    "mental_health": [("typo", 1)],
    "social_care": [("9999999999", 1)],
}


def apply_nhs_faults(ch: Chunk, source: str, df: pl.DataFrame, scale: int) -> pl.DataFrame:
    rng = ch.rng
    nhs = df["nhs_number"].to_list()
    have = [i for i, v in enumerate(nhs) if v]
    for kind, count in NHS_FAULTS.get(source, []):
        for _ in range(count * scale):
            if not have:
                break
            i = have.pop(int(rng.integers(len(have))))
            if kind == "typo":
                digits = nhs[i].replace(" ", "").replace("-", "")
                nhs[i] = digits[:9] + str((int(digits[9]) + int(rng.integers(1, 10))) % 10)
            else:
                nhs[i] = kind
    return df.with_columns(nhs_number=pl.Series(nhs, dtype=pl.String))


def ambiguous_local_id(ch: Chunk, source: str, df: pl.DataFrame, scale: int) -> pl.DataFrame:
    """One local id seen with two different valid NHS numbers (a mis-keyed row). In social
    care the person also has rows without a number, so stage 2 meets the ambiguity."""
    rng = ch.rng
    stats = (
        df.group_by("_pos")
        .agg(
            with_nhs=pl.col("nhs_number").is_not_null().sum(),
            blank=pl.col("nhs_number").is_null().sum(),
        )
        .filter(pl.col("with_nhs") >= 2)
        .sort("_pos")
    )
    if source == "social_care":
        preferred = stats.filter(pl.col("blank") >= 1)
        stats = preferred if preferred.height else stats
    if stats.height == 0:
        return df
    nhs = df["nhs_number"].to_list()
    pos_list = df["_pos"].to_list()
    others = np.nonzero(ch.nhs_value > 0)[0]
    chosen = rng.choice(stats["_pos"].to_numpy(), size=min(scale, stats.height), replace=False)
    for person in chosen:
        rows = [i for i, p in enumerate(pos_list) if p == person and nhs[i]]
        candidates = [o for o in others if o != person]
        if candidates:
            number = int(ch.nhs_value[int(_pick(rng, candidates))])
        else:  # nobody in this chunk has a valid number (beyond the 999 range's capacity)
            pool = nhs_pools(ch.seed)[0]
            number = int(pool[int(rng.integers(len(pool)))])
        nhs[rows[-1]] = str(number).zfill(10)
    return df.with_columns(nhs_number=pl.Series(nhs, dtype=pl.String))


def make_faults(
    ch: Chunk, source: str, df: pl.DataFrame, counter: list[int], scale: int
) -> tuple[pl.DataFrame, list[list[str | None]]]:
    """Extra rows the contract quarantines (as a frame of the same columns) and malformed
    rows (as field lists to write raw). Each is a copy of a random accepted row, changed."""
    rng = ch.rng
    cols = COLUMNS[source]
    id_col = ROW_ID.get(source, (None,))[0]
    extra: list[dict] = []
    raw: list[list[str | None]] = []
    empty = pl.DataFrame(schema=dict.fromkeys(cols, pl.String))
    if df.height == 0:
        return empty, raw
    base = df.select(cols)

    def new_id() -> str:
        prefix, digits = ROW_ID[source][1], ROW_ID[source][2]
        counter[0] += 1
        return f"{prefix}{counter[0]:0{digits}d}"

    def sample(pred: pl.Expr | None = None) -> dict | None:
        cand = base if pred is None else base.filter(pred)
        if cand.height == 0:
            return None
        return cand.row(int(rng.integers(cand.height)), named=True)

    for kind, count in FAULTS[source]:
        # CHC is small: its faults do not grow with the chunk
        for _ in range(count * (1 if source == "chc" else scale)):
            fault, _, col = kind.partition(":")
            if fault in ("end_before_start", "negative_and_end_before_start"):
                pred = pl.col("end_date").is_not_null() & pl.col("start_date").is_not_null()
                if source == "acute":
                    pred = pred & pl.col("pod").is_in(["EL", "NEL"])
                row = sample(pred)
                if row is None:
                    continue
                row["end_date"] = iso(day(row["start_date"]) - int(rng.integers(1, 30)))
                if fault == "negative_and_end_before_start":
                    row[col] = "-" + row[col]
            else:
                pred = None
                if fault == "negative":
                    pred = pl.col(col).is_not_null() & ~pl.col(col).is_in(["0", "0.00"])
                row = sample(pred)
                if row is None:
                    continue
                if fault == "bad_date":
                    row[col] = _pick(rng, IMPOSSIBLE_DATES)
                elif fault == "blank":
                    row[col] = None
                elif fault == "negative":
                    row[col] = "-" + row[col]
                elif fault == "text":
                    row[col] = "n/a"
                elif fault == "duplicate_changed":
                    if col == "hrg_code":
                        row[col] = UNKNOWN_HRG["NEL"]
                    elif col == "mode":
                        row[col] = "TELEPHONE" if row[col] != "TELEPHONE" else "SURGERY"
                    elif col == "diagnosis_date":
                        row[col] = iso(day(row[col]) - int(rng.integers(30, 900)))
            if id_col and not fault.startswith("duplicate"):
                row[id_col] = new_id()
            if fault.startswith("malformed"):
                fields = [row[c] for c in cols]
                if fault == "malformed_extra":
                    fields.append("")  # a trailing comma: one field too many
                elif fault == "malformed_short":
                    fields = fields[:-1]  # truncated: one field too few
                else:  # an unquoted comma inside the family name: one field too many
                    k = cols.index("family_name")
                    fields[k] = f"{fields[k]}, Jnr"
                raw.append(fields)
                continue
            extra.append(row)
    if not extra:
        return empty, raw
    return pl.from_dicts(extra, schema=dict.fromkeys(cols, pl.String)), raw


# ---------------------------------------------------------------------------------------
# Writing


def _csv_line(fields: Sequence[str | None]) -> str:
    out = []
    for f in fields:
        f = "" if f is None else f
        # malformed rows are written exactly as the fault intends (no quoting of the comma)
        out.append(f)
    return ",".join(out) + "\n"


class Writer:
    """Holds the seven open landing files and the running row-id counters."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, IO[bytes]] = {}
        self.counters: dict[str, list[int]] = {s: [0] for s in SOURCES}
        self.rows: dict[str, int] = dict.fromkeys(SOURCES, 0)
        for source in SOURCES:
            fh = (out / f"{source}.csv").open("wb")
            fh.write((",".join(COLUMNS[source]) + "\n").encode())
            self.files[source] = fh

    def write(
        self,
        source: str,
        ch: Chunk,
        df: pl.DataFrame,
        scale: int,
    ) -> None:
        rng = ch.rng
        cols = COLUMNS[source]
        df = df.sort(["_sort", "_pos"], maintain_order=True)
        id_col = ROW_ID.get(source, (None,))[0]
        if id_col:
            prefix, digits = ROW_ID[source][1], ROW_ID[source][2]
            c = self.counters[source]
            ids = np.arange(c[0] + 1, c[0] + 1 + df.height)
            c[0] += df.height
            df = df.with_columns(
                (pl.lit(prefix) + pl.Series(ids).cast(pl.String).str.zfill(digits)).alias(id_col)
            )
        df = apply_nhs_faults(ch, source, df, scale)
        if source in ("acute", "social_care"):
            df = ambiguous_local_id(ch, source, df, scale)
        extra, raw = make_faults(ch, source, df, self.counters[source], scale)
        main = df.select(cols)
        # faulty rows go to random places among the chunk's rows
        keys = np.concatenate(
            [np.arange(main.height, dtype=float), rng.random(extra.height) * max(main.height, 1)]
        )
        allrows = (
            pl.concat([main, extra])
            .with_columns(_k=pl.Series(keys))
            .sort("_k", maintain_order=True)
            .drop("_k")
        )
        allrows = allrows.with_columns(
            [pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in cols]
        )
        cut = sorted(int(x) for x in rng.integers(0, allrows.height + 1, len(raw)))
        fh = self.files[source]
        prev = 0
        for at, fields in zip(cut, raw, strict=True):
            if at > prev:
                _write_frame(fh, allrows.slice(prev, at - prev))
            fh.write(_csv_line(fields).encode())
            prev = at
        if prev < allrows.height:
            _write_frame(fh, allrows.slice(prev))
        self.rows[source] += allrows.height + len(raw)

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()


def _write_frame(fh: IO[bytes], df: pl.DataFrame) -> None:
    buf = io.BytesIO()
    df.write_csv(buf, include_header=False)
    fh.write(buf.getvalue())


# ---------------------------------------------------------------------------------------
# Driver


def generate_chunk(ch: Chunk, writer: Writer) -> None:
    build_identity(ch)
    plan_chc(ch)
    plan_social_care(ch)
    apply_name_deviations(ch)
    force = np.zeros(ch.n, dtype=bool)
    for plan in ch.sc_people:
        force[plan["pos"]] = True
    for t in make_twins(ch):
        force[t] = True
    ch.force_gp = force
    scale = max(1, round(ch.n / 5000)) if ch.n >= 500 else 1
    for source, gen in (
        ("acute", gen_acute),
        ("chc", gen_chc),
        ("community", gen_community),
        ("mental_health", gen_mental_health),
        ("primary_care_events", gen_primary_care_events),
        ("primary_care_registers", gen_primary_care_registers),
        ("social_care", gen_social_care),
    ):
        writer.write(source, ch, gen(ch), scale)


def generate(
    people: int = DEFAULT_PEOPLE,
    seed: int = DEFAULT_SEED,
    out: Path = DEFAULT_OUT,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = False,
) -> dict[str, int]:
    """Write the seven landing files; return rows written per source."""
    writer = Writer(Path(out))
    t0 = time.perf_counter()
    try:
        n_chunks = max(1, math.ceil(people / chunk_size))
        for k in range(n_chunks):
            first = k * chunk_size
            n = min(chunk_size, people - first)
            if n <= 0:
                break
            rng = np.random.default_rng([seed, k])
            ch = Chunk(k, rng, make_people(rng, first, n), seed)
            generate_chunk(ch, writer)
            if progress and (k + 1) % 10 == 0:
                print(f"  {first + n:,} people, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    finally:
        writer.close()
    return writer.rows


# ---------------------------------------------------------------------------------------
# Reference tables

COHORTS_YAML = """\
# The eight shipped IPC cohorts (costing-method.md section 4), in order: the first
# matching cohort is a person's primary cohort. Evaluated per person and financial
# year; age is age on 1 April of the year; a register counts in a year when its
# diagnosis_date is on or before the last day of that year.
# Shape (one simple way to write it; the product may choose its own): each cohort has a name,
# a list `all` and/or a list `any`. Within a cohort, every condition under `all` must hold and,
# when `any` is also given, at least one of its alternatives must hold too (children_complex
# uses both: under 18 and (a CHC package or on a learning disability / autism register)).
# Condition keys: min_age / max_age (inclusive), registers_any (on at least one),
# min_registers (on at least n distinct registers of `from`), mh_cpa (any mental health
# record with cpa = Y in the year), chc_package (any CHC package active in the year),
# top_percent_total_cost.
ltc_registers: &ltc [COPD, ASTHMA, DIABETES, HEART_FAILURE, CHD, STROKE, CKD, DEMENTIA, CANCER]
cohorts:
  - name: older_ltc
    all: [{min_age: 65}, {registers_any: *ltc}]
  - name: older_copd
    all: [{min_age: 65}, {registers_any: [COPD]}]
  - name: older_diabetes
    all: [{min_age: 65}, {registers_any: [DIABETES]}]
  - name: multimorbidity
    all: [{min_age: 18}, {min_registers: 2, from: *ltc}]
  - name: learning_disability_autism
    any: [{registers_any: [LEARNING_DISABILITY, AUTISM]}]
  - name: serious_mental_illness
    any: [{registers_any: [SMI]}, {mh_cpa: true}]
  - name: children_complex
    all: [{max_age: 17}]
    any: [{chc_package: true}, {registers_any: [LEARNING_DISABILITY, AUTISM]}]
  - name: high_cost
    all: [{top_percent_total_cost: 5}]
"""

SETTINGS_YAML = """\
# Settings of the sample site (data-contract.md section 3). Every key is optional: the
# value written here is the pipeline's default, so deleting a line changes nothing.

# Settings whose costs are summed into a person's cashable cost for the banded funding
# levels and the indicative personal budget (costing-method.md section 5).
# Default: [chc, social_care, community].
cashable_settings: [chc, social_care, community]

# Disclosure control on every aggregate that leaves the pipeline (costing-method.md
# section 5, the NHS England / OpenSAFELY rule): a row describing `threshold` or fewer
# people (but not zero) is suppressed; every count shown is rounded to the nearest
# `rounding`. Defaults: threshold 7, rounding 5. Going below either needs an explicit
# `override: "<reason>"` in this mapping, which the manifest records (default: none).
disclosure: {threshold: 7, rounding: 5}

# k-anonymity of the quasi-identifiers (age band, sex, postcode district) in each linked
# dataset, groups counted per financial year (data-contract.md section 4). Default: k = 5;
# a smaller k needs an `override: "<reason>"` here, recorded in the manifest.
k_anonymity: {k: 5}

# Recipients (names as in IPC_RECIPIENTS) that also receive legacy Open Pseudonymiser ids
# (facts.md section 5), each mapped to its own settings. Default: none ({}).
recipients_open_pseudonymiser: {}
"""


def reference_tables() -> dict[str, pl.DataFrame]:
    years = ("2023/24", "2024/25")
    ncc_y = {"2023/24": f"{NCC} 2023/24", "2024/25": f"{NCC} 2024/25"}
    dept = {
        "NEL": "Non-Elective Inpatient Long Stay + Short Stay (total cost / total activity)",
        "EL": "Elective Inpatients",
        "DC": "Daycase",
        "OPFA": "Consultant Led",
        "OPFU": "Consultant Led",
        "AE": "Emergency Care",
    }
    tariff = []
    for y in years:
        for h in HRGS:
            if y == "2023/24" or h.pod not in ("OPFA", "OPFU"):
                price = h.price_2324 if y == "2023/24" else h.price_2425
                ref = f"price: {ncc_y[y]}, {dept[h.pod]}, {h.code} ({h.desc}) unit cost"
            else:
                price = round(h.price_2324 * OP_UPLIFT_2425, 2)
                ref = (
                    f"price: {NCC} 2023/24 Consultant Led {h.code} ({h.desc}) £{h.price_2324:.2f}"
                    f" x {OP_UPLIFT_2425} (uplift INVENTED: the 2024/25 tabulation has no"
                    " consultant-led WF rows)"
                )
            if h.pod in ("EL", "NEL"):
                trim, ebd = h.trim, EXCESS_BED_DAY[y]
                ref += (
                    f"; trim point {trim} days INVENTED for the sample (the NCC has no trim"
                    f" points); excess bed day £{ebd:.0f} INVENTED for the sample: reference"
                    " costs 2016/17 excess bed day £313 (HFMA news, 5 Dec 2017) uplifted by an"
                    " invented 25% to 2023/24" + ("" if y == "2023/24" else " and 3.5% to 2024/25")
                )
            else:
                trim, ebd = 0, 0.0
                ref += "; trim point and excess bed day price not used for this POD (0)"
            tariff.append((y, h.code, h.pod, money(price), str(trim), money(ebd), ref))
    acute_tariff = pl.DataFrame(
        tariff,
        schema=[
            "financial_year",
            "hrg_code",
            "pod",
            "price",
            "trim_point_days",
            "excess_bed_day_price",
            "reference",
        ],
        orient="row",
    )
    pod_rows = []
    for y in years:
        for pod, (price, what) in POD_DEFAULT[y].items():
            if y == "2024/25" and pod in ("OPFA", "OPFU"):
                base = POD_DEFAULT["2023/24"][pod][0]
                ref = (
                    f"{NCC} 2023/24 {POD_DEFAULT['2023/24'][pod][1]}: total cost / total"
                    f" activity £{base:.2f} x {OP_UPLIFT_2425} (uplift INVENTED: the 2024/25"
                    " tabulation has no consultant-led WF rows)"
                )
            else:
                ref = (
                    f"{ncc_y[y]}, department average of {what}: total cost / total activity"
                    " over the department's rows that report activity"
                )
            pod_rows.append((y, pod, money(price), ref))
    acute_pod_default = pl.DataFrame(
        pod_rows, schema=["financial_year", "pod", "price", "reference"], orient="row"
    )
    uc = []
    for y in years:
        for service, mode, code, c23, c24, desc in COMMUNITY_COSTS:
            cost = c23 if y == "2023/24" else c24
            note = ""
            if not mode and any(c[0] == service and c[1] == "F2F" for c in COMMUNITY_COSTS):
                note = " (blank mode: every mode but F2F, which has its own row)"
            uc.append(
                (
                    y,
                    "community",
                    service,
                    mode,
                    "CONTACT",
                    money(cost),
                    f"{ncc_y[y]}, Community Health Service {code} ({desc}) unit cost{note}",
                )
            )
        for service, unit, code, c24, desc in MH_COSTS_2425:
            if y == "2023/24":
                c23, code23, desc23 = MH_2324[unit]
                what = "ward type" if unit == "BED_DAY" else "team type"
                per = "per bed day" if unit == "BED_DAY" else "per contact"
                uc.append(
                    (
                        y,
                        "mental_health",
                        service,
                        "",
                        unit,
                        money(c23),
                        f"{ncc_y[y]}, {desc23} (currency {code23}, all services together)"
                        f" {per}: the 2023/24 tabulation holds only this average, used for"
                        f" every {what}",
                    )
                )
            else:
                dep = (
                    "Mental Health Provider Spell"
                    if unit == "BED_DAY"
                    else ("Mental Health Care Contact")
                )
                uc.append(
                    (
                        y,
                        "mental_health",
                        service,
                        "",
                        unit,
                        money(c24),
                        f"{ncc_y[y]}, {dep} {code} ({desc})"
                        + (" per bed day" if unit == "BED_DAY" else " unit cost"),
                    )
                )
        for staff, mode, c23, ref in PRIMARY_COSTS:
            if y == "2023/24":
                uc.append((y, "primary_care", staff, mode, "CONTACT", money(c23), ref))
            else:
                uc.append(
                    (
                        y,
                        "primary_care",
                        staff,
                        mode,
                        "CONTACT",
                        money(round(c23 * PRIMARY_UPLIFT_2425, 2)),
                        f"2023/24 figure £{c23:.2f} x {PRIMARY_UPLIFT_2425} (uplift INVENTED"
                        f" for 2024/25); 2023/24 source: {ref}",
                    )
                )
    unit_costs = pl.DataFrame(
        uc,
        schema=["financial_year", "source", "service", "mode", "unit", "cost", "reference"],
        orient="row",
    )
    block = pl.DataFrame(
        [
            (
                y,
                src,
                prov,
                svc,
                money(v),
                f"INVENTED for the sample (a local block contract, sized for the default"
                f" 5,000-person sample): {why}",
            )
            for y, src, prov, svc, v, why in BLOCK_CONTRACTS
        ],
        schema=[
            "financial_year",
            "source",
            "provider_code",
            "service",
            "contract_value",
            "reference",
        ],
        orient="row",
    )
    return {
        "acute_tariff": acute_tariff,
        "acute_pod_default": acute_pod_default,
        "unit_costs": unit_costs,
        "block_contracts": block,
    }


def write_reference(out: Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in reference_tables().items():
        path = out / f"{name}.csv"
        df.with_columns(
            [pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in df.columns]
        ).write_csv(path)
        written.append(path)
    for name, text in (("cohorts.yaml", COHORTS_YAML), ("settings.yaml", SETTINGS_YAML)):
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=DEFAULT_PEOPLE)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="landing folder")
    parser.add_argument(
        "--reference-out",
        type=Path,
        default=DEFAULT_REFERENCE_OUT,
        help="folder for the reference tables",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK,
        help="people generated and written at a time",
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.people < 1 or args.chunk_size < 1:
        parser.error("--people and --chunk-size must be at least 1")
    t0 = time.perf_counter()
    write_reference(args.reference_out)
    rows = generate(args.people, args.seed, args.out, args.chunk_size, progress=not args.quiet)
    if not args.quiet:
        took = time.perf_counter() - t0
        print(f"{args.people:,} people, seed {args.seed}, {took:.1f} s -> {args.out}")
        for source, count in rows.items():
            print(f"  {source:<24}{count:>12,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
