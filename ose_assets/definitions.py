"""The OSE code location: every stage's assets and checks, jobs, schedules, sensors and resources."""

import dagster as dg

from ose_assets import jobs
from ose_assets.automation import schedules, sensors
from ose_assets.features import assets as features
from ose_assets.ingestion import assets as ingestion
from ose_assets.model import assets as model
from ose_assets.monitoring import assets as monitoring
from ose_assets.progress import progress_logger
from ose_assets.resources import build_resources
from ose_assets.scoring import assets as scoring
from ose_assets.settings import OSESettings
from ose_assets.table_columns import with_column_schemas
from ose_assets.training import assets as training

STAGES = [ingestion, features, training, model, scoring, monitoring]


def build_definitions(settings: OSESettings | None = None) -> dg.Definitions:
    """The code location over one data root (tests pass a temporary one)."""
    return dg.Definitions(
        assets=with_column_schemas(dg.load_assets_from_modules(STAGES)),
        asset_checks=dg.load_asset_checks_from_modules(STAGES),
        jobs=[jobs.full_refresh_job, jobs.rescoring_job, jobs.replay_job],
        schedules=schedules.SCHEDULES,
        sensors=sensors.SENSORS,
        resources=build_resources(settings),
        # One process per run: every step shares the single DuckDB writer instead of racing for it.
        executor=dg.in_process_executor,
        loggers={"console": dg.colored_console_logger, "ose_progress": progress_logger},
    )


defs = build_definitions()
