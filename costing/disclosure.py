"""Disclosure control for every aggregate that leaves the pipeline.

The rule NHS England applies to HES and OpenSAFELY to its outputs (facts.md section 3):
a row describing 1 to ``threshold`` people is suppressed (its count and figures
blank, ``suppressed = true``); every count shown is then rounded to the nearest
``rounding``; means and percentiles come from the unrounded data. No total is
published from which a suppressed cell could be worked back: the exports carry no
total rows, and funding bands are suppressed five at a time (quintile bands' sizes
would give a hidden one away). Minimum and maximum values are never published.
"""

from dataclasses import dataclass, field

import polars as pl

#: The contract's threshold: 7 or fewer people is too few to publish.
CONTRACT_THRESHOLD = 7
CONTRACT_ROUNDING = 5


@dataclass(frozen=True)
class DisclosureRule:
    """Threshold and rounding; lowering the threshold needs an explicit override."""

    threshold: int = CONTRACT_THRESHOLD
    rounding: int = CONTRACT_ROUNDING
    override_reason: str | None = None

    def __post_init__(self) -> None:
        if self.threshold < 0 or self.rounding < 1:
            raise ValueError("disclosure threshold must be >= 0 and rounding >= 1")
        weaker = self.threshold < CONTRACT_THRESHOLD or self.rounding < CONTRACT_ROUNDING
        if weaker and not self.override_reason:
            raise ValueError(
                f"disclosure threshold {self.threshold} and rounding {self.rounding} are "
                f"weaker than the contract's {CONTRACT_THRESHOLD} and {CONTRACT_ROUNDING}; "
                "give a reason as disclosure.override in settings.yaml to use them "
                "(the manifest records it)"
            )

    @classmethod
    def from_settings(cls, settings: dict) -> "DisclosureRule":
        """From the ``disclosure`` section of settings.yaml."""
        section = settings.get("disclosure") or {}
        return cls(
            threshold=int(section.get("threshold", CONTRACT_THRESHOLD)),
            rounding=int(section.get("rounding", CONTRACT_ROUNDING)),
            override_reason=section.get("override"),
        )

    def suppress(self, people: int | None) -> bool:
        """A count of 1..threshold people is suppressed; 0 is not."""
        return people is not None and 0 < people <= self.threshold

    def round_count(self, people: int) -> int:
        """Round half up to the nearest multiple of ``rounding``."""
        return (2 * people + self.rounding) // (2 * self.rounding) * self.rounding

    def round_expr(self, expr: pl.Expr) -> pl.Expr:
        r = self.rounding
        return ((expr * 2 + r) // (2 * r) * r).cast(pl.Int64)

    def suppressed_expr(self, people: pl.Expr) -> pl.Expr:
        return (people > 0) & (people <= self.threshold)

    def as_manifest(self) -> dict[str, object]:
        return {
            "rule": (
                f"rows describing 1-{self.threshold} people suppressed; "
                f"counts rounded to the nearest {self.rounding}; "
                "means and percentiles from unrounded data; no minimum, maximum or totals"
            ),
            "threshold": self.threshold,
            "rounding": self.rounding,
            "override_reason": self.override_reason,
        }


@dataclass
class SuppressionCounts:
    """How many rows each table had suppressed, for the manifest."""

    by_table: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, rows: int) -> None:
        self.by_table[table] = self.by_table.get(table, 0) + rows


def protect_rows(
    frame: pl.DataFrame,
    rule: DisclosureRule,
    *,
    count_column: str = "people",
    figure_columns: list[str],
) -> pl.DataFrame:
    """Suppress rows of 1..threshold people, then round every count shown."""
    suppressed = rule.suppressed_expr(pl.col(count_column))
    return frame.with_columns(
        [pl.when(suppressed).then(None).otherwise(pl.col(c)).alias(c) for c in figure_columns]
        + [
            pl.when(suppressed)
            .then(None)
            .otherwise(rule.round_expr(pl.col(count_column)))
            .alias(count_column),
            suppressed.alias("suppressed"),
        ]
    )


def protect_groups(
    frame: pl.DataFrame,
    rule: DisclosureRule,
    *,
    group_columns: list[str],
    count_column: str = "people",
    figure_columns: list[str],
) -> pl.DataFrame:
    """Publish a group of rows together or not at all: if any row of the group
    describes ``threshold`` people or fewer (zero included), suppress every row."""
    hidden = (pl.col(count_column) <= rule.threshold).any().over(group_columns)
    return frame.with_columns(
        [pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c) for c in figure_columns]
        + [
            pl.when(hidden)
            .then(None)
            .otherwise(rule.round_expr(pl.col(count_column)))
            .alias(count_column),
            hidden.alias("suppressed"),
        ]
    )


#: Generalisation steps for k-anonymity, in the order the contract lists them.
K_ANONYMITY_LEVELS = (
    "as recorded",
    "postcode district blanked",
    "age band coarsened",
    "sex set to 0",
    "age band blanked",
)
_COARSE_AGE = {"0-17": "0-17", "18-64": "18-64", "65-74": "65+", "75-84": "65+", "85+": "65+"}


