"""The index under concurrent change: readers always see one consistent snapshot."""

from __future__ import annotations

import random
import shutil
import threading

import testdb
from conftest import populate
from werkzeug.test import Client

from privindex.app import create_app
from privindex.config import Settings
from privindex.db.connection import in_thread


def test_reads_stay_consistent_while_files_are_added_discarded_yanked_and_rescanned(tmp_path, dists):
    populate(tmp_path / "store", dists)
    app = create_app(
        Settings(
            store=tmp_path / "store",
            data_dir=tmp_path / "data",
            database_url=testdb.url_for(tmp_path / "data"),
        )
    )
    index = app.extensions["privindex"].index
    simple = Client(app)
    originals = list(index.snapshot.files.values())
    assert originals
    stop = threading.Event()
    errors: list[BaseException] = []
    checked = [0]

    def guarded(fn):
        def run():
            try:
                while not stop.is_set():
                    fn()
            except BaseException as exc:  # noqa: BLE001 - any failure is the test's finding
                errors.append(exc)
                stop.set()

        return threading.Thread(target=in_thread(app.extensions["privindex"].database, run))

    def read():
        snap = index.snapshot
        assert {name for name, _display in snap.project_list} == set(snap.projects)
        for name, project in snap.projects.items():
            assert project.files, name
            for f in project.files:
                assert snap.files[f.path] is f  # listed => downloadable, in the same snapshot
                assert f.path not in snap.withdrawn
        assert sum(len(p.files) for p in snap.projects.values()) <= len(snap.files)
        checked[0] += 1

    def read_http():
        page = simple.get("/simple/alpha/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        assert page.status_code in (200, 404)
        for f in page.json["files"] if page.status_code == 200 else ():
            # it may be discarded after the page was made, never fail otherwise; a file
            # re-created by hand (late/) may also be refused while it is checked again
            path = f["url"].split("/packages/", 1)[1]
            allowed = (200, 404, 409) if path.startswith("late/") else (200, 404)
            assert simple.get(f"/packages/{path}").status_code in allowed

    def churn():
        f = random.choice(originals)
        action = random.random()
        if action < 0.4:
            index.discard(f.path)
        elif action < 0.8:
            index.add(f._replace(yanked=False))
        else:
            index.set_yanked(f.path, random.random() < 0.5, "racing")  # None if discarded: no KeyError

    def hand_changes():
        extra = tmp_path / "store" / "late"
        if extra.exists():
            shutil.rmtree(extra)
        else:
            extra.mkdir()
            shutil.copy(dists.one("alpha-1.0-py3-none-any.whl"), extra / "alpha-1.0-py3-none-any.whl")
        index.refresh()

    threads = [
        guarded(read),
        guarded(read),
        guarded(read_http),
        guarded(churn),
        guarded(churn),
        guarded(hand_changes),
    ]
    for t in threads:
        t.start()
    stop.wait(1.5)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors
    assert checked[0] > 100
