"""The demo generator is byte-identical for a seed: refactors must not change a single output byte.

`demo_hashes.json` holds the sha256 of every file a small world writes (300 companies, seed 7, end date
2026-06-15), recorded with the generator before it was split into one module per format. A deliberate
change of the generated data updates the manifest (the failure message prints the new one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from ose_assets.demo.generate import generate_demo_data

MANIFEST = Path(__file__).with_name("demo_hashes.json")


def test_a_small_world_is_byte_identical_to_the_recorded_manifest(tmp_path):
    generate_demo_data(tmp_path, companies=300, seed=7, end_date=dt.date(2026, 6, 15))
    written = {
        path.relative_to(tmp_path).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(tmp_path.rglob("*"))
        if path.is_file()
    }
    expected = json.loads(MANIFEST.read_text(encoding="utf-8"))
    changed = sorted(
        name for name in expected.keys() | written.keys() if expected.get(name) != written.get(name)
    )
    assert not changed, (
        f"generated files differ from {MANIFEST.name}: {changed}\n{json.dumps(written, indent=2)}"
    )
