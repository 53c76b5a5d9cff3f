"""Cohorts: costing-method.md section 4, defined in ``cohorts.yaml``.

An analyst extends the cohorts without code by editing ``cohorts.yaml``. Its shape:

.. code-block:: yaml

    cohorts:
      - name: older_copd
        all: [{min_age: 65}, {registers_any: [COPD]}]     # every condition holds
        any: [{mh_cpa: true}, {chc_package: true}]        # and, if given, one of these
        statement: true                                   # optional, see below

Condition keys (one condition per mapping):

* ``min_age`` / ``max_age``: age on 1 April of the year, inclusive;
* ``registers_any``: on at least one of these registers in the year;
* ``min_registers`` with ``from``: on at least n distinct registers of the list;
* ``mh_cpa``: any mental health record with ``cpa = Y`` starting in the year;
* ``chc_package``: any CHC package with an active day in the year;
* ``top_percent_total_cost``: among the ⌈p% × n⌉ people with the highest total
  cost of the n people present in the year, plus anyone tied with the last of them.

A register counts in a year when its diagnosis date is on or before the year's last
day. The order of cohorts matters: a person's primary cohort is the first that
matches. Cohorts defined by cost (``top_percent_total_cost``) describe spend, not
need, so they get no Individual Statement of Resources unless ``statement: true``.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import duckdb
import yaml

from costing.sql import sql_text
from costing.years import replace_years, select_costed_years, year_filter

CONDITION_KEYS = frozenset(
    {
        "min_age",
        "max_age",
        "registers_any",
        "min_registers",
        "from",
        "mh_cpa",
        "chc_package",
        "top_percent_total_cost",
    }
)


class CohortDefinitionError(ValueError):
    """cohorts.yaml does not follow the documented shape."""


@dataclass(frozen=True)
class Condition:
    """One condition of a cohort; exactly one of the fields is the test."""

    min_age: int | None = None
    max_age: int | None = None
    registers_any: tuple[str, ...] | None = None
    min_registers: int | None = None
    registers_from: tuple[str, ...] | None = None
    mh_cpa: bool | None = None
    chc_package: bool | None = None
    top_percent: Fraction | None = None


@dataclass(frozen=True)
class Cohort:
    name: str
    all_of: tuple[Condition, ...]
    any_of: tuple[Condition, ...]
    statement: bool

    @property
    def top_percents(self) -> list[Fraction]:
        return [c.top_percent for c in self.all_of + self.any_of if c.top_percent is not None]


def _registers(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise CohortDefinitionError(f"{where}: expected a non-empty list of register names")
    return tuple(value)


def _condition(raw: Any, where: str) -> Condition:
    if not isinstance(raw, dict) or not raw:
        raise CohortDefinitionError(f"{where}: each condition must be a mapping")
    unknown = set(raw) - CONDITION_KEYS
    if unknown:
        raise CohortDefinitionError(
            f"{where}: unknown condition key(s) {sorted(unknown)}; "
            f"known keys are {sorted(CONDITION_KEYS)}"
        )
    keys = set(raw)
    if keys == {"min_registers", "from"}:
        return Condition(
            min_registers=int(raw["min_registers"]),
            registers_from=_registers(raw["from"], where),
        )
    if len(keys) != 1:
        raise CohortDefinitionError(
            f"{where}: a condition has one key (or min_registers with from); got {sorted(keys)}"
        )
    key, value = next(iter(raw.items()))
    if key in ("min_age", "max_age", "min_registers"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CohortDefinitionError(f"{where}: {key} must be a whole number >= 0")
        if key == "min_registers":
            raise CohortDefinitionError(f"{where}: min_registers needs `from`")
        return Condition(min_age=value) if key == "min_age" else Condition(max_age=value)
    if key == "registers_any":
        return Condition(registers_any=_registers(value, where))
    if key in ("mh_cpa", "chc_package"):
        if not isinstance(value, bool):
            raise CohortDefinitionError(f"{where}: {key} must be true or false")
        return Condition(mh_cpa=value) if key == "mh_cpa" else Condition(chc_package=value)
    if key == "top_percent_total_cost":
        percent = Fraction(str(value))
        if not 0 < percent <= 100:
            raise CohortDefinitionError(f"{where}: top_percent_total_cost must be in (0, 100]")
        return Condition(top_percent=percent)
    raise CohortDefinitionError(f"{where}: condition {key!r} needs `min_registers`")


def parse_cohorts(text: str) -> list[Cohort]:
    """Parse cohorts.yaml text into cohorts, in file order, with clear errors."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CohortDefinitionError(f"cohorts.yaml is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("cohorts"), list):
        raise CohortDefinitionError("cohorts.yaml must have a top-level list `cohorts`")
    cohorts: list[Cohort] = []
    for index, raw in enumerate(document["cohorts"], start=1):
        where = f"cohorts.yaml cohort {index}"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise CohortDefinitionError(f"{where}: each cohort needs a `name`")
        name = raw["name"]
        where = f"cohorts.yaml cohort {name!r}"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise CohortDefinitionError(
                f"{where}: a name is lower-case letters, digits and underscores"
            )
        unknown = set(raw) - {"name", "all", "any", "statement", "description"}
        if unknown:
            raise CohortDefinitionError(f"{where}: unknown key(s) {sorted(unknown)}")
        all_of = tuple(_condition(c, where) for c in raw.get("all") or [])
        any_of = tuple(_condition(c, where) for c in raw.get("any") or [])
        if not all_of and not any_of:
            raise CohortDefinitionError(f"{where}: needs `all` and/or `any` conditions")
        by_cost = any(c.top_percent is not None for c in all_of + any_of)
        statement = raw.get("statement", not by_cost)
        if not isinstance(statement, bool):
            raise CohortDefinitionError(f"{where}: statement must be true or false")
        if any(c.name == name for c in cohorts):
            raise CohortDefinitionError(f"{where}: defined twice")
        cohorts.append(Cohort(name=name, all_of=all_of, any_of=any_of, statement=statement))
    if not cohorts:
        raise CohortDefinitionError("cohorts.yaml defines no cohorts")
    return cohorts


