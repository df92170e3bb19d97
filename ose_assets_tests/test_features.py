"""Feature store: each family on hand-made tables, as-of semantics, one code path, the asset."""

from __future__ import annotations

import datetime as dt
import re

import dagster as dg
import duckdb
import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ose_assets.features import assets as feature_assets
from ose_assets.features.catalog import (
    ARTICLES_EVIDENCE,
    FEATURE_CATALOG,
    WINDOW_MONTHS,
    categorical_feature_names,
    data_dictionary_section,
    feature_names,
    lookback_months,
    model_feature_names,
    signal_types,
)
from ose_assets.features.compute import build_company_features, company_spine_query, features_query
from ose_assets.resources import build_resources
from ose_assets.settings import OSESettings

AS_OF = dt.date(2024, 6, 30)
DDL = {
    "companies": """siren varchar, name varchar, naf_code varchar, naf_label varchar, naf_section varchar,
        naf_section_label varchar, naf_division varchar, naf_group varchar, naf_class varchar,
        headcount_band varchar, headcount_band_rank smallint,
        headcount_min integer, headcount_max integer,
        category varchar, legal_form_code varchar, legal_form_family varchar, creation_date date,
        closed_date date, is_active boolean, establishment_count integer,
        revenue double, revenue_year integer,
        commune_code varchar, postcode varchar, departement_code varchar, region_code varchar,
        region_name varchar, source varchar, record_date date""",
    "signals": """signal_id varchar, siren varchar, event_date date, signal_type varchar,
        signal_family varchar,
        polarity tinyint, magnitude double, source varchar, source_ref varchar, source_url varchar,
        description varchar, file_hash varchar, ingested_at timestamp""",
    "articles": """article_id varchar, url varchar, published_date date, published_at timestamp,
        title varchar,
        text varchar, source varchar, event_type varchar, polarity tinyint""",
    "article_companies": "article_id varchar, siren varchar, match_method varchar, confidence double",
}


# --- tiny warehouse helpers ---------------------------------------------------------------------------


