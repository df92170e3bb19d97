"""Ingestion assets: the `raw` group (landed inbox files) and the `normalized` group (clean tables).

Thin wrappers over ose_assets.ingestion.{landing, companies, signals, articles, outcomes}; the checks
enforce the reconciliation of every landed file and the keys of the normalized tables. The normalized
builds are reused when their inputs did not change (ose_assets.ingestion.rebuild); the asset is then
still materialized, with the same metadata and `rebuilt: false`.
"""

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from ose_assets.ingestion import (
    articles,
    bodacc,
    companies,
    landing,
    outcomes,
    preflight,
    rebuild,
    reference,
    signals,
)
from ose_assets.ingestion.spec import ensure_raw_table
from ose_assets.resources import DataRootResource
from ose_assets.settings import model_config, today_paris
from ose_assets.warehouse import frame_to_markdown, markdown_preview, replace_table, table_metadata

RAW_SPECS = {
    spec.table: spec
    for spec in (
        companies.UNITE_LEGALE_SPEC,
        companies.ETABLISSEMENT_SPEC,
        companies.COMPANY_JSON_SPEC,
        signals.FEED_SPEC,
        bodacc.BODACC_SPEC,
        articles.ARTICLE_SPEC,
        outcomes.OUTCOME_SPEC,
    )
}
RAW_RECORD_KEYS = [dg.AssetKey(table.split(".")) for table in RAW_SPECS]
MANIFEST_KEY = dg.AssetKey(["raw", "manifest"])
RAW_QUARANTINE_KEY = dg.AssetKey(["raw", "quarantine_records"])
COMPANIES_KEY = dg.AssetKey(["normalized", "companies"])
SIGNALS_KEY = dg.AssetKey(["normalized", "signals"])
ARTICLES_KEY = dg.AssetKey(["normalized", "articles"])
ARTICLE_COMPANIES_KEY = dg.AssetKey(["normalized", "article_companies"])
OUTCOMES_KEY = dg.AssetKey(["normalized", "outcomes"])
QUARANTINE_KEY = dg.AssetKey(["normalized", "quarantine"])
QUARANTINE_TABLE = "normalized.quarantine"


def _raw_spec(key: dg.AssetKey, description: str, deps=()) -> dg.AssetSpec:
    return dg.AssetSpec(key, group_name="raw", kinds={"duckdb"}, description=description, deps=list(deps))


