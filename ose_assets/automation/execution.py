"""Running the pipeline for one as-of date, in this process, through the data root's one run slot.

execute() is what `ose run` does: take the run slot (waiting, and saying for whom), decide whether the
date is current or a replay *while holding it* (so two runs started together can not both think they are
the newest), run the job, and summarise. replay() is the same for a past date only, for `ose backfill`.

A replay is a run whose as-of date is before the as-of date of the published serving copy: it scores that
date with the version that was champion then (ose_assets.model.champions), writes score_history rows for
it, and never trains, registers, promotes or publishes (the `ose_replay` job has no such assets). The
serving copy always holds the latest as-of date.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from dataclasses import dataclass, field

import dagster as dg

from ose_assets.automation.failures import describe_failure
from ose_assets.automation.instance import PID_TAG, prepare_dagster_home, run_slot
from ose_assets.scoring.publish import served_as_of
from ose_assets.settings import OSESettings
from ose_assets.warehouse import AS_OF_TAG

FULL_REFRESH = "ose_full_refresh"
REPLAY = "ose_replay"
MODEL_KEY = dg.AssetKey(["model", "opportunity_model"])
SCORES_KEY = dg.AssetKey(["scoring", "company_scores"])
SERVING_KEY = dg.AssetKey(["scoring", "serving_copy"])


@dataclass
class RunSummary:
    """What a run did, for the end of `ose run` (and the return value of execute / replay)."""

    run_id: str
    as_of: dt.date
    replay: bool
    success: bool
    served_as_of: dt.date | None
    companies: int | None = None
    excluded: int | None = None
    model_version: str | None = None
    model_reason: str | None = None
    published: bool = False
    checks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    finished_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def lines(self) -> list[str]:
        kind = "replay: score_history only" if self.replay else "current"
        companies = "none" if self.companies is None else f"{self.companies:,}"
        if self.excluded:
            companies += f" ({self.excluded:,} excluded from rankings)"
        model = f"v{self.model_version}" if self.model_version else "none"
        if self.model_reason:
            model += f": {self.model_reason}"
        if self.published:
            serving = f"published, as of {self.as_of}"
        else:
            served = self.served_as_of.isoformat() if self.served_as_of else "nothing published yet"
            serving = f"untouched (as of {served})"
        lines = [
            f"Run {self.run_id} {'succeeded' if self.success else 'FAILED'} at "
            f"{self.finished_at:%Y-%m-%d %H:%M:%S} UTC",
            f"  as-of date      : {self.as_of} ({kind})",
            f"  companies scored: {companies}",
            f"  model           : {model}",
            f"  serving copy    : {serving}",
            f"  checks          : {'all passed' if not self.checks else f'{len(self.checks)} not passed'}",
            *(f"    {check}" for check in self.checks),
            *(f"  FAILED {failure}" for failure in self.failures),
        ]
        return lines


def summarize(
    result: dg.ExecuteInProcessResult, as_of: dt.date, replay: bool, served: dt.date | None, settings
) -> RunSummary:
    """The summary of a finished run, from its events (materialization metadata, checks, failures)."""
    summary = RunSummary(result.run_id, as_of, replay, result.success, served)
    metadata: dict[dg.AssetKey, dict] = {}
    for event in result.all_events:
        if event.is_step_materialization:
            materialization = event.event_specific_data.materialization
            metadata[materialization.asset_key] = {k: v.value for k, v in materialization.metadata.items()}
        elif event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed:
            check = event.event_specific_data
            summary.checks.append(
                f"{check.severity.value}: {check.asset_check_key.to_user_string()} {check.description or ''}"
            )
        elif event.is_step_failure:
            error = event.event_specific_data.error
            summary.failures.append(describe_failure(event.step_key, error, settings.data_dir))
    scores = metadata.get(SCORES_KEY, {})
    summary.companies = scores.get("dagster/row_count")
    summary.excluded = scores.get("excluded_companies")
    summary.model_version = scores.get("model_version")
    model = metadata.get(MODEL_KEY)
    if model is not None:
        # The model step's own sentence (kept / retrained and promoted / refused); older runs: the reason.
        summary.model_reason = model.get("decision") or model.get("promotion_reason")
    else:
        summary.model_reason = scores.get("model_choice")
    summary.published = SERVING_KEY in metadata
    return summary


def execute(
    settings: OSESettings,
    as_of: dt.date,
    *,
    job_name: str = FULL_REFRESH,
    tags: dict[str, str] | None = None,
    wait: bool = True,
    say=print,
    expect_replay: bool = False,
) -> RunSummary:
    """Run `job_name` as of `as_of` in this process, one run at a time; a date before the served one runs
    the replay job instead. Raises RunSlotBusy when wait=False and another run is active."""
    from ose_assets.definitions import build_definitions

    home = prepare_dagster_home(settings)
    definitions = build_definitions(settings)
    holder = {"command": "ose run", "pid": os.getpid(), "as_of": as_of.isoformat()}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        with run_slot(settings, instance, holder, wait=wait, say=say):
            served = served_as_of(settings.serving_path)
            replay = served is not None and as_of < served
            if expect_replay and not replay:
                raise ValueError(
                    f"{as_of} is not a replay: it is not before the served as-of date ({served or 'none'})"
                )
            if replay:
                job_name = REPLAY
                say(
                    f"Replay: {as_of} is before the served as-of date {served}. It is scored with the model "
                    "that was champion on that date into score_history; the serving copy, the model "
                    "registry and the champion alias are left untouched."
                )
            run_tags = {**(tags or {}), AS_OF_TAG: as_of.isoformat(), PID_TAG: str(os.getpid())}
            result = definitions.resolve_job_def(job_name).execute_in_process(
                instance=instance,
                tags=run_tags,
                # One line per table on the console; the full event log stays in the Dagster UI.
                run_config={"loggers": {"ose_progress": {}}},
                raise_on_error=False,
            )
    return summarize(result, as_of, replay, served, settings)


def replay(settings: OSESettings, as_of: dt.date, *, wait: bool = True, say=print) -> RunSummary:
    """Score a past as-of date (before the served one) into score_history with the model that was
    champion on that date; nothing else changes. Raises ValueError for a date that is not in the past
    of the serving copy. For `ose backfill`."""
    return execute(settings, as_of, wait=wait, say=say, expect_replay=True)


def print_summary(summary: RunSummary) -> None:
    print("\n" + "\n".join(summary.lines()), file=sys.stdout if summary.success else sys.stderr)