@dataclass(frozen=True)
class KAnonymityReport:
    """How many person-years were generalised to each level, and what is left."""

    k: int
    people_by_level: dict[str, int]
    smallest_group: int
    groups_below_k: int

    def as_manifest(self) -> dict[str, object]:
        return {
            "k": self.k,
            "quasi_identifiers": ["age_band", "sex", "postcode_district"],
            "groups_counted_per": "financial_year",
            "people_by_generalisation": self.people_by_level,
            "smallest_group": self.smallest_group,
            "groups_below_k": self.groups_below_k,
        }


def _generalised(level: pl.Expr) -> list[pl.Expr]:
    coarse = pl.col("age_band").replace_strict(_COARSE_AGE, default=pl.col("age_band"))
    return [
        pl.when(level >= 4)
        .then(pl.lit(""))
        .when(level >= 2)
        .then(coarse)
        .otherwise(pl.col("age_band"))
        .alias("_age_band"),
        pl.when(level >= 3).then(pl.lit("0")).otherwise(pl.col("sex")).alias("_sex"),
        pl.when(level >= 1)
        .then(pl.lit(""))
        .otherwise(pl.col("postcode_district").fill_null(""))
        .alias("_district"),
    ]


def k_from_settings(settings: dict) -> int:
    """k from settings.yaml; below the default 5 only with a recorded override reason."""
    section = settings.get("k_anonymity") or {}
    k = int(section.get("k", 5))
    if k < 1 or (k < 5 and not section.get("override")):
        raise ValueError(
            f"k_anonymity.k = {k} is below 5; give a reason as k_anonymity.override in "
            "settings.yaml to use it (the manifest records it)"
        )
    return k


def k_anonymise(frame: pl.DataFrame, k: int) -> tuple[pl.DataFrame, KAnonymityReport]:
    """Generalise ``age_band``, ``sex`` and ``postcode_district`` until every group of
    the same three values, counted per financial year, holds at least ``k`` people.

    People in groups smaller than k move one step at a time through
    :data:`K_ANONYMITY_LEVELS`; when the fully generalised group of a year is itself
    smaller than k, whole groups (smallest first) join it, so no other group shrinks.
    """
    groups = ["financial_year", "_age_band", "_sex", "_district"]
    top = len(K_ANONYMITY_LEVELS) - 1
    work = frame.with_columns(pl.lit(0, pl.Int8).alias("_level"))
    for _ in range(top + 1):
        work = work.with_columns(_generalised(pl.col("_level")))
        small = (pl.len().over(groups) < k) & (pl.col("_level") < top)
        if not work.select(small.any()).item():
            break
        work = work.with_columns(
            pl.when(small).then(pl.col("_level") + 1).otherwise(pl.col("_level")).alias("_level")
        )
    work = work.with_columns(_generalised(pl.col("_level")))
    # A year's fully generalised group still below k: fold in the smallest groups whole.
    while True:
        sizes = work.group_by(groups).agg(pl.len().alias("n"), pl.col("_level").max())
        short = sizes.filter((pl.col("n") < k) & (pl.col("_level") == top)).sort("financial_year")
        if short.is_empty():
            break
        year = short["financial_year"][0]
        donors = sizes.filter((pl.col("financial_year") == year) & (pl.col("_level") < top)).sort(
            "n", "_age_band", "_sex", "_district"
        )
        if donors.is_empty():
            break
        donor = donors.row(0, named=True)
        chosen = (
            (pl.col("financial_year") == year)
            & (pl.col("_age_band") == donor["_age_band"])
            & (pl.col("_sex") == donor["_sex"])
            & (pl.col("_district") == donor["_district"])
        )
        work = work.with_columns(
            pl.when(chosen).then(pl.lit(top, pl.Int8)).otherwise(pl.col("_level")).alias("_level")
        ).with_columns(_generalised(pl.col("_level")))
    sizes = work.group_by(groups).agg(pl.len().alias("n"))
    levels = work["_level"].value_counts()
    report = KAnonymityReport(
        k=k,
        people_by_level={K_ANONYMITY_LEVELS[lvl]: int(n) for lvl, n in sorted(levels.iter_rows())},
        smallest_group=int(sizes.select(pl.col("n").min().fill_null(0)).item()),
        groups_below_k=int((sizes["n"] < k).sum()),
    )
    # A blanked quasi-identifier is null in the export, age band and district alike.
    out = work.with_columns(
        pl.when(pl.col("_age_band") == "")
        .then(None)
        .otherwise(pl.col("_age_band"))
        .alias("age_band"),
        pl.col("_sex").alias("sex"),
        pl.when(pl.col("_district") == "")
        .then(None)
        .otherwise(pl.col("_district"))
        .alias("postcode_district"),
    ).drop("_age_band", "_sex", "_district", "_level")
    return out, report
