"""Small synthetic normalized.* tables for the training and model tests (not the demo generator).

Companies emit signals at a company-specific rate; a positive signal opens an opportunity 5-40 days
later with a probability that depends on its type, which is won half of the time: conversion is
learnable from the signal features, as in the demo data, and everything is a deterministic hash of
the seed.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ose_assets.model.served_model import CHAMPION_ALIAS
from ose_assets.resources import REGISTERED_MODEL_NAME, build_resources
from ose_assets.settings import OSESettings, model_config
from ose_assets.training.snapshots import build_training_set, plan_splits, snapshot_dates

AS_OF = dt.date(2025, 6, 30)


def _u(expr: str, salt: int, seed: int) -> str:
    """Uniform [0, 1) from a hash of an expression."""
    return f"((hash({expr}, {salt}, {seed}) % 1000000) / 1000000.0)"


def make_normalized(
    con: duckdb.DuckDBPyConnection,
    companies: int = 1500,
    signals_per_company: float = 6.0,
    open_rate: float = 1.0,
    seed: int = 0,
    as_of: dt.date = AS_OF,
) -> None:
    """normalized.companies / signals / articles / article_companies / outcomes with contract columns.

    open_rate scales the chance that a positive signal opens an opportunity (0 = no outcome at all).
    """
    day = f"date '{as_of.isoformat()}'"
    n_signals = int(companies * signals_per_company)
    con.execute("create schema if not exists normalized")
    con.execute(f"""
        create or replace table normalized.companies as
        select lpad((100000000 + i)::varchar, 9, '0') as siren, 'Société ' || i as name,
            '62.01Z' as naf_code, 'Programmation informatique' as naf_label,
            ['C', 'F', 'G', 'J', 'M'][1 + (hash(i + {seed}) % 5)::int] as naf_section,
            'Section' as naf_section_label,
            '62' as naf_division, '62.0' as naf_group, '62.01' as naf_class,
            '11' as headcount_band, (hash(i * 3 + {seed}) % 10)::smallint as headcount_band_rank,
            10 as headcount_min, 19 as headcount_max, 'PME' as category, '5710' as legal_form_code,
            ['SAS', 'SARL', 'SA'][1 + (hash(i * 5 + {seed}) % 3)::int] as legal_form_family,
            date '2000-01-01' + (hash(i * 7 + {seed}) % 8000)::int as creation_date,
            case when i % 50 = 0 then {day} - 200 end as closed_date, i % 50 <> 0 as is_active,
            1 as establishment_count, 1e6 as revenue, 2023 as revenue_year, '75056' as commune_code,
            '75001' as postcode, '75' as departement_code,
            ['11', '84', '93', '76'][1 + (hash(i * 11 + {seed}) % 4)::int] as region_code,
            'Région' as region_name,
            'sirene' as source, {day} as record_date
        from range({companies}) t(i)
    """)
    # Active companies (a fifth) emit most signals; a signal's type is hiring, fundraising, contract
    # win (positive) or a legal / accounts event (neutral).
    con.execute(f"""
        create or replace table normalized.signals as
        with raw as (
            select i,
                case when {_u("i", 1, seed)} < 0.6 then (hash(i * 13 + {seed}) % {max(companies // 5, 1)})
                     else (hash(i * 17 + {seed}) % {companies}) end as company,
                {day} - (hash(i * 19 + {seed}) % 1000)::int as event_date,
                ['hiring', 'fundraising', 'contract_win', 'legal_modification', 'accounts_filed']
                    [1 + (hash(i * 23 + {seed}) % 5)::int] as signal_type
            from range({n_signals}) t(i)
        )
        select md5(i::varchar) as signal_id, lpad((100000000 + company)::varchar, 9, '0') as siren,
            event_date, signal_type, 'synthetic' as signal_family, 1::tinyint as polarity,
            null::double as magnitude, 'crm' as source, 'ref' || i as source_ref, null::varchar as source_url,
            'synthetic' as description,
            'fixture' as file_hash, now()::timestamp as ingested_at
        from raw
    """)
    con.execute("""
        create or replace table normalized.articles (article_id varchar, url varchar, published_date date,
            published_at timestamp, title varchar, text varchar, source varchar, event_type varchar,
            polarity tinyint)
    """)
    con.execute("""
        create or replace table normalized.article_companies (article_id varchar, siren varchar,
            match_method varchar, confidence double)
    """)
    con.execute(f"""
        create or replace table normalized.outcomes as
        with opened as (
            select signal_id, siren, event_date + 5 + (hash(signal_id) % 35)::int as opportunity_date,
                {_u("signal_id", 2, seed)} as u_won, (hash(signal_id) % 50)::int as cycle_days
            from normalized.signals
            where {_u("signal_id", 3, seed)} < {open_rate} * case signal_type
                when 'fundraising' then 0.30 when 'hiring' then 0.15 when 'contract_win' then 0.10
                else 0.01 end
        )
        select 'opp-' || signal_id as opportunity_id, siren, opportunity_date,
            case when opportunity_date + 10 + cycle_days <= {day} then opportunity_date + 10 + cycle_days end
                as closed_date,
            case when opportunity_date + 10 + cycle_days > {day} then 'open'
                 when u_won < 0.5 then 'won' else 'lost' end as status
        from opened where opportunity_date <= {day}
    """)


# ---- model tests: a training set on the synthetic warehouse, a temporary data root --------------
RULES = {"max_auc_drop": 0.005, "max_ece_increase": 0.01}
TRAINED_AT = dt.datetime(2025, 7, 1, 8, 0)


def build_training(con: duckdb.DuckDBPyConnection, **fixture) -> None:
    make_normalized(con, **fixture)
    settings = model_config()["training"]
    horizon = int(settings["horizon_days"])
    plan = plan_splits(
        snapshot_dates(AS_OF, int(settings["history_months"]), horizon),
        horizon,
        int(settings["test_months"]),
        int(settings["validation_months"]),
    )
    build_training_set(con, plan, horizon)


def data_root(tmp_path):
    settings = OSESettings(data_dir=tmp_path)
    resources = build_resources(settings)
    return settings, resources


def version_tag(resources, version: str, key: str) -> str:
    return resources["mlflow"].client().get_model_version(REGISTERED_MODEL_NAME, version).tags[key]


def champion_version(resources) -> str:
    return str(
        resources["mlflow"].client().get_model_version_by_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS).version
    )
