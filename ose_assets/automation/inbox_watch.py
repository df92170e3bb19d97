"""What the inbox sensor decides, as plain functions: scan the inbox, hash what changed, batch it.

The cursor is a JSON document of what was seen, never a wall-clock time (a clock cursor skips files
whose mtime is older than the last tick, e.g. files copied with their original dates):
- `files`: inbox-relative path -> size, mtime (ns), inode and content hash, to notice a file whose
  size is still changing and to avoid rehashing unchanged files (the inode catches a file replaced by
  rename within the filesystem's timestamp granularity);
- `seen_hashes`: sha256 of every content already handed to a run, so the same content landed again,
  under any name, triggers nothing, while a changed file under an old name triggers again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ose_assets.settings import model_config

_HASH_CHUNK_BYTES = 1 << 20


def file_sha256(path: Path) -> str:
    """sha256 of a file's content (the same digest as raw.manifest.file_hash), read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int
    inode: int
    # None while the file's size is still changing: it is hashed once it holds still for a tick.
    sha256: str | None


@dataclass(frozen=True)
class InboxCursor:
    files: dict[str, FileState] = field(default_factory=dict)
    seen_hashes: frozenset[str] = frozenset()

    def to_json(self) -> str:
        return json.dumps(
            {
                "files": {
                    path: [state.size, state.mtime_ns, state.inode, state.sha256]
                    for path, state in sorted(self.files.items())
                },
                "seen_hashes": sorted(self.seen_hashes),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> InboxCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            files={path: FileState(*state) for path, state in data["files"].items()},
            seen_hashes=frozenset(data["seen_hashes"]),
        )


@dataclass(frozen=True)
class InboxScan:
    """One tick's findings and the cursor to store after it."""

    watched: tuple[Path, ...]
    new_files: tuple[tuple[str, str], ...]  # (inbox-relative path, sha256) of content never seen
    settling: tuple[str, ...]  # size changed since the last tick: waits for the next one
    in_progress: tuple[str, ...]  # .part / .tmp / hidden names: never read
    known_files: int  # present, stable, content already seen
    cursor: InboxCursor

    @property
    def run_key(self) -> str | None:
        """The content hash of a single new file, or one digest of the batch's sorted hashes."""
        hashes = sorted({sha for _, sha in self.new_files})
        if not hashes:
            return None
        key = hashes[0] if len(hashes) == 1 else hashlib.sha256("\n".join(hashes).encode()).hexdigest()
        return f"inbox:{key}"

    def summary(self) -> str:
        """What the tick found, for the tick's skip reason or log in the Dagster UI."""
        parts = []
        if self.new_files:
            parts.append(
                f"{len(self.new_files)} new or changed file(s): {_preview(p for p, _ in self.new_files)}"
            )
        if self.settling:
            parts.append(
                f"waiting for {len(self.settling)} file(s) whose size changed since the last tick: "
                f"{_preview(self.settling)}"
            )
        if self.in_progress:
            parts.append(
                f"ignored {len(self.in_progress)} file(s) still being written (.part/.tmp/hidden): "
                f"{_preview(self.in_progress)}"
            )
        if self.known_files:
            parts.append(f"{self.known_files} file(s) with content already seen")
        if not parts:
            parts.append("no files")
        watched = ", ".join(str(path) for path in self.watched)
        return "; ".join(parts) + f" (watching {watched})"


def _preview(paths: Iterable[str], limit: int = 5) -> str:
    paths = list(paths)
    shown = ", ".join(paths[:limit])
    return shown if len(paths) <= limit else f"{shown}, … (+{len(paths) - limit})"


def landed_hashes(warehouse_path: Path) -> frozenset[str] | None:
    """Content hashes in raw.manifest (what ingestion already landed or rejected): the sensor's first cursor,
    so a cold start does not ask to rescore files already ingested. Empty without a warehouse or manifest;
    None while a run holds the warehouse (read-only opens are refused then): try again next tick.

    The read-only connection is held for one small query; the run's DuckDB resource retries a locked file.
    """
    import duckdb

    if not warehouse_path.is_file():
        return frozenset()
    try:
        with duckdb.connect(str(warehouse_path), read_only=True) as con:
            exists = con.execute(
                "select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = 'manifest'"
            ).fetchone()[0]
            if not exists:
                return frozenset()
            return frozenset(
                row[0] for row in con.execute("select distinct file_hash from raw.manifest").fetchall()
            )
    except duckdb.IOException:  # locked by a run writing it
        return None


def is_in_progress(path: Path, suffixes: Iterable[str]) -> bool:
    return path.name.startswith(".") or path.suffix in set(suffixes)


def scan_inbox(inbox_dir: Path, previous: InboxCursor) -> InboxScan:
    """Compare the watched inbox folders with the previous cursor.

    A file is new when its content hash was never seen. A file whose size differs from the previous
    tick's observation is still being written: it waits (unhashed) for a tick where it holds still.
    """
    settings = model_config()["automation"]
    suffixes = settings["inbox_in_progress_suffixes"]
    watched = tuple(inbox_dir / source for source in settings["inbox_watched_sources"])

    files: dict[str, FileState] = {}
    seen = set(previous.seen_hashes)
    new_files, settling, in_progress = [], [], []
    known = 0
    for folder in watched:
        if not folder.is_dir():
            continue
        # Links are never followed (nothing outside the inbox is read; landing rejects them).
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            relative = path.relative_to(inbox_dir).as_posix()
            if any(is_in_progress(Path(part), suffixes) for part in Path(relative).parts):
                in_progress.append(relative)
                continue
            before = previous.files.get(relative)
            try:
                stat = path.stat()
                if before is not None and before.size != stat.st_size:
                    settling.append(relative)
                    files[relative] = FileState(stat.st_size, stat.st_mtime_ns, stat.st_ino, None)
                    continue
                identity = (stat.st_mtime_ns, stat.st_ino)
                unchanged = before is not None and (before.mtime_ns, before.inode) == identity
                sha = before.sha256 if unchanged and before.sha256 else file_sha256(path)
            except FileNotFoundError:  # renamed or removed while listing: next tick sees its new name
                continue
            files[relative] = FileState(stat.st_size, stat.st_mtime_ns, stat.st_ino, sha)
            if sha in seen:
                known += 1
            else:
                seen.add(sha)
                new_files.append((relative, sha))

    return InboxScan(
        watched=watched,
        new_files=tuple(new_files),
        settling=tuple(settling),
        in_progress=tuple(in_progress),
        known_files=known,
        cursor=InboxCursor(files=files, seen_hashes=frozenset(seen)),
    )
