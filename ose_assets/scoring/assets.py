"""scoring assets: score every company with the champion, explain, rank, keep history, publish.

Thin assets over ose_assets.scoring.{scores, ranking, history, serving}; checks next to their assets.
"""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from ose_assets.jobs import REPLAY_TAG
from ose_assets.model.champions import champion_at
from ose_assets.model.served_model import ServedModel, load_champion, load_model_version
from ose_assets.resources import DataRootResource, MLflowResource
from ose_assets.scoring.history import append_history
from ose_assets.scoring.publish import SERVING_HISTORY_RUNS, publish_serving_copy, served_as_of
from ose_assets.scoring.ranking import TOP_K, build_top_opportunities, segment_count_mismatches
from ose_assets.scoring.report import score_distribution_markdown, top_table_markdown
from ose_assets.scoring.scores import FEATURES_TABLE, features_as_of, score_companies
from ose_assets.warehouse import AS_OF_TAG, AsOfConfig, resolve_as_of, table_metadata

SCORING = "scoring"
KINDS = {"duckdb", "polars", "xgboost"}
COMPANY_FEATURES = dg.AssetKey(["features", "company_features"])
OPPORTUNITY_MODEL = dg.AssetKey(["model", "opportunity_model"])
COMPANIES = dg.AssetKey(["normalized", "companies"])
EVIDENCE_SOURCES = [
    dg.AssetKey(["normalized", name]) for name in ("signals", "articles", "article_companies")
]


def _key(name: str) -> dg.AssetKey:
    return dg.AssetKey([SCORING, name])


def is_replay(context: dg.AssetExecutionContext) -> bool:
    return context.run.tags.get(REPLAY_TAG) == "true"


def scoring_model(
    context: dg.AssetExecutionContext, mlflow: MLflowResource, config: AsOfConfig
) -> tuple[ServedModel, str]:
    """The model that scores this run and why: the champion, or in a replay the champion of its date."""
    name = mlflow.registered_model_name
    if is_replay(context):
        as_of = resolve_as_of(context, config.as_of)
        choice = champion_at(mlflow.client(), name, as_of)
        if choice is None:
            raise dg.Failure(f"Replay of {as_of}: no version of '{name}' was ever champion.")
        context.log.info(f"replay of {as_of}: {choice.reason}")
        return load_model_version(mlflow, choice.version), f"replay: {choice.reason}"
    model = load_champion(mlflow)
    if model is None:
        raise dg.Failure(
            f"No champion model: the MLflow registry model '{name}' has no "
            "'champion' alias. Materialize model/opportunity_model (the full refresh job) first."
        )
    return model, f"current champion v{model.version}"


