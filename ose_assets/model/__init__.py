"""The opportunity model: training, calibration, evaluation, MLflow registry and the served model."""