@dg.multi_asset(
    specs=[
        _raw_spec(MANIFEST_KEY, "One row per landed inbox file: content hash, size, record counts, status."),
        _raw_spec(RAW_QUARANTINE_KEY, "Records rejected at landing, with reason (appended per file)."),
        *(
            _raw_spec(key, f"Accepted records of `{'.'.join(key.path)}`, appended once per new file.")
            for key in RAW_RECORD_KEYS
        ),
    ],
    can_subset=False,
)
def raw_inbox(context: dg.AssetExecutionContext, warehouse: DuckDBResource, data_root: DataRootResource):
    """Land every new inbox file (content never landed before) into the raw tables."""
    settings = data_root.settings
    with warehouse.get_connection() as con:
        results = landing.land_inbox(
            con, settings.inbox_dir, today_paris(), preflight.Limits.from_settings(settings)
        )
        for spec in RAW_SPECS.values():
            ensure_raw_table(con, spec)
        landed = pl.DataFrame(
            [vars(r) for r in results],
            schema={
                "file_path": pl.String,
                "source": pl.String,
                "file_hash": pl.String,
                "status": pl.String,
                "records_read": pl.Int64,
                "records_loaded": pl.Int64,
                "records_quarantined": pl.Int64,
                "duplicates_dropped": pl.Int64,
                "reason_code": pl.String,
                "reason_detail": pl.String,
            },
        )
        rejected = landed.filter(pl.col("status") == "rejected")
        for row in rejected.iter_rows(named=True):
            context.log.warning(f"rejected {row['file_path']}: {row['reason_code']} ({row['reason_detail']})")
        hashes = landed["file_hash"].drop_nulls().to_list()
        reasons = con.execute(
            f"""select source, reason_code, count(*) as records from {landing.QUARANTINE_TABLE}
            where file_hash in (select unnest(?::varchar[])) group by all order by records desc""",
            [hashes],
        ).pl()
        context.log.info(f"landed {len(results)} file(s): {landed.group_by('status').len().rows()}")
        yield dg.MaterializeResult(
            asset_key=MANIFEST_KEY,
            metadata={
                **table_metadata(con, landing.MANIFEST_TABLE),
                "files_landed": len(results),
                "records_read": int(landed["records_read"].sum()),
                "records_loaded": int(landed["records_loaded"].sum()),
                "records_quarantined": int(landed["records_quarantined"].sum()),
                "duplicates_dropped": int(landed["duplicates_dropped"].sum()),
                "files_rejected": rejected.height,
                "rejected_files": dg.MetadataValue.md(
                    frame_to_markdown(rejected.select("file_path", "reason_code", "reason_detail"))
                ),
                "files": dg.MetadataValue.md(
                    frame_to_markdown(landed.drop("file_hash", "reason_code", "reason_detail"))
                ),
                "quarantine_by_reason": dg.MetadataValue.md(frame_to_markdown(reasons)),
            },
        )
        yield dg.MaterializeResult(
            asset_key=RAW_QUARANTINE_KEY, metadata=table_metadata(con, landing.QUARANTINE_TABLE)
        )
        for key, table in zip(RAW_RECORD_KEYS, RAW_SPECS, strict=True):
            yield dg.MaterializeResult(asset_key=key, metadata=table_metadata(con, table, preview_rows=5))


@dg.asset_check(
    asset=MANIFEST_KEY, blocking=True, description="records read = loaded + quarantined + duplicates"
)
def manifest_reconciles(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        failures = landing.reconciliation(con)
    return dg.AssetCheckResult(
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "files_not_reconciling": len(failures),
            "examples": dg.MetadataValue.json([list(map(str, row)) for row in failures[:10]]),
        },
    )


@dg.asset_check(
    asset=MANIFEST_KEY,
    description="No inbox file stands rejected (unreadable, empty, not a regular file, too large): warning.",
)
def no_rejected_files(warehouse: DuckDBResource, data_root: DataRootResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        rejected = landing.rejected_files(con, data_root.settings.inbox_dir)
    return dg.AssetCheckResult(
        passed=rejected.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            None
            if rejected.is_empty()
            else "rejected: "
            + "; ".join(f"{p} ({r})" for p, r in rejected.select("inbox_path", "reason_code").rows()[:10])
        ),
        metadata={
            "files_rejected": rejected.height,
            "rejected_files": dg.MetadataValue.md(frame_to_markdown(rejected)),
        },
    )


def _normalized(key: dg.AssetKey, deps, description: str):
    return dg.asset(key=key, group_name="normalized", kinds={"duckdb"}, deps=deps, description=description)


def _built(
    built: rebuild.Built, metadata: dict, asset_key: dg.AssetKey | None = None
) -> dg.MaterializeResult:
    """The materialization of a normalized table, rebuilt or reused: its fingerprint is its data version."""
    return dg.MaterializeResult(
        asset_key=asset_key,
        metadata={**metadata, **built.metadata},
        data_version=dg.DataVersion(built.fingerprint),
    )


