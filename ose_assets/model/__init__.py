"""The opportunity model: training, calibration, evaluation, MLflow registry and the served model."""

import os

# XGBoost's OpenMP threads spin while waiting by default: on a shared 2-core machine that turns a
# 0.5 s training into 10 s. Passive waiting costs nothing when the cores are free. Set before any
# OpenMP runtime loads (this package is imported before xgboost is).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
