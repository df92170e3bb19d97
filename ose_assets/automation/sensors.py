"""Sensors: one rescoring run per batch of new inbox files (the logic lives in inbox_watch.py)."""

import dagster as dg

from ose_assets.automation.inbox_watch import InboxCursor, scan_inbox
from ose_assets.jobs import rescoring_job
from ose_assets.resources import DataRootResource
from ose_assets.settings import model_config, today_paris
from ose_assets.warehouse import AS_OF_TAG

INBOX_FILES_TAG = "ose/inbox_files"


@dg.sensor(
    name="ose_inbox_sensor",
    job=rescoring_job,
    minimum_interval_seconds=model_config()["automation"]["inbox_sensor_interval_seconds"],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Watches OSE_DATA_DIR/inbox/{companies,signals,bodacc,articles} and requests one ose_rescoring "
        "run per batch of files whose content was never seen. Never opens the warehouse."
    ),
)
def ose_inbox_sensor(context: dg.SensorEvaluationContext, data_root: DataRootResource):
    scan = scan_inbox(data_root.settings.inbox_dir, InboxCursor.from_json(context.cursor))
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
