"""What a failed step says first: the root cause, what it was writing, and where.

Dagster shows the outermost exception (e.g. `TransactionException: cannot rollback - no transaction is
active`) and chains the real cause (`No space left on device`) underneath. describe_failure walks the
chain and leads with the root cause, the table the step writes and, for a full disk, the free space:
"No space left on device while writing training.training_set (free: 6 MB in /data)". The console (the
`ose run` progress logger) and the run's event log (the jobs' failure hook) print the same sentence.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import dagster as dg
from dagster._utils.error import SerializableErrorInfo, serializable_error_info_from_exc_info

DISK_FULL = os.strerror(errno.ENOSPC)  # "No space left on device"


def error_chain(error: SerializableErrorInfo) -> list[SerializableErrorInfo]:
    """The error and its causes / contexts, outermost first."""
    chain, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        chain.append(error)
        error = error.cause or error.context
    return chain


def step_table(step_key: str) -> str:
    """The table a step writes: asset step keys are the asset key joined by '__' (schema__table)."""
    return step_key.replace("__", ".")


def free_space(path: Path) -> str:
    """Free space of the file system holding `path` (its nearest existing parent), e.g. '6 MB in /data'."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return f"{shutil.disk_usage(path).free / 1e6:,.1f} MB in {path}"


def first_line(error: SerializableErrorInfo) -> str:
    message = (error.message or "").strip().splitlines()
    return message[0] if message else error.cls_name or "error"


def describe_failure(step_key: str, error: SerializableErrorInfo, data_dir: Path | None = None) -> str:
    """Root cause first, then the table and the step; a full disk also says how much is left and where."""
    chain = error_chain(error)
    root = chain[-1]
    where = f"while writing {step_table(step_key)}"
    disk_full = next((e for e in chain if DISK_FULL in (e.message or "")), None)
    if disk_full is not None:
        free = f" (free: {free_space(data_dir)})" if data_dir is not None else ""
        return f"{DISK_FULL} {where}{free}: {first_line(disk_full)} [step {step_key}]"
    outer = "" if root is chain[0] else f"; surfaced as {first_line(chain[0])}"
    return f"{first_line(root)} {where} [step {step_key}{outer}]"


@dg.failure_hook(required_resource_keys={"data_root"})
def describe_step_failure(context: dg.HookContext) -> None:
    """Log the root-cause-first sentence into the run's event log, next to the step's failure event."""
    exception = context.op_exception
    if exception is None:
        return
    error = serializable_error_info_from_exc_info((type(exception), exception, exception.__traceback__))
    data_dir = context.resources.data_root.settings.data_dir
    context.log.error(describe_failure(context.step_key, error, data_dir))
