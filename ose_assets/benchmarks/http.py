"""What the HTTP benchmarks share: a uvicorn subprocess over a data dir, and latency figures."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def summary(timings: list[float]) -> dict[str, float]:
    """Median and p99 of timings in ms, rounded."""
    timings = sorted(timings)
    return {
        "median_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[max(0, int(0.99 * len(timings)) - 1)], 2),
    }


def sequential_timings(url: str, paths: list[tuple[str, dict]], headers: dict | None = None) -> list[float]:
    """Requests one after the other over one keep-alive connection (latency without queueing), in ms."""
    timings = []
    with httpx.Client(base_url=url, timeout=30, headers=headers) as http:
        for path, params in paths:
            start = time.perf_counter()
            http.get(path, params=params).raise_for_status()
            timings.append((time.perf_counter() - start) * 1000)
    return timings


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sequential_latency(url: str, paths: list[tuple[str, dict]]) -> dict[str, float]:
    return summary(sequential_timings(url, paths))


@contextlib.contextmanager
def api_server(
    data_dir: Path, workers: int, env: dict | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`ose api`'s app in uvicorn (uvloop + httptools, no access log) on a free loopback port, serving
    data_dir; yields its URL and process once /health answers 200. `env` adds variables (None removes
    one)."""
    environment = os.environ | {"OSE_DATA_DIR": str(data_dir)} | (env or {})
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ose_assets.api.server:app_from_environment", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
        env={name: value for name, value in environment.items() if value is not None},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the API did not start")
            time.sleep(0.5)
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=30)
