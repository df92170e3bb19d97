"""OSE, the Opportunity Scoring Engine."""

import os

# XGBoost's OpenMP threads spin while waiting by default: on a shared 2-core machine that turns a
# 0.5 s training into 10 s. Passive waiting costs nothing when the cores are free. Set here, before
# any stage imports xgboost, so training, scoring and the API all get it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Artifact downloads happen on every scoring run; their progress bars only clutter run logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
