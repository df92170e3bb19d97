"""The inbox sensor, evaluated tick after tick with Dagster's sensor context over a temporary inbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ose_assets.automation.inbox_watch import InboxCursor, file_sha256, scan_inbox
from ose_assets.automation.sensors import INBOX_FILES_TAG, ose_inbox_sensor
from ose_assets.resources import DataRootResource
from ose_assets.settings import OSESettings, today_paris
from ose_assets.warehouse import AS_OF_TAG


class Ticker:
    """Evaluates the sensor like the daemon does: each tick gets the cursor the previous one stored."""

    def __init__(self, data_dir: Path, instance: dg.DagsterInstance):
        self.data_root = DataRootResource(data_dir=str(data_dir))
        self.instance = instance
        self.cursor: str | None = None

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"data_root": self.data_root}
        )
        result = ose_inbox_sensor(context)
        assert isinstance(result, dg.SensorResult)
        self.cursor = result.cursor
        return result


@pytest.fixture
def inbox(tmp_path) -> Path:
    settings = OSESettings(data_dir=tmp_path / "data")
    settings.ensure_dirs()
    return settings.inbox_dir


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def ticker(inbox, instance) -> Ticker:
    return Ticker(inbox.parent, instance)


def land(inbox: Path, relative: str, content: str) -> Path:
    """Write then rename, as producers are told to."""
    path = inbox / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".part")
    staged.write_text(content, encoding="utf-8")
    staged.replace(path)
    return path


def skip_message(result: dg.SensorResult) -> str:
    assert not result.run_requests
    assert result.skip_reason is not None
    return result.skip_reason.skip_message


def test_empty_inbox_skips_with_a_reason(ticker):
    message = skip_message(ticker.tick())
    assert "no files" in message
    assert "inbox/signals" in message


def test_one_new_file_requests_one_rescoring_keyed_by_its_content(inbox, ticker):
    path = land(inbox, "signals/signals.jsonl", '{"siren": "552100554", "type": "fundraising"}\n')
    result = ticker.tick()
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.run_key == f"inbox:{file_sha256(path)}"
    assert request.tags[AS_OF_TAG] == today_paris().isoformat()
    assert request.tags[INBOX_FILES_TAG] == "1"
    # The next tick sees nothing new.
    assert "1 file(s) with content already seen" in skip_message(ticker.tick())


def test_same_content_again_under_same_or_another_name_triggers_nothing(inbox, ticker):
    content = '{"id": "A1", "dateparution": "2025-03-01"}\n'
    path = land(inbox, "bodacc/bodacc.jsonl", content)
    assert len(ticker.tick().run_requests) == 1
    land(inbox, "bodacc/bodacc_copy.jsonl", content)
    skip_message(ticker.tick())
    path.unlink()
    land(inbox, "bodacc/bodacc.jsonl", content)  # landed again: new mtime, same content
    skip_message(ticker.tick())


def test_modified_file_under_an_old_name_requests_again(inbox, ticker):
    path = land(inbox, "articles/articles.jsonl", '{"id": "a1"}\n')
    first = ticker.tick().run_requests[0].run_key
    land(inbox, "articles/articles.jsonl", '{"id": "a2"}\n')  # same size, other content
    second = ticker.tick().run_requests
    assert len(second) == 1
    assert second[0].run_key == f"inbox:{file_sha256(path)}" != first


def test_file_replaced_within_the_same_mtime_is_rehashed(inbox, ticker):
    path = land(inbox, "articles/articles.jsonl", '{"id": "a1"}\n')
    ticker.tick()
    mtime_ns = path.stat().st_mtime_ns
    land(inbox, "articles/articles.jsonl", '{"id": "a2"}\n')
    os.utime(path, ns=(mtime_ns, mtime_ns))  # same size and mtime: only the inode tells
    assert ticker.tick().run_requests[0].run_key == f"inbox:{file_sha256(path)}"


def test_files_being_written_are_ignored(inbox, ticker):
    (inbox / "signals" / "signals.jsonl.part").write_text("{}\n")
    (inbox / "signals" / "feed.tmp").write_text("{}\n")
    (inbox / "signals" / ".hidden.jsonl").write_text("{}\n")
    message = skip_message(ticker.tick())
    assert "ignored 3 file(s) still being written" in message


def test_fifty_files_at_once_request_one_run(inbox, ticker):
    for number in range(50):
        land(inbox, f"signals/batch_{number:02d}.jsonl", f'{{"source_ref": "r{number}"}}\n')
    result = ticker.tick()
    assert len(result.run_requests) == 1
    assert result.run_requests[0].tags[INBOX_FILES_TAG] == "50"
    skip_message(ticker.tick())


def test_a_file_whose_size_changes_between_ticks_waits(inbox, ticker):
    path = land(inbox, "signals/stream.jsonl", '{"n": 1}\n')
    assert len(ticker.tick().run_requests) == 1
    with path.open("a", encoding="utf-8") as handle:  # a producer still appending in place
        handle.write('{"n": 2}\n')
    message = skip_message(ticker.tick())
    assert "waiting for 1 file(s) whose size changed since the last tick: signals/stream.jsonl" in message
    # It holds still for a tick: its full content is requested.
    result = ticker.tick()
    assert result.run_requests[0].run_key == f"inbox:{file_sha256(path)}"


def test_outcomes_and_unwatched_folders_do_not_trigger(inbox, ticker):
    land(inbox, "outcomes/crm_outcomes.csv", "opportunity_id,siren\n")
    assert "no files" in skip_message(ticker.tick())


def test_new_files_and_settling_files_in_one_tick(inbox, ticker):
    growing = land(inbox, "companies/StockUniteLegale_utf8.csv", "siren\n")
    ticker.tick()
    with growing.open("a", encoding="utf-8") as handle:
        handle.write("552100554\n")
    land(inbox, "signals/signals.jsonl", '{"n": 1}\n')
    result = ticker.tick()
    assert len(result.run_requests) == 1
    assert result.run_requests[0].run_key == f"inbox:{file_sha256(inbox / 'signals/signals.jsonl')}"


def test_unchanged_files_are_not_rehashed(inbox, monkeypatch):
    land(inbox, "signals/signals.jsonl", '{"n": 1}\n')
    cursor = scan_inbox(inbox, InboxCursor()).cursor

    def no_hashing(path):
        raise AssertionError(f"{path} was rehashed")

    monkeypatch.setattr("ose_assets.automation.inbox_watch.file_sha256", no_hashing)
    scan = scan_inbox(inbox, InboxCursor.from_json(cursor.to_json()))
    assert scan.known_files == 1 and not scan.new_files


def test_cursor_is_what_was_seen_not_a_clock(inbox):
    path = land(inbox, "signals/signals.jsonl", '{"n": 1}\n')
    os.utime(path, ns=(0, 0))  # a file copied with an old mtime is still new
    scan = scan_inbox(inbox, InboxCursor())
    assert [p for p, _ in scan.new_files] == ["signals/signals.jsonl"]
    stored = InboxCursor.from_json(scan.cursor.to_json())
    assert stored == scan.cursor
    assert stored.files["signals/signals.jsonl"].mtime_ns == 0
    assert stored.seen_hashes == {file_sha256(path)}


# ---- cold start ------------------------------------------------------------------------------------
def ingest(inbox: Path) -> None:
    """Land the inbox into the data root's warehouse, as the raw_inbox asset does."""
    from ose_assets.ingestion.landing import land_inbox

    settings = OSESettings(data_dir=inbox.parent)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        assert land_inbox(con, inbox, today_paris())


def test_cold_start_on_an_already_ingested_inbox_requests_no_run(inbox, ticker):
    land(inbox, "signals/signals.jsonl", '{"siren": "552100554", "type": "fundraising"}\n')
    land(inbox, "signals/more.jsonl", '{"siren": "356000000", "type": "hiring"}\n')
    ingest(inbox)
    message = skip_message(ticker.tick())  # no cursor yet: the daemon's first tick
    assert "2 file(s) with content already seen" in message
    assert not ticker.tick().run_requests
    # A file that arrives afterwards is new.
    land(inbox, "signals/late.jsonl", '{"siren": "552100554", "type": "hiring"}\n')
    assert len(ticker.tick().run_requests) == 1


def test_cold_start_waits_while_a_run_holds_the_warehouse(inbox, ticker):
    land(inbox, "signals/signals.jsonl", '{"siren": "552100554", "type": "fundraising"}\n')
    ingest(inbox)
    warehouse = OSESettings(data_dir=inbox.parent).warehouse_path
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); "
         "print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        first = ticker.tick()
        assert "warehouse is busy" in skip_message(first) and first.cursor is None
    finally:
        holder.kill()
        holder.wait()
    assert "1 file(s) with content already seen" in skip_message(ticker.tick())