@_normalized(
    COMPANIES_KEY,
    [
        dg.AssetKey(["raw", "sirene_unite_legale"]),
        dg.AssetKey(["raw", "sirene_etablissement"]),
        dg.AssetKey(["raw", "company_json"]),
    ],
    "One row per SIREN: SIRENE and Recherche d'entreprises merged (newest record wins), with NAF "
    "hierarchy, headcount range, legal form family, head-office place, région and latest revenue.",
)
def normalized_companies(warehouse: DuckDBResource, data_root: DataRootResource) -> dg.MaterializeResult:
    reference_dir = data_root.settings.reference_dir
    with warehouse.get_connection() as con:
        built = rebuild.build_or_reuse(
            con,
            rebuild.COMPANIES,
            lambda: companies.build_companies(con, reference_dir),
            files=reference.reference_files(reference_dir),
        )
        by_source = con.execute(
            f"select source, count(*) from {companies.TABLE} group by 1 order by 1"
        ).fetchall()
        return _built(
            built,
            {
                **table_metadata(con, companies.TABLE),
                **built.counts,
                "by_source": dg.MetadataValue.json(dict(by_source)),
            },
        )


@_normalized(
    SIGNALS_KEY,
    [dg.AssetKey(["raw", "signal_records"]), dg.AssetKey(["raw", "bodacc_records"])],
    "One row per business event (feed and BODACC, corrections applied) in the model_config vocabulary.",
)
def normalized_signals(warehouse: DuckDBResource) -> dg.MaterializeResult:
    with warehouse.get_connection() as con:
        built = rebuild.build_or_reuse(con, rebuild.SIGNALS, lambda: signals.build_signals(con))
        return _built(
            built,
            {
                **table_metadata(con, signals.TABLE),
                **built.counts,
                "by_type": markdown_preview(
                    con,
                    f"select signal_type, source, count(*) as signals from {signals.TABLE} "
                    "group by all order by signals desc, signal_type, source",
                    40,
                ),
            },
        )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ARTICLES_KEY,
            group_name="normalized",
            kinds={"duckdb"},
            deps=[dg.AssetKey(["raw", "article_records"])],
            description="One row per article with its keyword event type and polarity.",
        ),
        dg.AssetSpec(
            ARTICLE_COMPANIES_KEY,
            group_name="normalized",
            kinds={"duckdb"},
            deps=[dg.AssetKey(["raw", "article_records"]), COMPANIES_KEY],
            description="Article -> company links: by SIREN, exact or fuzzy name, with confidence.",
        ),
    ],
    can_subset=False,
)
def normalized_articles(warehouse: DuckDBResource):
    with warehouse.get_connection() as con:
        built = rebuild.build_or_reuse(con, rebuild.ARTICLES, lambda: articles.build_articles(con))
        counts = built.counts
        yield _built(
            built,
            {
                **table_metadata(con, articles.ARTICLES_TABLE, preview_rows=5),
                "articles": counts["articles"],
            },
            ARTICLES_KEY,
        )
        yield _built(
            built,
            {
                **table_metadata(con, articles.LINKS_TABLE),
                **{k: v for k, v in counts.items() if k != "articles"},
            },
            ARTICLE_COMPANIES_KEY,
        )


@_normalized(
    OUTCOMES_KEY,
    [dg.AssetKey(["raw", "outcome_records"])],
    "One row per CRM opportunity (newest record wins): dates and won / lost / open status.",
)
def normalized_outcomes(warehouse: DuckDBResource) -> dg.MaterializeResult:
    with warehouse.get_connection() as con:
        built = rebuild.build_or_reuse(
            con, rebuild.OUTCOMES, lambda: {"outcomes": outcomes.build_outcomes(con)}
        )
        return _built(built, {**table_metadata(con, outcomes.TABLE), **built.counts})


@_normalized(
    QUARANTINE_KEY,
    [RAW_QUARANTINE_KEY, MANIFEST_KEY],
    "Every rejected record of every landed file: source file, record number, raw record, reason.",
)
def normalized_quarantine(warehouse: DuckDBResource) -> dg.MaterializeResult:
    with warehouse.get_connection() as con:
        landing.ensure_tables(con)
        replace_table(
            con,
            QUARANTINE_TABLE,
            f"""select source_file, file_hash, record_number, raw_record, reason_code, reason_detail,
                ingested_at, source
            from {landing.QUARANTINE_TABLE} order by ingested_at, source_file, record_number""",
        )
        return dg.MaterializeResult(
            metadata={
                **table_metadata(con, QUARANTINE_TABLE, preview_rows=5),
                "by_source_and_reason": markdown_preview(
                    con,
                    f"select source, reason_code, count(*) as records from {QUARANTINE_TABLE} "
                    "group by all order by records desc",
                    50,
                ),
            }
        )


