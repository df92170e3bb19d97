"""`ose ui`: quiet start (no superseded command, no foreign dagster.yaml, no DEBUG event lines), every process
gone within 10 s of Ctrl-C to its process group, and `--paused` automations."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ose_assets.settings import REPO_ROOT


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc (whatever process group or session it moved to)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow  # the webserver, daemon and two code servers take 20-60 s to start on 2 busy cores
def test_ctrl_c_to_the_process_group_stops_every_process_of_ose_ui_within_10_s(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "ose_assets.cli", "ui", "--data-dir", str(tmp_path), "--port", str(port)]
    # Started from the repository root, where a dagster.yaml sits (Dagster must not warn about it).
    ui = subprocess.Popen(
        command, cwd=REPO_ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while True:
            assert ui.poll() is None, ui.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "ose ui did not answer"
            time.sleep(0.5)
        tree = descendants(ui.pid)
        assert len(tree) >= 4, tree  # webserver, daemon and their code servers
        os.killpg(ui.pid, signal.SIGINT)
        started = time.monotonic()
        while (ui.poll() is None or any(map(running, tree))) and time.monotonic() - started < 15:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        assert ui.poll() is not None and not [pid for pid in tree if running(pid)], "processes survived"
        assert elapsed < 10, f"stopped after {elapsed:.1f} s"
        print(f"ose ui stopped {elapsed:.1f} s after SIGINT")
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()
    output = ui.stdout.read()
    assert "SupersessionWarning" not in output and "dg dev" not in output
    assert "dagster.yaml" not in output, output
    assert " - DEBUG - " not in output
    assert f"http://127.0.0.1:{port}" in output and "Dagster UI and daemon stopped." in output


@pytest.mark.parametrize(("paused", "status"), [("0", "RUNNING"), ("1", "STOPPED")])
def test_paused_starts_schedules_and_the_sensor_stopped(paused, status):
    script = (
        "from ose_assets.automation.schedules import SCHEDULES; "
        "from ose_assets.automation.sensors import SENSORS; "
        "print(sorted({d.default_status.value for d in [*SCHEDULES, *SENSORS]}))"
    )
    env = {name: value for name, value in os.environ.items() if name != "OSE_AUTOMATION_PAUSED"}
    env["OSE_AUTOMATION_PAUSED"] = paused
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"['{status}']"
