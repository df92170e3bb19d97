"""`ose explain-run` states a finished Dagster run as finished, from the data root's instance."""

from __future__ import annotations

import re

import dagster as dg

from ose_assets.automation.instance import prepare_dagster_home
from ose_assets.monitoring.lineage import dagster_run_state
from ose_assets.settings import OSESettings


def test_finished_runs_are_stated_as_finished(tmp_path):
    home = prepare_dagster_home(OSESettings(data_dir=tmp_path))

    @dg.asset
    def ok() -> int:
        return 1

    @dg.asset
    def broken() -> int:
        raise RuntimeError("boom")

    definitions = dg.Definitions(assets=[ok, broken])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        passed = (
            definitions.resolve_implicit_global_asset_job_def()
            .get_subset(asset_selection={ok.key})
            .execute_in_process(instance=instance)
        )
        failed = (
            definitions.resolve_implicit_global_asset_job_def()
            .get_subset(asset_selection={broken.key})
            .execute_in_process(instance=instance, raise_on_error=False)
        )
        assert re.fullmatch(r"succeeded in \d+\.\d s", dagster_run_state(instance, passed.run_id))
        assert re.fullmatch(r"failed after \d+\.\d s", dagster_run_state(instance, failed.run_id))
        assert dagster_run_state(instance, "0" * 36) is None