def create_normalized(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists normalized")
    for table, columns in DDL.items():
        con.execute(f"create or replace table normalized.{table} ({columns})")


def add_company(con, siren: str, **values) -> None:
    row = {
        "siren": siren,
        "name": f"Société {siren}",
        "naf_code": "62.01Z",
        "naf_section": "J",
        "naf_division": "62",
        "headcount_band": "11",
        "headcount_band_rank": 3,
        "headcount_min": 10,
        "headcount_max": 19,
        "category": "PME",
        "legal_form_code": "5710",
        "legal_form_family": "SAS",
        "creation_date": dt.date(2010, 1, 1),
        "closed_date": None,
        "is_active": True,
        "establishment_count": 1,
        "revenue": None,
        "revenue_year": None,
        "region_code": "11",
        "source": "sirene",
        "record_date": dt.date(2024, 1, 1),
    } | values
    con.execute(
        f"insert into normalized.companies by name select {', '.join(f'?::{_type(k)} as {k}' for k in row)}",
        list(row.values()),
    )


def _type(column: str) -> str:
    match = re.search(rf"\b{column} (\w+)", DDL["companies"])
    return match.group(1)


def add_signal(con, siren: str, event_date: dt.date, signal_type: str, source: str = "crm") -> None:
    spec = signal_types()[signal_type]
    con.execute(
        """insert into normalized.signals (signal_id, siren, event_date, signal_type, signal_family, polarity,
               source, source_ref) values (?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            f"{siren}-{event_date}-{signal_type}-{source}-{_next()}",
            siren,
            event_date,
            signal_type,
            spec["family"],
            spec["polarity"],
            source,
            "ref",
        ],
    )


def add_article(
    con, siren: str, published: dt.date, event_type: str = "other", polarity: int = 0, confidence: float = 1.0
) -> None:
    article_id = f"art-{_next()}"
    con.execute(
        """insert into normalized.articles (article_id, url, published_date, published_at, title, source,
               event_type, polarity) values (?, ?, ?, ?, 't', 'press', ?, ?)""",
        [
            article_id,
            f"https://example.org/{article_id}",
            published,
            dt.datetime.combine(published, dt.time(9)),
            event_type,
            polarity,
        ],
    )
    con.execute(
        "insert into normalized.article_companies values (?, ?, 'exact_name', ?)",
        [article_id, siren, confidence],
    )


_counter = iter(range(10**9))


def _next() -> int:
    return next(_counter)


def features(con, as_of: dt.date = AS_OF) -> dict[str, dict]:
    """Features by siren; floats rounded: DuckDB's parallel sums may differ in the last bits."""
    frame = con.execute(features_query(company_spine_query(as_of))).pl()
    return {
        row["siren"]: {k: round(v, 9) if isinstance(v, float) else v for k, v in row.items()}
        for row in frame.iter_rows(named=True)
    }


@pytest.fixture
def con():
    connection = duckdb.connect()
    create_normalized(connection)
    yield connection
    connection.close()


def days_before(n: int) -> dt.date:
    return AS_OF - dt.timedelta(days=n)


# --- catalog ------------------------------------------------------------------------------------------


def test_catalog_names_types_and_helpers(con):
    names = feature_names()
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)
    assert {
        "days_since_last_signal",
        "funding_signals_12m",
        "hiring_signals_3m",
        "decayed_signal_intensity",
        "momentum_3m_vs_9m",
        "latest_revenue",
        "region_code",
    } <= set(names)
    assert "last_red_flag_date" in names and "last_red_flag_date" not in model_feature_names()
    assert set(categorical_feature_names()) == {
        "latest_article_event_type",
        "category",
        "legal_form_family",
        "naf_section",
        "naf_division",
        "region_code",
    }
    columns = con.execute(f"describe ({features_query(company_spine_query(AS_OF))})").fetchall()
    assert [c[0] for c in columns] == ["siren", "as_of_date", *names]
    sql_types = {
        "int": "INTEGER",
        "float": "DOUBLE",
        "bool": "BOOLEAN",
        "category": "VARCHAR",
        "date": "DATE",
    }
    assert [c[1] for c in columns[2:]] == [sql_types[f.dtype] for f in FEATURE_CATALOG]


def test_data_dictionary_lists_every_feature():
    section = data_dictionary_section()
    for name in feature_names():
        assert f"| {name} |" in section
    from ose_assets.features.catalog import DATA_DICTIONARY_PATH

    assert section in DATA_DICTIONARY_PATH.read_text(encoding="utf-8"), (
        "run python -m ose_assets.features.catalog"
    )


# --- feature families on hand-made tables -------------------------------------------------------------


def test_recency(con):
    add_company(con, "000000001")
    add_signal(con, "000000001", days_before(10), "hiring")
    add_signal(con, "000000001", days_before(40), "receivership")
    add_signal(con, "000000001", days_before(0), "accounts_filed")  # same day counts
    add_signal(con, "000000001", AS_OF + dt.timedelta(days=1), "fundraising")  # after: ignored
    add_article(con, "000000001", days_before(5))
    row = features(con)["000000001"]
    assert row["days_since_last_signal"] == 0
    assert row["days_since_last_positive_signal"] == 10
    assert row["days_since_last_red_flag"] == 40
    assert row["last_red_flag_date"] == days_before(40)
    assert row["last_positive_signal_date"] == days_before(10)
    assert row["days_since_last_article"] == 5


def test_history_before_the_lookback_is_nothing_within_it(con):
    """Training and scoring see one window: a record older than the lookback reads as no record."""
    start = AS_OF - relativedelta(months=lookback_months())
    add_company(con, "000000001")
    add_signal(con, "000000001", start, "fundraising")  # the day the lookback starts after: outside
    add_article(con, "000000001", start)
    add_company(con, "000000002")
    add_signal(con, "000000002", start + dt.timedelta(days=1), "fundraising")  # first day inside
    add_article(con, "000000002", start + dt.timedelta(days=1))
    rows = features(con)
    outside, inside = rows["000000001"], rows["000000002"]
    for name in ("days_since_last_signal", "days_since_last_positive_signal", "days_since_last_article"):
        assert outside[name] is None
        assert inside[name] == (AS_OF - start).days - 1
    assert (outside["last_signal_date"], outside["latest_article_event_type"]) == (None, None)
    assert (outside["decayed_signal_intensity"], inside["decayed_signal_intensity"] > 0) == (0, True)


def test_volume_windows_and_families(con):
    add_company(con, "000000001")
    for age, kind in [
        (10, "fundraising"),
        (80, "hiring"),
        (100, "capital_increase"),
        (200, "new_site"),
        (300, "contract_win"),
        (400, "fundraising"),
        (20, "layoffs"),
    ]:
        add_signal(con, "000000001", days_before(age), kind)
    row = features(con)["000000001"]
    assert (row["signals_3m"], row["signals_6m"], row["signals_12m"]) == (3, 4, 6)
    assert (row["funding_signals_3m"], row["funding_signals_6m"], row["funding_signals_12m"]) == (1, 2, 2)
    assert (row["hiring_signals_3m"], row["expansion_signals_12m"], row["contracts_signals_12m"]) == (1, 1, 1)
    assert (row["negative_signals_3m"], row["layoffs_count_12m"], row["leadership_signals_12m"]) == (1, 1, 0)
    assert (row["positive_signals_3m"], row["positive_signals_12m"]) == (2, 5)


def test_window_boundaries_are_calendar_months(con):
    add_company(con, "000000001")
    add_signal(con, "000000001", dt.date(2024, 3, 30), "hiring")  # 30 June - 3 months: outside 3m
    add_signal(con, "000000001", dt.date(2024, 3, 31), "hiring")  # inside 3m
    add_signal(con, "000000001", dt.date(2023, 6, 30), "hiring")  # 12 months before: outside 12m
    row = features(con)["000000001"]
    assert (row["signals_3m"], row["signals_6m"], row["signals_12m"]) == (1, 2, 2)


def test_diversity(con):
    add_company(con, "000000001")
    add_signal(con, "000000001", days_before(5), "hiring", "france_travail")
    add_signal(con, "000000001", days_before(6), "hiring", "france_travail")
    add_signal(con, "000000001", days_before(7), "new_site", "press_release")
    add_signal(con, "000000001", days_before(500), "liquidation", "bodacc")  # older than 12m
    row = features(con)["000000001"]
    assert row["distinct_signal_types_12m"] == 2
    assert row["distinct_sources_12m"] == 2


def test_decayed_intensity_uses_config_weights_and_half_lives(con):
    add_company(con, "000000001")
    types = signal_types()
    add_signal(con, "000000001", days_before(0), "fundraising")
    add_signal(con, "000000001", days_before(types["hiring"]["half_life_days"]), "hiring")
    add_signal(con, "000000001", days_before(2 * types["conciliation"]["half_life_days"]), "conciliation")
    add_signal(con, "000000001", AS_OF - relativedelta(months=lookback_months()), "liquidation")  # before it
    expected = (
        types["fundraising"]["weight"] + types["hiring"]["weight"] / 2 + types["conciliation"]["weight"] / 4
    )
    assert features(con)["000000001"]["decayed_signal_intensity"] == pytest.approx(expected)


def test_red_flags_and_closed(con):
    add_company(con, "000000001")
    add_company(con, "000000002", closed_date=days_before(1), is_active=False)
    add_company(con, "000000003", closed_date=AS_OF + dt.timedelta(days=1), is_active=False)
    add_company(con, "000000004", closed_date=None, is_active=False, record_date=days_before(30))
    add_signal(con, "000000001", days_before(900), "safeguard_procedure")  # before the lookback
    add_signal(con, "000000001", days_before(100), "receivership")
    add_signal(con, "000000001", days_before(50), "radiation")
    add_signal(con, "000000001", days_before(20), "layoffs")
    add_signal(con, "000000001", days_before(10), "conciliation")  # negative, not a red flag
    add_article(con, "000000001", days_before(3), "layoffs", polarity=-1)
    # Procedures and removals older than the lookback still gate rankings; the other red-flag features
    # (counts, recency, has_red_flag) only read the lookback.
    add_company(con, "000000005")
    add_signal(con, "000000005", days_before(900), "liquidation")
    add_signal(con, "000000005", days_before(800), "radiation")
    rows = features(con)
    old = rows["000000005"]
    assert (old["has_collective_procedure"], old["is_radiated"], old["has_red_flag"]) == (True, True, False)
    assert (old["collective_procedure_count"], old["red_flag_count"], old["days_since_last_red_flag"]) == (
        0,
        0,
        None,
    )
    one = rows["000000001"]
    assert (one["collective_procedure_count"], one["has_collective_procedure"]) == (1, True)
    assert (one["red_flag_count"], one["has_red_flag"], one["is_radiated"]) == (2, True, True)
    assert (one["layoffs_count_12m"], one["negative_press_count_12m"]) == (1, 1)
    assert one["days_since_last_red_flag"] == 50
    assert [rows[s]["is_closed"] for s in ("000000001", "000000002", "000000003", "000000004")] == [
        False,
        True,
        False,
        True,
    ]


def test_momentum(con):
    add_company(con, "000000001")
    add_company(con, "000000002")
    add_company(con, "000000003")
    for age in (5, 10, 20):
        add_signal(con, "000000001", days_before(age), "hiring")
    add_signal(con, "000000002", days_before(10), "hiring")
    for age in range(100, 360, 30):  # 9 signals in the 9 months before
        add_signal(con, "000000002", days_before(age), "hiring")
    rows = features(con)
    assert rows["000000001"]["momentum_3m_vs_9m"] == pytest.approx(1.0)
    r3, r9 = 1 / 3, 9 / 9
    assert rows["000000002"]["momentum_3m_vs_9m"] == pytest.approx((r3 - r9) / (r3 + r9))
    assert rows["000000003"]["momentum_3m_vs_9m"] is None


def test_press(con):
    add_company(con, "000000001")
    add_article(con, "000000001", days_before(10), "fundraising", polarity=1)
    add_article(con, "000000001", days_before(200), "contract_win", polarity=1)
    add_article(con, "000000001", days_before(300), "layoffs", polarity=-1)
    add_article(con, "000000001", days_before(2), "radiation", polarity=-1, confidence=0.5)  # too unsure
    add_article(con, "000000001", days_before(500), "other", polarity=1)  # older than 12 months
    row = features(con)["000000001"]
    assert (row["articles_3m"], row["articles_12m"]) == (1, 3)
    assert row["press_positive_share_12m"] == pytest.approx(2 / 3)
    assert row["negative_press_count_12m"] == 1
    assert row["latest_article_event_type"] == "fundraising"
    assert row["days_since_last_article"] == 10


def test_company_attributes_and_spine(con):
    add_company(
        con,
        "000000001",
        creation_date=dt.date(2014, 6, 30),
        headcount_min=50,
        headcount_max=99,
        headcount_band_rank=6,
        revenue=1.5e6,
        revenue_year=2023,
        establishment_count=3,
        category="ETI",
        legal_form_family="SA",
        naf_section="C",
        naf_division="25",
        region_code="84",
    )
    add_company(
        con,
        "000000002",
        creation_date=None,
        headcount_min=10000,
        headcount_max=None,
        headcount_band_rank=15,
        revenue=9e6,
        revenue_year=2024,
    )
    add_company(con, "000000003", creation_date=AS_OF + dt.timedelta(days=1))  # not yet created
    rows = features(con)
    assert set(rows) == {"000000001", "000000002"}
    one, two = rows["000000001"], rows["000000002"]
    assert one["company_age_years"] == pytest.approx(3653 / 365.25)
    assert (one["headcount_band_rank"], one["headcount_midpoint"], one["establishment_count"]) == (6, 74.5, 3)
    assert (
        one["category"],
        one["legal_form_family"],
        one["naf_section"],
        one["naf_division"],
        one["region_code"],
    ) == ("ETI", "SA", "C", "25", "84")
    assert one["latest_revenue"] == 1.5e6
    assert two["company_age_years"] is None
    assert two["headcount_midpoint"] == 10000
    assert two["latest_revenue"] is None  # fiscal year 2024 accounts are not published in June 2024


def test_company_without_any_record_gets_zeros_and_nulls(con):
    add_company(con, "000000001")
    row = features(con)["000000001"]
    for f in FEATURE_CATALOG:
        value = row[f.name]
        if f.family == "company":
            continue
        if f.family in ("volume", "diversity", "positive") or f.name.endswith(("_count", "_count_12m")):
            assert value == 0, f.name
        elif f.name in ("articles_3m", "articles_12m", "decayed_signal_intensity"):
            assert value == 0, f.name
        elif f.dtype == "bool":
            assert value is False, f.name
        else:
            assert value is None, f.name


def test_multi_date_spine_equals_single_date_runs(con):
    for i in range(1, 5):
        add_company(con, f"00000000{i}", creation_date=dt.date(2023, 3 * i, 1))
    kinds = list(signal_types())
    for n in range(60):
        add_signal(
            con, f"00000000{1 + n % 4}", dt.date(2022, 1, 1) + dt.timedelta(days=17 * n), kinds[n % 20]
        )
        if n % 3 == 0:
            add_article(
                con,
                f"00000000{1 + n % 4}",
                dt.date(2022, 1, 5) + dt.timedelta(days=23 * n),
                kinds[n % 7],
                polarity=n % 3 - 1,
            )
    dates = [dt.date(2023, 6, 30), dt.date(2023, 12, 31), dt.date(2024, 6, 30)]
    spine = " union all ".join(company_spine_query(d) for d in dates)
    together = con.execute(f"select * from ({features_query(spine)}) order by as_of_date, siren").fetchall()
    separately = [
        row
        for d in dates
        for row in con.execute(
            f"select * from ({features_query(company_spine_query(d))}) order by siren"
        ).fetchall()
    ]
    assert len(together) == 2 + 4 + 4  # companies appear once created
    assert [_rounded(r) for r in together] == [_rounded(r) for r in separately]


def _rounded(row: tuple) -> tuple:
    """Float sums may differ in the last bits with the order DuckDB adds them in."""
    return tuple(round(v, 9) if isinstance(v, float) else v for v in row)


# --- as-of property -----------------------------------------------------------------------------------

SIRENS = [f"00000000{i}" for i in range(1, 5)]
TYPES = list(signal_types())
past_day = st.integers(min_value=0, max_value=1500)
signal_rows = st.lists(
    st.tuples(
        st.sampled_from(SIRENS),
        past_day,
        st.sampled_from(TYPES),
        st.sampled_from(["bodacc", "crm", "france_travail"]),
    ),
    max_size=25,
)
article_rows = st.lists(
    st.tuples(
        st.sampled_from(SIRENS),
        past_day,
        st.sampled_from(TYPES + ["other"]),
        st.integers(-1, 1),
        st.sampled_from([0.5, 0.9, 1.0]),
    ),
    max_size=10,
)


def _history(signals, articles) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    create_normalized(connection)
    for siren in SIRENS:
        add_company(connection, siren)
    add_company(connection, "000000009")  # never has a record before the as-of date
    for siren, age, kind, source in signals:
        add_signal(connection, siren, days_before(age), kind, source)
    for siren, age, kind, polarity, confidence in articles:
        add_article(connection, siren, days_before(age), kind, polarity, confidence)
    return connection


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signal_rows, article_rows, signal_rows, article_rows, st.integers(1, 3))
def test_records_after_as_of_change_nothing(
    signals, articles, future_signals, future_articles, new_companies
):
    connection = _history(signals, articles)
    before = features(connection)
    for siren, age, kind, source in future_signals:
        add_signal(connection, siren, AS_OF + dt.timedelta(days=age + 1), kind, source)
    for siren, age, kind, polarity, confidence in future_articles:
        add_article(connection, siren, AS_OF + dt.timedelta(days=age + 1), kind, polarity, confidence)
    for i in range(new_companies):
        add_company(connection, f"10000000{i}", creation_date=AS_OF + dt.timedelta(days=i + 1))
    connection.execute(
        "update normalized.companies set closed_date = ? where siren = ?",
        [AS_OF + dt.timedelta(days=3), SIRENS[0]],
    )
    assert features(connection) == before
    connection.close()