@dg.multi_asset(
    name="scoring__company_scores",
    specs=[
        dg.AssetSpec(
            _key("company_scores"),
            group_name=SCORING,
            kinds=KINDS,
            deps=[COMPANY_FEATURES, OPPORTUNITY_MODEL, COMPANIES, _key("signal_evidence")],
            description="One row per company of features.company_features: champion score (0–100), band, "
            "red-flag gate, rank, change and trend.",
        ),
        dg.AssetSpec(
            _key("score_reasons"),
            group_name=SCORING,
            kinds=KINDS,
            deps=[COMPANY_FEATURES, OPPORTUNITY_MODEL, _key("signal_evidence")],
            description="Top 3 factors up and down per company (SHAP), French/English sentences, evidence.",
        ),
        dg.AssetSpec(
            _key("signal_evidence"),
            group_name=SCORING,
            kinds={"duckdb"},
            deps=[COMPANY_FEATURES, *EVIDENCE_SOURCES],
            description="Most recent evidence records (signals, BODACC, press) per company and signal type.",
        ),
        dg.AssetSpec(
            _key("served_model"),
            group_name=SCORING,
            kinds={"duckdb", "mlflow"},
            deps=[OPPORTUNITY_MODEL],
            description="The champion that scored this run, serialised (ServedModel.to_bytes()).",
        ),
    ],
    can_subset=False,
)
def company_scores(
    context: dg.AssetExecutionContext,
    config: AsOfConfig,
    warehouse: DuckDBResource,
    mlflow: MLflowResource,
    data_root: DataRootResource,
):
    """Score every company with the champion, explain (exact for ranked and top N, approximate for the
    rest) and write scoring.company_scores, score_reasons, signal_evidence and served_model."""
    # Before the warehouse connection: a failure here must not leave it open.
    model, model_choice = scoring_model(context, mlflow, config)
    with warehouse.get_connection() as con:
        as_of = features_as_of(con)
        if config.as_of or context.run.tags.get(AS_OF_TAG):
            requested = resolve_as_of(context, config.as_of)
            if requested != as_of:
                raise dg.Failure(
                    f"{FEATURES_TABLE} is as of {as_of}, the run asks for {requested}: "
                    "materialize features/company_features for that date first."
                )
        run = score_companies(con, model, data_root.settings.exact_explanations_top_n)
        context.log.info(f"scored {run.companies} companies as of {run.as_of} in {run.seconds}")
        scores = con.execute("select score from scoring.company_scores").pl().get_column("score").to_numpy()
        bands = dict(
            con.execute("select band, count(*) from scoring.company_scores group by band").fetchall()
        )
        run_metadata = {
            "as_of_date": str(run.as_of),
            "model_version": str(model.version),
            "model_kind": model.kind,
            "model_choice": model_choice,
            "replay": is_replay(context),
            "seconds": dg.MetadataValue.json(run.seconds),
        }
        # Topological order: company_scores and score_reasons depend on signal_evidence.
        yield dg.MaterializeResult(
            asset_key=_key("signal_evidence"), metadata=table_metadata(con, "scoring.signal_evidence")
        )
        yield dg.MaterializeResult(asset_key=_key("served_model"), metadata=run_metadata)
        yield dg.MaterializeResult(
            asset_key=_key("score_reasons"),
            metadata={
                **table_metadata(con, "scoring.score_reasons"),
                **run_metadata,
                "exact_explanations": run.exact,
                "approximate_explanations": run.companies - run.exact,
            },
        )
        yield dg.MaterializeResult(
            asset_key=_key("company_scores"),
            metadata={
                **table_metadata(con, "scoring.company_scores"),
                **run_metadata,
                "eligible_companies": run.eligible,
                "excluded_companies": run.companies - run.eligible,
                "band_counts": dg.MetadataValue.json({band: bands.get(band, 0) for band in "ABCD"}),
                "score_distribution": dg.MetadataValue.md(score_distribution_markdown(scores)),
            },
        )


