"""Schedules: nightly rescoring and weekly retraining, each scoring as of its tick's date in Paris."""

import datetime as dt

import dagster as dg

from ose_assets.jobs import full_refresh_job, rescoring_job
from ose_assets.settings import PARIS, automation_default_status, model_config
from ose_assets.warehouse import AS_OF_TAG

_AUTOMATION = model_config()["automation"]


def scheduled_as_of(scheduled_execution_time: dt.datetime) -> dt.date:
    """The tick's date in Europe/Paris: a backfill of a past tick reproduces that day's scores."""
    return scheduled_execution_time.astimezone(PARIS).date()


def as_of_run_request(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(tags={AS_OF_TAG: scheduled_as_of(context.scheduled_execution_time).isoformat()})


@dg.schedule(
    name="ose_nightly_rescoring",
    job=rescoring_job,
    cron_schedule=_AUTOMATION["nightly_rescoring_cron"],
    execution_timezone=PARIS.key,
    default_status=automation_default_status(dg.DefaultScheduleStatus),
    description="Rescore every company as of the scheduled date with the current champion (no retraining).",
)
def ose_nightly_rescoring(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return as_of_run_request(context)


@dg.schedule(
    name="ose_weekly_retraining",
    job=full_refresh_job,
    cron_schedule=_AUTOMATION["weekly_retraining_cron"],
    execution_timezone=PARIS.key,
    default_status=automation_default_status(dg.DefaultScheduleStatus),
    description="Rebuild the training set, retrain, apply the promotion rule, then rescore as of the date.",
)
def ose_weekly_retraining(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return as_of_run_request(context)


SCHEDULES = [ose_nightly_rescoring, ose_weekly_retraining]
