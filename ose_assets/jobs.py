"""Jobs: the full refresh (`ose run`, weekly retraining) and the rescoring without retraining."""

import dagster as dg

STAGE_GROUPS = ("raw", "normalized", "features", "training", "model", "scoring", "monitoring")

full_refresh_job = dg.define_asset_job(
    "ose_full_refresh",
    selection=dg.AssetSelection.all(),
    description="Ingest the inbox, build features, retrain and promote, rescore, rank, publish, monitor.",
)

rescoring_job = dg.define_asset_job(
    "ose_rescoring",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("training", "model"),
    description="Ingest new files and rescore every company with the current champion (no retraining).",
)
