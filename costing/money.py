"""How money is added: exactly, so totals do not depend on the order rows are met.

A floating-point sum depends on the order of its terms, and DuckDB meets rows in an
order that varies with its threads; a compensated sum (``fsum``) drifts less but is
still not order-free. Each cost is instead fixed to 1e-10 of a pound and added as a
decimal (exact integer arithmetic), then handed back as a double: the same inputs give
the same figures to the last bit, and millions of rows add up to the penny, without the
cost of sorting inside every aggregate.
"""

#: The exact decimal type money is added in: 28 digits of pounds, 10 of fractions.
EXACT_MONEY = "DECIMAL(38, 10)"


def exact_sum(expression: str) -> str:
    """SQL for the exact sum of a money expression, as a decimal (NULL when no rows)."""
    return f"sum(({expression})::{EXACT_MONEY})"
