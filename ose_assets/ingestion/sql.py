"""DuckDB SQL expressions shared by every source: cleaning, SIREN validation, dates, numbers.

Each function returns SQL text over a column expression, so validation runs set-wise in DuckDB.
"""

from __future__ import annotations

LA_POSTE_SIREN = "356000000"


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def clean_text(expr: str) -> str:
    """Trimmed text; empty strings and SIRENE's `[ND]` (not diffusible) become NULL."""
    return f"nullif(nullif(trim({expr}), ''), '[ND]')"


def siren_digits(expr: str) -> str:
    """The SIREN without spaces (including non-breaking ones) or dots: `853 479 236` -> `853479236`."""
    return rf"regexp_replace({clean_text(expr)}, '[\s\x{{00A0}}\x{{202F}}.]', '', 'g')"


def luhn_valid(expr: str, digits_only: bool = False) -> str:
    """Luhn checksum of a 9-digit string, unrolled (no per-row lists): digits 2, 4, 6, 8 are doubled.

    `digits_only`: the caller guarantees 9 ASCII digits, so the digits come from one integer cast
    (arithmetic on a vector: a third of the cost of nine substrings on a SIRENE stock).
    La Poste's SIREN 356000000 is accepted explicitly (its SIRETs follow another rule, see REFERENCE §2).
    """
    terms = []
    for position in range(1, 10):
        if digits_only:
            digit = f"(cast({expr} as integer) // {10 ** (9 - position)} % 10)"
        else:
            digit = f"(ascii(substr({expr}, {position}, 1)) - 48)"
        terms.append(f"(({digit} * 2) // 10 + ({digit} * 2) % 10)" if position % 2 == 0 else digit)
    return f"(({' + '.join(terms)}) % 10 = 0 or {expr} = '{LA_POSTE_SIREN}')"


def siren_rules(cleaned: str) -> tuple[tuple[str, str], ...]:
    """(condition, reason code) of an invalid cleaned SIREN, to test in this order: each condition
    holds only for SIRENs that passed the ones before it (so each is evaluated once, cheaply)."""
    return (
        (f"{cleaned} is null", "missing_siren"),
        # RE2's full match is five times cheaper than stripping the digits with ltrim().
        (f"not regexp_full_match({cleaned}, '[0-9]+')", "bad_siren_format"),
        (f"length({cleaned}) <> 9", "bad_siren_length"),
        (f"not {luhn_valid(cleaned, digits_only=True)}", "bad_siren_luhn"),
    )


def parse_timestamp(expr: str) -> str:
    """ISO dates and datetimes (with or without offset) and French `DD/MM/YYYY`; NULL if unparsable."""
    value = clean_text(expr)
    return (
        f"coalesce(try_cast({value} as timestamp), try_strptime({value}, '%d/%m/%Y'), "
        f"try_cast(try_cast({value} as timestamptz) as timestamp))"
    )


def parse_date(expr: str) -> str:
    return f"cast({parse_timestamp(expr)} as date)"


def parse_number(expr: str) -> str:
    """Numbers written `1500000`, `1 500 000,50` or `1500000.5`; NULL if unparsable."""
    return (
        rf"try_cast(replace(regexp_replace({clean_text(expr)}, '[\s\x{{00A0}}\x{{202F}}]', '', 'g'), "
        "',', '.') as double)"
    )


def normalized_name(expr: str) -> str:
    """Company name for matching: lower case, no accents, no punctuation, legal forms removed."""
    legal_forms = (
        "sas|sasu|sarl|eurl|sa|sca|scs|snc|sci|scp|scm|sel|selarl|selas|selafa|scop|scic|sem|gie|ei|eirl"
        "|micro entreprise|societe par actions simplifiee( unipersonnelle)?|societe anonyme"
        "|societe a responsabilite limitee|entreprise unipersonnelle a responsabilite limitee"
    )
    letters = rf"regexp_replace(lower(strip_accents({expr})), '[^a-z0-9]+', ' ', 'g')"
    without_forms = rf"regexp_replace({letters}, '\b({legal_forms})\b', ' ', 'g')"
    return f"nullif(trim(regexp_replace({without_forms}, ' +', ' ', 'g')), '')"
