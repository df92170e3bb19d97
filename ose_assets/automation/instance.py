"""The Dagster instance of a data root: DAGSTER_HOME=OSE_DATA_DIR/dagster_home, the repo's dagster.yaml."""

from __future__ import annotations

from pathlib import Path

from ose_assets.settings import REPO_ROOT, OSESettings

DAGSTER_YAML = REPO_ROOT / "dagster.yaml"


def prepare_dagster_home(settings: OSESettings) -> Path:
    """Create the data root's DAGSTER_HOME and (re)write its dagster.yaml from the repo's; return it.

    A copy rather than a symlink, so a data root moved or mounted elsewhere stays a complete instance.
    Run `dagster dev` / `dagster-daemon` with the environment variable DAGSTER_HOME set to the result.
    """
    if not DAGSTER_YAML.is_file():
        raise FileNotFoundError(
            f"{DAGSTER_YAML} is missing: OSE's Dagster instance config ships with the repo"
        )
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = DAGSTER_YAML.read_text(encoding="utf-8")
    target = home / "dagster.yaml"
    if not target.is_file() or target.read_text(encoding="utf-8") != config:
        staged = home / "dagster.yaml.tmp"
        staged.write_text(config, encoding="utf-8")
        staged.replace(target)
    # Create the SQLite run, event and schedule storages once: `dagster dev` starts the webserver and
    # the daemon together, and two processes migrating a fresh store at once fail ("more than one head").
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
        instance.all_instigator_state()
    return home
