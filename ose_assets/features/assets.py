"""features.company_features: one row per company existing at the as-of date, and its checks."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ose_assets.features.catalog import FEATURE_CATALOG
from ose_assets.features.compute import FEATURES_TABLE, build_company_features, company_spine_query
from ose_assets.features.profile import feature_profile, share_with_signal_12m
from ose_assets.warehouse import AsOfConfig, frame_to_markdown, resolve_as_of, table_metadata

NORMALIZED_DEPS = [
    dg.AssetKey(["normalized", name]) for name in ("companies", "signals", "articles", "article_companies")
]


@dg.asset(
    key_prefix=["features"],
    name="company_features",
    group_name="features",
    kinds={"duckdb", "sql"},
    deps=NORMALIZED_DEPS,
    description="One row per company existing at the as-of date, from records dated at or before it.",
)
def company_features(
    context: dg.AssetExecutionContext, config: AsOfConfig, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    as_of = resolve_as_of(context, config.as_of)
    with warehouse.get_connection() as con:
        rows = build_company_features(con, as_of)
        share = share_with_signal_12m(con)
        metadata = {
            **table_metadata(con, FEATURES_TABLE, preview_rows=5),
            "as_of_date": dg.MetadataValue.text(as_of.isoformat()),
            "share_with_signal_12m": dg.MetadataValue.float(float(share or 0.0)),
            "feature_profile": dg.MetadataValue.md(frame_to_markdown(feature_profile(con))),
        }
    context.log.info(f"{rows} companies featurized as of {as_of}")
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(
    asset=company_features, blocking=True, description="One row per company existing at the as-of date."
)
def company_features_one_row_per_company(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        as_of = con.execute(f"select max(as_of_date) from {FEATURES_TABLE}").fetchone()[0]
        duplicates, rows, dates = con.execute(
            "select count(*) - count(distinct siren), count(*), count(distinct as_of_date) "
            f"from {FEATURES_TABLE}"
        ).fetchone()
        missing, unexpected = con.execute(
            f"""
            select
                (select count(*) from ({company_spine_query(as_of)}) s
                 where s.siren not in (select siren from {FEATURES_TABLE})),
                (select count(*) from {FEATURES_TABLE}
                 where siren not in (select siren from ({company_spine_query(as_of)})))
            """
        ).fetchone()
        active_missing = con.execute(
            f"""select count(*) from normalized.companies c
                where (c.creation_date <= ? or c.creation_date is null)
                  and (c.closed_date is null or c.closed_date > ?) and coalesce(c.is_active, true)
                  and c.siren not in (select siren from {FEATURES_TABLE})""",
            [as_of, as_of],
        ).fetchone()[0]
    passed = duplicates == 0 and missing == 0 and unexpected == 0 and active_missing == 0 and dates == 1
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "rows": rows,
            "duplicate_sirens": duplicates,
            "companies_missing": missing,
            "active_companies_missing": active_missing,
            "unexpected_companies": unexpected,
            "as_of_dates": dates,
        },
    )


def range_violations(con) -> dict[str, int]:
    """Rows out of each feature's documented range; recency may not exceed the history before the as-of
    date (earliest signal or article)."""
    bounds = []
    for f in FEATURE_CATALOG:
        conditions = []
        if f.min_value is not None:
            conditions.append(f"{f.name} < {f.min_value}")
        if f.max_value is not None:
            conditions.append(f"{f.name} > {f.max_value}")
        if f.family == "recency" and f.dtype == "int":
            source, column = (
                ("normalized.articles", "published_date")
                if f.name == "days_since_last_article"
                else ("normalized.signals", "event_date")
            )
            conditions.append(
                f"{f.name} > date_diff('day', (select min({column}) from {source}), as_of_date)"
            )
        if conditions:
            bounds.append(f"coalesce(count_if({' or '.join(conditions)}), 0) as {f.name}")
    counts = con.execute(f"select {', '.join(bounds)} from {FEATURES_TABLE}").fetchone()
    names = [b.rsplit(" as ", 1)[1] for b in bounds]
    return dict(zip(names, counts, strict=True))


@dg.asset_check(asset=company_features, blocking=True, description="No feature outside its documented range.")
def company_features_in_range(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        violations = range_violations(con)
    failing = {name: count for name, count in violations.items() if count}
    return dg.AssetCheckResult(
        passed=not failing,
        metadata={"features_checked": len(violations), "violations": dg.MetadataValue.json(failing)},
    )
