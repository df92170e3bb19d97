"""Sensors: one rescoring run per batch of new inbox files (the logic lives in inbox_watch.py)."""

import dagster as dg

from ose_assets.automation.inbox_watch import InboxCursor, landed_hashes, scan_inbox
from ose_assets.jobs import rescoring_job
from ose_assets.resources import DataRootResource
from ose_assets.settings import automation_default_status, model_config, today_paris
from ose_assets.warehouse import AS_OF_TAG

INBOX_FILES_TAG = "ose/inbox_files"


@dg.sensor(
    name="ose_inbox_sensor",
    job=rescoring_job,
    minimum_interval_seconds=model_config()["automation"]["inbox_sensor_interval_seconds"],
    default_status=automation_default_status(dg.DefaultSensorStatus),
    description=(
        "Watches OSE_DATA_DIR/inbox/{companies,signals,bodacc,articles} and requests one ose_rescoring "
        "run per batch of files whose content was never seen (on its first tick, the contents already in "
        "raw.manifest count as seen). Opens the warehouse only then, read-only, for one query."
    ),
)
def ose_inbox_sensor(context: dg.SensorEvaluationContext, data_root: DataRootResource):
    settings = data_root.settings
    previous = InboxCursor.from_json(context.cursor)
    if context.cursor is None:
        # First tick: start from what ingestion already landed, not from an empty memory.
        landed = landed_hashes(settings.warehouse_path)
        if landed is None:
            busy = "First tick: the warehouse is busy (a run is writing it); reading raw.manifest next tick"
            return dg.SensorResult(skip_reason=dg.SkipReason(busy))
        previous = InboxCursor(seen_hashes=landed)
    scan = scan_inbox(settings.inbox_dir, previous)
    cursor = scan.cursor.to_json()
    summary = scan.summary()
    if not scan.new_files:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"Nothing to rescore: {summary}"), cursor=cursor)

    context.log.info(f"Requesting a rescoring: {summary}")
    for path, sha in scan.new_files:
        context.log.info(f"new content {sha[:12]} in {path}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=scan.run_key,
                tags={AS_OF_TAG: today_paris().isoformat(), INBOX_FILES_TAG: str(len(scan.new_files))},
            )
        ],
        cursor=cursor,
    )


SENSORS = [ose_inbox_sensor]
