"""Cells for spreadsheet exports."""

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value):
    """A spreadsheet cell that cannot run as a formula (OWASP CSV injection): prefix a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