def _sql_list(values: tuple[str, ...]) -> str:
    quoted = ", ".join(sql_text(v) for v in values)
    return f"[{quoted}]::VARCHAR[]"


def _top_column(percent: Fraction) -> str:
    return f"top_{percent.numerator}_{percent.denominator}"


def _condition_sql(c: Condition) -> str:
    if c.min_age is not None:
        return f"f.age >= {c.min_age}"
    if c.max_age is not None:
        return f"f.age <= {c.max_age}"
    if c.registers_any is not None:
        return f"list_has_any(f.registers, {_sql_list(c.registers_any)})"
    if c.min_registers is not None and c.registers_from is not None:
        return (
            f"len(list_intersect(f.registers, {_sql_list(c.registers_from)})) >= {c.min_registers}"
        )
    if c.mh_cpa is not None:
        return "f.mh_cpa" if c.mh_cpa else "NOT f.mh_cpa"
    if c.chc_package is not None:
        return "f.chc_package" if c.chc_package else "NOT f.chc_package"
    if c.top_percent is not None:
        return f"f.{_top_column(c.top_percent)}"
    raise AssertionError("empty condition")


def cohort_sql(cohort: Cohort) -> str:
    """The cohort's rule as one SQL boolean over ``costing.person_year_features f``."""
    parts = [_condition_sql(c) for c in cohort.all_of]
    if cohort.any_of:
        parts.append("(" + " OR ".join(_condition_sql(c) for c in cohort.any_of) + ")")
    return " AND ".join(f"({p})" for p in parts)


def build_cohort_membership(
    con: duckdb.DuckDBPyConnection, cohorts: list[Cohort], years: Sequence[str] | None = None
) -> None:
    """Build ``costing.person_year_features`` and ``costing.cohort_membership`` for
    ``years`` (every year when None; other years' rows are left as they are), and
    ``costing.cohort_order`` (the cohorts of cohorts.yaml, in order)."""
    select_costed_years(con, years)
    in_years = year_filter("financial_year", years)
    percents = sorted({p for cohort in cohorts for p in cohort.top_percents})
    top_columns = "".join(
        f""",
            rank() OVER (PARTITION BY p.financial_year ORDER BY round(p.cost_total, 6) DESC)
                <= {_top_count_sql(p)} AS {_top_column(p)}"""
        for p in percents
    )
    features = f"""
        WITH registers AS (
            SELECT l.person_id, y.financial_year, list(DISTINCT r.register) AS registers
            FROM pseudonymised.primary_care_registers r
            JOIN linked.row_links l
              ON l.row_id = r.row_id
            JOIN costed_years y ON r.diagnosis_date <= y.fy_end
            WHERE r.register IS NOT NULL
            GROUP BY ALL
        ),
        cpa AS (
            SELECT DISTINCT l.person_id, y.financial_year
            FROM pseudonymised.mental_health m
            JOIN linked.row_links l
              ON l.row_id = m.row_id
            JOIN costed_years y ON m.start_date BETWEEN y.fy_start AND y.fy_end
            WHERE m.cpa = 'Y'
        ),
        chc AS (
            SELECT DISTINCT person_id, financial_year FROM costing.activity
            WHERE source = 'chc' AND units > 0 AND {in_years}
        )
        SELECT p.person_id, p.financial_year, p.age, p.cost_total,
            coalesce(r.registers, []::VARCHAR[]) AS registers,
            cpa.person_id IS NOT NULL AS mh_cpa,
            chc.person_id IS NOT NULL AS chc_package,
            count(*) OVER (PARTITION BY p.financial_year) AS people_in_year{top_columns}
        FROM costing.person_years p
        LEFT JOIN registers r USING (person_id, financial_year)
        LEFT JOIN cpa USING (person_id, financial_year)
        LEFT JOIN chc USING (person_id, financial_year)
        WHERE {year_filter("p.financial_year", years)}
        """
    replace_years(con, "costing.person_year_features", features, years)
    selects = [
        f"SELECT f.person_id, f.financial_year, '{c.name}' AS cohort, {i} AS cohort_order, "
        f"{'TRUE' if c.statement else 'FALSE'} AS statement "
        f"FROM costing.person_year_features f WHERE ({cohort_sql(c)}) AND {in_years}"
        for i, c in enumerate(cohorts)
    ]
    replace_years(con, "costing.cohort_membership", "\nUNION ALL\n".join(selects), years)
    con.execute(
        "CREATE OR REPLACE TABLE costing.cohort_order AS "
        "SELECT * FROM (VALUES "
        + ", ".join(
            f"('{c.name}', {i}, {'TRUE' if c.statement else 'FALSE'})"
            for i, c in enumerate(cohorts)
        )
        + ") AS t(cohort, cohort_order, statement)"
    )


def _top_count_sql(percent: Fraction) -> str:
    """⌈p × n / 100⌉ in integer arithmetic over the window's people count n (floating
    point would make 5% of 60 people 4, not 3)."""
    numerator, denominator = percent.numerator, percent.denominator * 100
    return (
        f"((count(*) OVER (PARTITION BY p.financial_year) * {numerator} + "
        f"{denominator - 1}) // {denominator})"
    )
