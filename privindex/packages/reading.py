"""Reading many files' facts with every core: what the index does on a cold start or after
files were copied in by the thousand (distfile.examine for each, results in their order).

Files go to the worker processes in tasks packed by count and by size: up to TASK_FILES
small files a task, so the pool's cost per task (a pickle each way, a queue hop) is
spread over many of them, and a big file in a task of its own, streamed through its
worker (distfile hashes a file past READ_ONCE_LIMIT a chunk at a time), so big files
spread evenly over the cores. Tasks go out AHEAD of the caller: the workers read the
next files while the caller records the last ones, and what waits in memory stays
bounded. Workers are spawned, not forked (the server has threads, and a fork copies
their locks), and run at a lower priority: a server indexing a cold store answers its
readers first.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import resource_tracker
from pathlib import Path

from privindex.packages.archives import ArchiveLimits
from privindex.packages.distfile import FileFacts, examine

log = logging.getLogger(__name__)

POOL_THRESHOLD = 200  # this many files to read and they are read by a process per core
TASK_FILES = 64  # small files per task
TASK_BYTES = 16 * 1024 * 1024  # bytes per task: a file this big or bigger is a task alone
AHEAD = 16  # tasks handed out before their results are asked for
NICENESS = 10  # added to the workers' niceness (os.nice)

_pools = 0  # pools running in this process (tests run several servers in one)
_pools_lock = threading.Lock()

Facts = FileFacts | str  # what examine gives: the facts, or why the file is not a distribution


def read_in_order(files: Iterable[tuple[str, int]], count: int, limits: ArchiveLimits) -> Generator[Facts]:
    """examine() of each (path, size) in `files` (`count` of them), in their order: in this
    process for a few files, with a process per core for many. `files` is consumed as
    tasks go out, so the caller may build it lazily."""
    tasks = _tasks(files)
    pool = _pool() if count >= POOL_THRESHOLD else None
    if pool is None:
        for task in tasks:
            yield from examine_all(task, limits)
        return
    ahead: deque[Future[list[Facts]]] = deque()
    try:
        for task in tasks:
            ahead.append(pool.submit(examine_all, task, limits))
            if len(ahead) >= AHEAD:
                yield from ahead.popleft().result()
        while ahead:
            yield from ahead.popleft().result()
    finally:  # also when the caller stops early: nothing left running
        pool.shutdown(cancel_futures=True)
        _pool_done()


def examine_all(paths: list[str], limits: ArchiveLimits) -> list[Facts]:
    """One task: what a worker process runs (paths as strings: they pickle faster)."""
    return [examine(Path(path), limits) for path in paths]


def _pool() -> ProcessPoolExecutor | None:
    """A process per core; None on one core or where processes cannot be had."""
    global _pools
    workers = os.cpu_count() or 1
    if workers < 2:
        return None
    try:
        pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=os.nice,
            initargs=(NICENESS,),
        )
    except (OSError, ValueError, NotImplementedError) as exc:  # no /dev/shm, no semaphores...
        log.warning("reading files in this process only (no worker processes: %s)", exc)
        return None
    with _pools_lock:
        _pools += 1
    return pool


def _pool_done() -> None:
    """After the last pool running in this process has shut down, stop multiprocessing's
    resource tracker: a process of its own (12 MB) that the first worker started, there
    to remove the pools' semaphores should this process die, with nothing left to watch
    yet kept as long as this process lives. The next pool starts another. `_stop` is
    private (multiprocessing's own test clean-up calls it); there is no public way."""
    global _pools
    with _pools_lock:
        _pools -= 1
        if _pools == 0:
            resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]


def _tasks(files: Iterable[tuple[str, int]]) -> Iterator[list[str]]:
    task: list[str] = []
    size = 0
    for path, file_size in files:
        if task and (len(task) >= TASK_FILES or size + file_size > TASK_BYTES):
            yield task
            task, size = [], 0
        task.append(path)
        size += file_size
    if task:
        yield task
