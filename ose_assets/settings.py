"""The one place OSE reads its configuration from.

Deployment settings come from `OSE_*` environment variables (pydantic-settings); modelling knobs
(signal weights, half-lives, hyperparameters, thresholds) come from `config/model_config.yaml`.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import ByteSize
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_CONFIG_PATH = Path(__file__).resolve().parent / "config" / "model_config.yaml"
PARIS = ZoneInfo("Europe/Paris")

# Where the inbox, warehouse, MLflow store, serving copy and Dagster instance live under the data root.
INBOX_SOURCES = ("companies", "signals", "bodacc", "articles", "outcomes")


class OSESettings(BaseSettings):
    """Deployment settings, each overridable with an `OSE_<NAME>` environment variable."""

    model_config = SettingsConfigDict(env_prefix="OSE_", extra="ignore")

    data_dir: Path = REPO_ROOT / "data"
    reference_dir: Path = REPO_ROOT / "data" / "reference"
    api_key: str | None = None
    # Largest request body the API reads on /api/v1 (bytes); a larger one is 413. 1,000 SIRENs take ~16 KB.
    api_max_body_bytes: int = 1_000_000
    # Schedules and the inbox sensor start STOPPED (`ose ui --paused`) instead of RUNNING, unless their state
    # was set in the Dagster UI (the instance remembers it).
    automation_paused: bool = False
    # Exact TreeSHAP for every company by default (the API then answers every lookup from a stored response).
    # A number caps it to the ranked companies plus that many top scores, the rest approximate (explained
    # exactly on request): for models far bigger than the default, where exact TreeSHAP of 1,000,000
    # companies would take many minutes.
    exact_explanations_top_n: int | None = None
    # The warehouse's DuckDB memory limit: beyond it, large joins and sorts spill to <warehouse>.tmp under
    # the data root. 4 GB keeps a 1,000,000-company refresh within 8 GB of resident memory with the Python
    # side (DuckDB's own default, 80 % of RAM, let the training set alone take 10 GB); raise it on a
    # bigger machine. Threads, also XGBoost's (default: every core).
    duckdb_memory_limit: str | None = "4GB"
    duckdb_threads: int | None = None
    # Ingestion limits: a larger inbox file is rejected unread ("2GB", "500MB"; the default takes INSEE's
    # whole stocks: StockEtablissement, 40 M rows, is several GB); a record with a longer field is
    # quarantined as field_too_long (URLs; article bodies and JSON sub-documents; other text).
    max_file_size: ByteSize = ByteSize(16 * 1024**3)
    max_url_chars: int = 2048
    max_document_chars: int = 1_000_000
    max_field_chars: int = 4096
    # Where `mlflow ui` answers: the model asset's metadata links its MLflow run and registered version.
    mlflow_ui_url: str = "http://127.0.0.1:5000"

    def duckdb_config(self) -> dict[str, object]:
        """DuckDB connection settings of the warehouse, only those that are set."""
        config = {"memory_limit": self.duckdb_memory_limit, "threads": self.duckdb_threads}
        return {name: value for name, value in config.items() if value is not None}

    def threads(self) -> int:
        """Threads of DuckDB and XGBoost: OSE_DUCKDB_THREADS, else every core this process may use."""
        return self.duckdb_threads or len(os.sched_getaffinity(0))

    def model_post_init(self, __context: Any) -> None:
        self.data_dir = self.data_dir.expanduser().resolve()
        self.reference_dir = self.reference_dir.expanduser().resolve()

    @property
    def inbox_dir(self) -> Path:
        return self.data_dir / "inbox"

    @property
    def truth_dir(self) -> Path:
        return self.data_dir / "truth"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse" / "ose.duckdb"

    @property
    def mlflow_dir(self) -> Path:
        return self.data_dir / "mlflow"

    @property
    def mlflow_tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifact_uri(self) -> str:
        return (self.mlflow_dir / "artifacts").as_uri()

    @property
    def serving_dir(self) -> Path:
        return self.data_dir / "serving"

    @property
    def serving_path(self) -> Path:
        return self.serving_dir / "ose_serving.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    def ensure_dirs(self) -> None:
        for path in (
            *(self.inbox_dir / source for source in INBOX_SOURCES),
            self.warehouse_path.parent,
            self.mlflow_dir / "artifacts",
            self.serving_dir,
            self.dagster_home,
        ):
            path.mkdir(parents=True, exist_ok=True)


@cache
def model_config() -> dict[str, Any]:
    """Modelling configuration: signal vocabulary, weights, half-lives, hyperparameters, thresholds."""
    return yaml.safe_load(MODEL_CONFIG_PATH.read_text(encoding="utf-8"))


def automation_default_status(status_enum):
    """RUNNING, or STOPPED when OSE_AUTOMATION_PAUSED is set: the default status of schedules and sensors."""
    return status_enum.STOPPED if OSESettings().automation_paused else status_enum.RUNNING


def today_paris() -> dt.date:
    return dt.datetime.now(PARIS).date()
