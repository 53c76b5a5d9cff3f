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
