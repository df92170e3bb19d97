"""Jobs: the full refresh (`ose run`, weekly retraining), the rescoring without retraining, and the replay
of a past as-of date. Every job logs a root-cause-first sentence when a step fails."""

import dagster as dg

from ose_assets.automation.failures import describe_step_failure

STAGE_GROUPS = ("raw", "normalized", "features", "training", "model", "scoring", "monitoring")
# A replay run carries this tag: scored with the champion of its date, never trained, never published.
REPLAY_TAG = "ose/replay"
SERVING_COPY = dg.AssetKey(["scoring", "serving_copy"])
TRACK_RECORD = dg.AssetKey(["monitoring", "track_record"])
TRACK_RECORD_GROUPS = dg.AssetKey(["monitoring", "track_record_groups"])
HOOKS = {describe_step_failure}

full_refresh_job = dg.define_asset_job(
    "ose_full_refresh",
    selection=dg.AssetSelection.all(),
    description="Ingest the inbox, build features, retrain and promote, rescore, rank, publish, monitor.",
    hooks=HOOKS,
)

rescoring_job = dg.define_asset_job(
    "ose_rescoring",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("training", "model"),
    description="Ingest new files and rescore every company with the current champion (no retraining).",
    hooks=HOOKS,
)

replay_job = dg.define_asset_job(
    "ose_replay",
    selection=(
        dg.AssetSelection.all()
        - dg.AssetSelection.groups("training", "model", "monitoring")
        - dg.AssetSelection.assets(SERVING_COPY)
    )
    # The track record takes the replayed date in at once (a backfill builds it); it is published by the
    # next current run.
    | dg.AssetSelection.assets(TRACK_RECORD, TRACK_RECORD_GROUPS),
    description="Score a past as-of date with the model that was champion on that date and add it to "
    "score_history (and the track record): no training, no promotion, the serving copy untouched.",
    tags={REPLAY_TAG: "true"},
    hooks=HOOKS,
)