def _in_window(window: str, event: dt.date) -> bool:
    months = lookback_months() if window == "lookback" else WINDOW_MONTHS.get(window)
    if months is not None:
        return event > AS_OF - relativedelta(months=months)
    return window == "all"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signal_rows, article_rows, past_day, st.sampled_from(TYPES), st.integers(-1, 1), st.booleans())
def test_a_past_record_changes_exactly_the_expected_features(
    signals, articles, age, kind, polarity, is_article
):
    """A record dated at or before the as-of date, for a company with none yet, changes exactly the
    features whose window holds its date and whose evidence types include its type; nobody else moves."""
    connection = _history(signals, articles)
    before = features(connection)
    event = days_before(age)
    if is_article:
        add_article(connection, "000000009", event, kind, polarity)
        evidence = ARTICLES_EVIDENCE
    else:
        add_signal(connection, "000000009", event, kind)
        evidence = (kind,)
    after = features(connection)
    expected = {
        f.name
        for f in FEATURE_CATALOG
        if set(evidence) & set(f.evidence_signal_types)
        and _in_window(f.window, event)
        and not (f.name == "negative_press_count_12m" and polarity != -1)
    }
    changed = {name for name in feature_names() if after["000000009"][name] != before["000000009"][name]}
    assert changed == expected
    assert {s: r for s, r in after.items() if s != "000000009"} == {
        s: r for s, r in before.items() if s != "000000009"
    }
    connection.close()


