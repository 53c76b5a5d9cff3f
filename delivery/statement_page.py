"""A one-page, human-readable Individual Statement of Resources a coordinator can print.

Renders one statement from ``individual_statements/<year>.jsonl``; money is shown to
the penny here only (the exports keep full precision).
"""

import html
import json
from pathlib import Path
from typing import Any

import polars as pl

from costing.period import fy_file_label
from pseudonymise.hashing import pseudonymise_series, text_key
from pseudonymise.identifiers import is_valid_nhs_number, normalise_nhs_number_text
from schemas.sources import SETTINGS

SETTING_NAMES = {
    "acute": "Hospital (acute)",
    "chc": "NHS Continuing Healthcare",
    "community": "Community health services",
    "mental_health": "Mental health services",
    "primary_care": "GP practice",
    "social_care": "Adult social care",
    "total": "Total",
}


def lookup_person_id(nhs_number: str, linkage_key: bytes) -> str | None:
    """The internal person id of a valid NHS number (what a key holder can recompute)."""
    digits = normalise_nhs_number_text(nhs_number)
    if digits is None or not is_valid_nhs_number(digits):
        return None
    return str(pseudonymise_series(text_key(linkage_key), pl.Series([f"nhs:{digits}"]))[0])


def find_statement(export_dir: Path, person_id: str, year: str | None) -> dict[str, Any] | None:
    folder = export_dir / "individual_statements"
    files = sorted(folder.glob("*.jsonl"))
    if year:
        files = [folder / f"{fy_file_label(year)}.jsonl"]
    for path in reversed(files):
        if not path.is_file():
            continue
        with path.open() as handle:
            for line in handle:
                statement = json.loads(line)
                if statement["person_id"] == person_id:
                    return statement
    return None


def money(value: float | None) -> str:
    return "not published" if value is None else f"£{value:,.2f}"


def _rows(statement: dict[str, Any]) -> list[tuple[str, str, str]]:
    profile, own = statement["profile_mean_cost"], statement["own_cost"]
    return [
        (SETTING_NAMES[s], money(profile.get(s)), money(own.get(s))) for s in [*SETTINGS, "total"]
    ]


def _budget_sentence(statement: dict[str, Any]) -> str:
    budget = statement["indicative_budget"]
    settings = ", ".join(SETTING_NAMES[s].lower() for s in budget["cashable_settings"])
    basis = budget["basis"]
    if basis == "none":
        return f"No spending on {settings} was recorded, so no personal budget is indicated."
    if basis == "suppressed":
        return "Too few people share this profile to publish an indicative budget."
    if basis == "cohort":
        return (
            f"Indicative personal budget: {money(budget['amount'])} a year, the average "
            f"spend on {settings} for people in this group."
        )
    upper = budget["band_upper"]
    band_range = (
        f"{money(budget['band_lower'])} to {money(upper)}"
        if upper is not None
        else f"over {money(budget['band_lower'])}"
    )
    return (
        f"Indicative personal budget: {money(budget['amount'])} a year, the average "
        f"spend on {settings} for people in funding band {budget['band']} "
        f"({band_range})."
    )


def _profile_sentence(statement: dict[str, Any]) -> str:
    profile = statement["profile"]
    cohort = profile["cohort"].replace("_", " ")
    if profile["people"] is None:
        return f"Too few people are in the {cohort} group to publish what is typical."
    who = (
        f"people in the {cohort} group"
        if profile["fallback_to_cohort"]
        else f"people aged {statement['age_band']} in the {cohort} group"
    )
    return f"Typical yearly cost for {who} (about {profile['people']} people):"


def render_text(statement: dict[str, Any]) -> str:
    lines = [
        f"Individual Statement of Resources - {statement['financial_year']}",
        f"Reference: {statement['person_id']}",
        f"Group: {statement['primary_cohort'].replace('_', ' ')}; age band {statement['age_band']}",
        "",
        _profile_sentence(statement),
        f"{'Setting':32} {'Typical':>16} {'This person':>16}",
    ]
    lines += [f"{name:32} {typical:>16} {own:>16}" for name, typical, own in _rows(statement)]
    lines += ["", _budget_sentence(statement)]
    return "\n".join(lines)


def render_html(statement: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(n)}</td><td class=n>{e(t)}</td><td class=n>{e(o)}</td></tr>"
        for n, t, o in _rows(statement)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Individual Statement of Resources {e(statement["financial_year"])}</title>
<style>
 body {{ font-family: Arial, sans-serif; max-width: 42em; margin: 2em auto; }}
 table {{ border-collapse: collapse; width: 100%; }}
 td, th {{ border-bottom: 1px solid #ccc; padding: .35em; text-align: left; }}
 .n {{ text-align: right; }} tr:last-child td {{ font-weight: bold; }}
 @media print {{ body {{ margin: 0; }} }}
</style></head><body>
<h1>Individual Statement of Resources</h1>
<p>Financial year {e(statement["financial_year"])}. Reference {e(statement["person_id"])}.<br>
Group: {e(statement["primary_cohort"].replace("_", " "))}; age band {e(statement["age_band"])}.</p>
<p>{e(_profile_sentence(statement))}</p>
<table><tr><th>Setting</th><th class=n>Typical</th><th class=n>This person</th></tr>{rows}</table>
<p><strong>{e(_budget_sentence(statement))}</strong></p>
<p><small>Costs are what the NHS and the council spent, from their records; the typical
figures are averages for people like you and are published only for groups of more
than seven people.</small></p>
</body></html>
"""