@dg.asset_check(
    asset=_key("company_scores"), description="One score row per company of features.company_features."
)
def company_scores_cover_features(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        scored, companies, duplicated = con.execute(
            f"""select (select count(*) from scoring.company_scores),
                (select count(*) from {FEATURES_TABLE}),
                (select count(*) - count(distinct siren) from scoring.company_scores)"""
        ).fetchone()
    return dg.AssetCheckResult(
        passed=scored == companies and duplicated == 0,
        metadata={"scored": scored, "companies": companies, "duplicated_sirens": duplicated},
    )


@dg.asset_check(
    asset=_key("company_scores"), description="Scores in [0, 100]; eligible rows ranked, others not."
)
def company_scores_valid(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        out_of_range, bad_rank = con.execute(
            """select count(*) filter (where score not between 0 and 100 or score is null),
                count(*) filter (
                    where is_eligible = (rank is null) or is_eligible = (exclusion_reason is not null))
            from scoring.company_scores"""
        ).fetchone()
    return dg.AssetCheckResult(
        passed=out_of_range == 0 and bad_rank == 0,
        metadata={"scores_out_of_range": out_of_range, "inconsistent_gate_rows": bad_rank},
    )


@dg.asset(
    key_prefix=[SCORING],
    group_name=SCORING,
    name="top_opportunities",
    kinds={"duckdb", "polars"},
    deps=[_key("company_scores"), _key("score_reasons")],
)
def top_opportunities(warehouse: DuckDBResource) -> dg.MaterializeResult:
    """Top 10 eligible companies overall, per région and per NAF section, with their reasons."""
    with warehouse.get_connection() as con:
        build_top_opportunities(con)
        top = con.execute("select * from scoring.top_opportunities").pl()
        scores = con.execute("select score from scoring.company_scores").pl().get_column("score").to_numpy()
        return dg.MaterializeResult(
            metadata={
                **table_metadata(con, "scoring.top_opportunities"),
                "segments": top.get_column("segment").n_unique(),
                "top_10": dg.MetadataValue.md(top_table_markdown(top)),
                "score_distribution": dg.MetadataValue.md(score_distribution_markdown(scores)),
            }
        )


@dg.asset_check(asset=top_opportunities, description=f"min({TOP_K}, eligible companies) rows per segment.")
def top_opportunities_segment_sizes(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        mismatches = segment_count_mismatches(con)
    return dg.AssetCheckResult(
        passed=mismatches.is_empty(),
        metadata={"mismatched_segments": dg.MetadataValue.json(mismatches.to_dicts()[:50])},
    )


@dg.asset_check(asset=top_opportunities, description="Scores in [0, 100]; no excluded company ranked.")
def top_opportunities_eligible_only(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        out_of_range, excluded, not_exact = con.execute(
            """select count(*) filter (where t.score not between 0 and 100),
                count(*) filter (where not s.is_eligible),
                count(*) filter (where s.explanation_method <> 'exact')
            from scoring.top_opportunities t join scoring.company_scores s using (siren)"""
        ).fetchone()
    return dg.AssetCheckResult(
        passed=out_of_range == 0 and excluded == 0 and not_exact == 0,
        metadata={
            "scores_out_of_range": out_of_range,
            "excluded_ranked": excluded,
            "ranked_not_exact": not_exact,
        },
    )


@dg.asset(
    key_prefix=[SCORING],
    group_name=SCORING,
    name="score_history",
    kinds={"duckdb"},
    deps=[_key("company_scores")],
)
def score_history(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> dg.MaterializeResult:
    """Add this run's scores in as-of order; re-scoring an as-of date replaces its rows (one transaction)."""
    with warehouse.get_connection() as con:
        written = append_history(con)
        runs = con.execute("select count(distinct as_of_date) from scoring.score_history").fetchone()[0]
        return dg.MaterializeResult(
            metadata={
                **table_metadata(con, "scoring.score_history"),
                "rows_written": written,
                "runs": runs,
                "replay": is_replay(context),
            }
        )


@dg.asset_check(asset=score_history, description="One row per (siren, as_of_date).")
def score_history_unique(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        duplicates = con.execute(
            "select count(*) - count(distinct (siren, as_of_date)) from scoring.score_history"
        ).fetchone()[0]
    return dg.AssetCheckResult(passed=duplicates == 0, metadata={"duplicates": duplicates})


@dg.asset(
    key_prefix=[SCORING],
    group_name=SCORING,
    name="serving_copy",
    kinds={"duckdb"},
    deps=[
        _key("company_scores"),
        _key("score_reasons"),
        _key("signal_evidence"),
        _key("served_model"),
        top_opportunities,
        score_history,
        # Published with the scores, so the API and the pages show how past rankings turned out.
        dg.AssetKey(["monitoring", "track_record"]),
        dg.AssetKey(["monitoring", "track_record_groups"]),
    ],
)
def serving_copy(warehouse: DuckDBResource, data_root: DataRootResource) -> dg.MaterializeResult:
    """Publish the serving database (OSE_DATA_DIR/serving/ose_serving.duckdb), replaced atomically.
    Never over a newer as-of date: the serving copy always holds the latest one."""
    serving_path = data_root.settings.serving_path
    published_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with warehouse.get_connection() as con:
        as_of = con.execute("select as_of_date from scoring.served_model").fetchone()[0]
    served = served_as_of(serving_path)
    if served is not None and as_of < served:
        raise dg.Failure(
            f"Not published: this run is as of {as_of} and the serving copy already holds the later "
            f"{served}. Its scores are in score_history; run a past date as a replay (`ose run --as-of`)."
        )
    with warehouse.get_connection() as con:
        model_bytes = con.execute("select model_bytes from scoring.served_model").fetchone()[0]
        feature_names = ServedModel.from_bytes(bytes(model_bytes)).feature_names
        counts = publish_serving_copy(con, serving_path, feature_names, SERVING_HISTORY_RUNS, published_at)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(serving_path)),
            "size_mb": round(serving_path.stat().st_size / 1e6, 1),
            "published_at": published_at.isoformat(timespec="seconds"),
            "tables": dg.MetadataValue.json(counts),
        }
    )