# --- the asset ----------------------------------------------------------------------------------------


def test_company_features_asset_materializes_with_metadata_and_checks(tmp_path):
    settings_ = OSESettings(data_dir=tmp_path)
    resources = build_resources(settings_)
    with duckdb.connect(str(settings_.warehouse_path)) as warehouse:
        create_normalized(warehouse)
        add_company(warehouse, "000000001")
        add_company(warehouse, "000000002", closed_date=dt.date(2020, 1, 1), is_active=False)
        add_company(warehouse, "000000003", creation_date=dt.date(2030, 1, 1))
        add_signal(warehouse, "000000001", days_before(30), "fundraising")
        add_article(warehouse, "000000001", days_before(3), "fundraising", polarity=1)
    result = dg.materialize(
        [
            feature_assets.company_features,
            feature_assets.company_features_one_row_per_company,
            feature_assets.company_features_in_range,
        ],
        resources=resources,
        run_config=dg.RunConfig(
            {"features__company_features": feature_assets.AsOfConfig(as_of=AS_OF.isoformat())}
        ),
    )
    assert result.success
    metadata = result.asset_materializations_for_node("features__company_features")[0].metadata
    assert metadata["dagster/row_count"].value == 2
    assert metadata["share_with_signal_12m"].value == pytest.approx(0.5)
    assert "| days_since_last_signal | int |" in metadata["feature_profile"].value
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 2 and all(c.passed for c in checks)
    with duckdb.connect(str(settings_.warehouse_path)) as warehouse:
        assert warehouse.execute("select distinct as_of_date from features.company_features").fetchall() == [
            (AS_OF,)
        ]
        warehouse.execute("update features.company_features set signals_3m = -1 where siren = '000000001'")
        warehouse.execute("update features.company_features set days_since_last_signal = 99999")
        violations = feature_assets.range_violations(warehouse)
    assert violations["signals_3m"] == 1 and violations["days_since_last_signal"] == 2
    assert sum(violations.values()) == 3  # every other feature still in range


def test_build_company_features_is_idempotent(con):
    add_company(con, "000000001")
    add_signal(con, "000000001", days_before(3), "hiring")
    assert build_company_features(con, AS_OF) == 1
    first = con.execute("select * from features.company_features").fetchall()
    assert build_company_features(con, AS_OF) == 1
    assert con.execute("select * from features.company_features").fetchall() == first