def _count(warehouse: DuckDBResource, query: str) -> int:
    with warehouse.get_connection() as con:
        return con.execute(query).fetchone()[0]


@dg.asset_check(asset=COMPANIES_KEY, blocking=True, description="One row per SIREN.")
def companies_unique_siren(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    duplicates = _count(warehouse, f"select count(*) - count(distinct siren) from {companies.TABLE}")
    return dg.AssetCheckResult(passed=duplicates == 0, metadata={"duplicate_sirens": duplicates})


def _null_key_check(key: dg.AssetKey, table: str, columns: tuple[str, ...]):
    @dg.asset_check(
        asset=key, name="no_null_keys", blocking=True, description=f"No NULL in {', '.join(columns)}."
    )
    def _check(warehouse: DuckDBResource) -> dg.AssetCheckResult:
        nulls = _count(
            warehouse, f"select count(*) from {table} where " + " or ".join(f"{c} is null" for c in columns)
        )
        return dg.AssetCheckResult(passed=nulls == 0, metadata={"rows_with_null_key": nulls})

    return _check


companies_no_null_keys = _null_key_check(COMPANIES_KEY, companies.TABLE, ("siren",))
signals_no_null_keys = _null_key_check(
    SIGNALS_KEY, signals.TABLE, ("signal_id", "siren", "event_date", "signal_type")
)
outcomes_no_null_keys = _null_key_check(
    OUTCOMES_KEY, outcomes.TABLE, ("opportunity_id", "siren", "opportunity_date", "status")
)


def _unknown_siren_check(key: dg.AssetKey, table: str):
    @dg.asset_check(
        asset=key,
        name="unknown_sirens",
        additional_deps=[COMPANIES_KEY],
        description="Rows pointing at a SIREN absent from normalized.companies (warning).",
    )
    def _check(warehouse: DuckDBResource) -> dg.AssetCheckResult:
        with warehouse.get_connection() as con:
            rows, unknown, companies_unknown = con.execute(
                f"""select count(*), count(*) filter (where c.siren is null),
                    count(distinct t.siren) filter (where c.siren is null)
                from {table} t left join {companies.TABLE} c using (siren)"""
            ).fetchone()
        return dg.AssetCheckResult(
            passed=unknown == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"rows": rows, "rows_with_unknown_siren": unknown, "unknown_sirens": companies_unknown},
        )

    return _check


signals_unknown_sirens = _unknown_siren_check(SIGNALS_KEY, signals.TABLE)
outcomes_unknown_sirens = _unknown_siren_check(OUTCOMES_KEY, outcomes.TABLE)


@dg.asset_check(
    asset=QUARANTINE_KEY,
    additional_deps=[MANIFEST_KEY],
    description="Share of records quarantined, over all landed files, below ingestion.max_quarantine_rate.",
)
def quarantine_rate(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    threshold = float(model_config()["ingestion"]["max_quarantine_rate"])
    with warehouse.get_connection() as con:
        read, quarantined = con.execute(
            "select coalesce(sum(records_read), 0), coalesce(sum(records_quarantined), 0) "
            f"from {landing.MANIFEST_TABLE}"
        ).fetchone()
    rate = quarantined / read if read else 0.0
    return dg.AssetCheckResult(
        passed=rate <= threshold,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "records_read": int(read),
            "records_quarantined": int(quarantined),
            "quarantine_rate": rate,
            "max_quarantine_rate": threshold,
        },
    )
