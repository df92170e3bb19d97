"""The one normalisation of labels (signal types, statuses, BODACC families and texts, CSV headers).

Accents removed (NFKD), lower case, every run of other characters (apostrophes ' and ’, hyphens,
spaces, punctuation) one `_`, the French elided articles `d'` and `l'` dropped:
"Offre d’emploi", "OFFRE D'EMPLOI", "offre-d-emploi" -> `offre_emploi`; "Levée de fonds" ->
`levee_de_fonds`. `label_key` (Python) and `label_key_sql` (DuckDB) apply the same rule; a test
checks that they agree.
"""

from __future__ import annotations

import re
import unicodedata

ELISIONS = "[dl]"


def label_key(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    words = re.sub(r"[^a-z0-9]+", "_", letters)
    return re.sub(rf"_({ELISIONS}_)+", "_", f"_{words}_").strip("_")


def label_key_sql(expr: str) -> str:
    """SQL for label_key of a text expression (NULL stays NULL)."""
    words = rf"regexp_replace(lower(strip_accents(nfc_normalize({expr}))), '[^a-z0-9]+', '_', 'g')"
    return rf"trim(regexp_replace('_' || {words} || '_', '_({ELISIONS}_)+', '_', 'g'), '_')"
