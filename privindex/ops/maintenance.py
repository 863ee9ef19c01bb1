"""Backup and integrity check of a privindex installation, safe while the server runs.

A backup is a folder with `data/` (a consistent copy of the database, made with SQLite's
online backup API, and the session key) and `packages/` (the store). The database copy
comes first: every file it lists is then copied and checked against its recorded hash, so
the pair is consistent even while uploads arrive (uploads appear by atomic rename, so a
half-written file is never seen), with the PEP 740 provenance object beside it if it has
one. Copies keep their mtimes, so a restored server does not rehash anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from privindex.packages.archives import DEFAULT_LIMITS, ArchiveLimits
from privindex.packages.distfile import CHUNK, examine, hash_stream
from privindex.packages.provenance import SUFFIX as PROVENANCE_SUFFIX
from privindex.packages.provenance import check_provenance
from privindex.packages.store import UPLOAD_PREFIXES, Store, abandoned_upload

Report = Callable[[str], None]
IN_FLIGHT_SECONDS = 5.0


LAST_RUNS = "last-runs.json"


def record_success(data_dir: Path, job: str) -> None:
    """Note the time `job` (backup, check) last succeeded, for the server's metrics: these
    commands run as other processes, so the server reads it from this small file at scrape
    time. Written atomically; a failure to write never fails the job."""
    runs = last_successes(data_dir)
    runs[job] = time.time()
    target = data_dir / LAST_RUNS
    tmp = target.with_name(f".{LAST_RUNS}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(runs, sort_keys=True))
        os.replace(tmp, target)
    except OSError:
        pass


def last_successes(data_dir: Path) -> dict[str, float]:
    """job -> Unix time of its last success; {} if none is recorded (or the file is bad)."""
    try:
        runs = json.loads((data_dir / LAST_RUNS).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(runs, dict):
        return {}
    return {k: float(v) for k, v in runs.items() if isinstance(v, (int, float))}


class MaintenanceError(Exception):
    """Something that stops a backup or check; the message says what to do."""


class Throttle:
    """Calls report at most once a second (and always for the last item)."""

    def __init__(self, report: Report, every: float = 1.0):
        self.report, self.every, self.last, self.said = report, every, 0.0, ""

    def __call__(self, message: str, final: bool = False) -> None:
        now = time.monotonic()
        if (final or now - self.last >= self.every) and message != self.said:
            self.last, self.said = now, message
            self.report(message)


@dataclass
class BackupResult:
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)


def backup(database: Path | str, store: Store, dest: Path, report: Report) -> BackupResult:
    if isinstance(database, str):
        from privindex.db.connection import redact_url

        raise MaintenanceError(
            f"the database is on PostgreSQL ({redact_url(database)}): back it up with "
            "pg_dump, and the package folder with any file copy; privindex backup "
            "copies an SQLite data dir"
        )
    if dest.exists() and any(dest.iterdir()):
        raise MaintenanceError(f"{dest} is not empty; give a new folder for the backup")
    if not database.exists():
        raise MaintenanceError(f"there is no database at {database}; check --data-dir")
    (dest / "data").mkdir(parents=True, exist_ok=True)
    (dest / "packages").mkdir(exist_ok=True)
    throttle = Throttle(report)

    snapshot_time = time.time()
    copy = dest / "data" / database.name
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(copy)
    try:
        source.backup(
            target,
            pages=1024,
            progress=lambda _s, left, total: throttle(f"database: {total - left}/{total} pages"),
        )
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        rows = target.execute("SELECT path, size, mtime_ns, sha256 FROM dist_file").fetchall()
    finally:
        source.close()
        target.close()
    throttle("database copied", final=True)
    key = database.parent / "secret_key"
    if key.exists():
        shutil.copy2(key, dest / "data" / key.name)

    result = BackupResult()
    listed = {path for path, *_ in rows}
    # Files the snapshot does not list: those dropped in by hand well before it are kept (a
    # restored server indexes them). Recent ones may be uploads still being recorded (a
    # publish is a hard link, which sets ctime), so they belong to the next backup.
    extra = [
        p
        for p, st in _store_files(store).items()
        if p not in listed and st.st_ctime < snapshot_time - IN_FLIGHT_SECONDS
    ]
    total = len(rows) + len(extra)
    for path, size, _mtime_ns, sha256 in rows:
        problem = _copy_checked(store.full_path(path), dest / "packages" / path, sha256)
        if problem:
            result.problems.append(f"{path}: {problem}")
        else:
            result.files += 1
            result.bytes += size
            attested = store.full_path(path + PROVENANCE_SUFFIX)
            if attested.exists():  # its PEP 740 provenance goes with it (the store walk skips it)
                _copy_checked(attested, dest / "packages" / (path + PROVENANCE_SUFFIX), None)
        throttle(f"packages: {result.files}/{total} files, {result.bytes / 1e6:.1f} MB")
    for path in extra:
        if _copy_checked(store.full_path(path), dest / "packages" / path, None) is None:
            result.files += 1
    throttle(f"packages: {result.files}/{total} files, {result.bytes / 1e6:.1f} MB", final=True)
    return result


def _copy_checked(source: Path, target: Path, sha256: str | None) -> str | None:
    """Copy source to target (keeping its times), verifying the content hash on the way."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as src, open(target, "wb") as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(source, target)
    except FileNotFoundError:
        target.unlink(missing_ok=True)
        return "missing from the store (deleted meanwhile, or is --store wrong?)"
    if sha256 is not None and digest.hexdigest() != sha256:
        return "its content does not match the recorded hash (changed on disk?)"
    return None


