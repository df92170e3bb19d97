"""What every command shares: the settings of the chosen data root."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ose_assets.settings import OSESettings


def settings_for(args: argparse.Namespace) -> OSESettings:
    """Settings for the chosen data root; exported so Dagster code loaded later sees the same root."""
    if getattr(args, "data_dir", None):
        os.environ["OSE_DATA_DIR"] = str(Path(args.data_dir).resolve())
    settings = OSESettings()
    settings.ensure_dirs()
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    from ose_assets.automation.instance import prepare_dagster_home

    prepare_dagster_home(settings)
    return settings
