"""SQL text built from values: quoted as DuckDB literals, never pasted in raw."""


def sql_text(value: str) -> str:
    """``value`` as an SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"