def _provenance_problem(path: Path, filename: str, sha256: str) -> str | None:
    """What is wrong with the provenance object beside a published file, if it has one."""
    try:
        check_provenance(path.read_bytes(), filename, sha256)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return f"not that file's provenance ({exc}); remove it"
    return None


def _store_files(store: Store) -> dict[str, os.stat_result]:
    return {path: st for _reldir, _mtime, files in store.walk() for path, st in files.items()}


@dataclass
class CheckResult:
    checked: int = 0
    problems: list[str] = field(default_factory=list)


def _records(database: Path | str, result: CheckResult) -> tuple[list, dict]:
    """The file records and publications (SQLite: read-only, after its integrity check)."""
    files_sql = "SELECT path, size, sha256 FROM dist_file ORDER BY path"
    published_sql = "SELECT filename, sha256, withdrawn_sha256 FROM published_file"
    if isinstance(database, str):
        from privindex.db.connection import describe, postgres

        db = postgres(database)
        try:
            db.connect()
            rows = [tuple(r) for r in db.execute_sql(files_sql).fetchall()]
            published = {f: (sha, w) for f, sha, w in db.execute_sql(published_sql).fetchall()}
        except Exception as exc:  # peewee wraps the driver's errors: say which database, no traceback
            raise MaintenanceError(
                f"cannot read the database {describe(database)}: {str(exc).strip()}"
            ) from None
        finally:
            db.close()
        return rows, published
    if not database.exists():
        raise MaintenanceError(f"there is no database at {database}; check --data-dir")
    reader = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        integrity = reader.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            result.problems.append(f"database: integrity_check says {integrity}")
        rows = reader.execute(files_sql).fetchall()
        published = {
            filename: (sha256, withdrawn) for filename, sha256, withdrawn in reader.execute(published_sql)
        }
    finally:
        reader.close()
    return rows, published


def check(
    database: Path | str,
    store: Store,
    report: Report,
    rehash: bool = True,
    limits: ArchiveLimits = DEFAULT_LIMITS,
) -> CheckResult:
    """Every published file present with its published hash; nothing unrecorded.

    Files are compared with the digest they were published with (never with one re-read
    later), so a file changed on disk is a problem however and whenever it changed. With
    rehash off, files the server already found changed are still reported. A file in the
    store but not recorded is read (within limits) to say why the server does not list it.
    """
    result = CheckResult()
    rows, published = _records(database, result)
    throttle = Throttle(report)
    for path, size, recorded in rows:
        full = store.full_path(path)
        filename = path.rpartition("/")[2]
        sha256, withdrawn = published.get(filename, (recorded, None))
        try:
            actual_size = full.stat().st_size
            if withdrawn is not None or recorded != sha256:
                result.problems.append(
                    f"{path}: changed on disk after it was published (published sha256 "
                    f"{sha256}); withdrawn: restore it, or accept it with "
                    f"privindex file accept {filename}"
                )
            elif actual_size != size:
                result.problems.append(f"{path}: size {actual_size}, recorded {size}")
            elif rehash:
                with open(full, "rb") as fh:
                    if hash_stream(fh) != sha256:
                        result.problems.append(
                            f"{path}: content does not match the published sha256 {sha256}"
                        )
        except FileNotFoundError:
            result.problems.append(f"{path}: missing from the store (is --store right?)")
        if problem := _provenance_problem(store.full_path(path + PROVENANCE_SUFFIX), filename, sha256):
            result.problems.append(f"{path}{PROVENANCE_SUFFIX}: {problem}")
        result.checked += 1
        throttle(f"checked {result.checked}/{len(rows)} files")
    throttle(f"checked {result.checked}/{len(rows)} files", final=True)
    recorded_paths = {path for path, *_ in rows}
    recorded_names = {path.rpartition("/")[2] for path in recorded_paths}
    for filename in sorted(set(published) - recorded_names):
        result.problems.append(f"{filename}: published, but missing from the store (deleted by hand?)")
    for path in _store_files(store):
        if path not in recorded_paths:
            refused = examine(store.full_path(path), limits)
            if isinstance(refused, str):
                result.problems.append(f"{path}: in the store but not listed: {refused}")
            else:
                result.problems.append(
                    f"{path}: in the store but not indexed (added while the server "
                    "was stopped: start it to index the file)"
                )
    for dirpath, _dirs, names in os.walk(store.root):
        for name in names:
            if name.startswith(UPLOAD_PREFIXES) and abandoned_upload(os.path.join(dirpath, name)):
                result.problems.append(
                    f"{Path(dirpath, name).relative_to(store.root)}: an unfinished "
                    "upload (removed when the server next starts)"
                )
    return result
