"""A compact console logger for `ose run`: one line per materialized table and failed check."""

import logging
import sys

import dagster as dg
from dagster._core.log_manager import LOG_RECORD_METADATA_ATTR

from ose_assets.automation.failures import describe_failure
from ose_assets.settings import OSESettings


class _ProgressHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        event = (getattr(record, LOG_RECORD_METADATA_ATTR, None) or {}).get("dagster_event")
        if event is None:
            return
        line = None
        if event.is_step_materialization:
            materialization = event.event_specific_data.materialization
            rows = materialization.metadata.get("dagster/row_count")
            count = f"{rows.value:>12,} rows" if rows is not None else " " * 17
            line = f"  {count}  {materialization.asset_key.to_user_string()}"
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                line = (
                    f"  check {evaluation.severity.value}: {evaluation.asset_check_key.to_user_string()}"
                    f" {evaluation.description or ''}"
                )
        elif event.is_step_failure:
            error = event.event_specific_data.error
            line = f"  FAILED {describe_failure(event.step_key, error, OSESettings().data_dir)}"
        if line:
            print(line, file=sys.stdout, flush=True)


@dg.logger(description="One line per materialized table, failed check and failed step.")
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.getLogger("ose.progress")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(_ProgressHandler())
    return logger
