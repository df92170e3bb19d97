"""Dagster resources: the warehouse, the MLflow store and the data root, built from OSESettings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from ose_assets.io_manager import OSEDuckDBIOManager
from ose_assets.settings import OSESettings

REGISTERED_MODEL_NAME = "ose-opportunity-model"
EXPERIMENT_NAME = "ose"


class WarehouseResource(DuckDBResource):
    """dagster-duckdb's resource, closing its connection when the step fails too: upstream closes it only
    after a clean exit, so a failed step's connection (and its buffer pool and file lock) lingered until
    garbage collection, and the next open of the file with another configuration failed."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with super().get_connection() as conn:
            try:
                yield conn
            finally:
                conn.close()


class DataRootResource(dg.ConfigurableResource):
    """The OSE data root: inbox, truth (never read by the pipeline), serving copy."""

    data_dir: str

    @property
    def settings(self) -> OSESettings:
        return OSESettings(data_dir=Path(self.data_dir))


class MLflowResource(dg.ConfigurableResource):
    """MLflow tracking store and model registry under the data root, with absolute URIs (rewritten to
    this data root when the directory was copied or moved: model/store.py)."""

    tracking_uri: str
    artifact_uri: str
    experiment_name: str = EXPERIMENT_NAME
    registered_model_name: str = REGISTERED_MODEL_NAME
    ui_url: str = "http://127.0.0.1:5000"

    def configure(self) -> str:
        """Point the mlflow client at this store; return the experiment id (created if missing)."""
        import mlflow

        from ose_assets.model.store import relocate_artifact_root

        relocate_artifact_root(
            Path(self.tracking_uri.removeprefix("sqlite:///")), self.experiment_name, self.artifact_uri
        )
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        experiment = mlflow.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            return mlflow.create_experiment(self.experiment_name, artifact_location=self.artifact_uri)
        return experiment.experiment_id

    def client(self):
        from mlflow import MlflowClient

        self.configure()
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def ui_links(self, run_id: str | None, version: str | None) -> dict[str, dg.MetadataValue]:
        """MLflow UI links (settings mlflow_ui_url) of a run and a registered version, for asset metadata."""
        links = {}
        if run_id:
            experiment_id = self.client().get_run(run_id).info.experiment_id
            links["mlflow_run"] = dg.MetadataValue.url(
                f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"
            )
        if version and version != "unregistered":
            links["mlflow_model_version"] = dg.MetadataValue.url(
                f"{self.ui_url}/#/models/{self.registered_model_name}/versions/{version}"
            )
        return links


def build_resources(settings: OSESettings | None = None) -> dict[str, object]:
    """Resources for one data root; tests pass a temporary one."""
    settings = settings or OSESettings()
    settings.ensure_dirs()
    database, config = str(settings.warehouse_path), settings.duckdb_config()
    return {
        "warehouse": WarehouseResource(database=database, connection_config=config),
        "io_manager": OSEDuckDBIOManager(database=database, connection_config=config),
        "data_root": DataRootResource(data_dir=str(settings.data_dir)),
        "mlflow": MLflowResource(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_uri=settings.mlflow_artifact_uri,
            ui_url=settings.mlflow_ui_url,
        ),
    }
