"""The pages in German and French: every marked message is translated in every shipped
catalogue, the compiled catalogues match their sources and go into the wheel, and a
server answers in the reader's language."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile

import pytest
import requests
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from conftest import ROOT

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database

CATALOGUES = sorted((ROOT / "privindex" / "translations").glob("*/LC_MESSAGES/messages.po"))
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def marked_messages() -> set:
    """What babel.cfg extracts from the code now (not the committed .pot)."""
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    return {msg[2] for msg in extract_from_dir(str(ROOT / "privindex"), method_map)}


def test_german_and_french_ship():
    assert {p.parts[-3] for p in CATALOGUES} == {"de", "fr"}


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: p.parts[-3])
def test_every_marked_message_is_translated(po):
    catalog = read_po(po.open("rb"))
    missing, broken = [], []
    for message_id in marked_messages():
        key = message_id[0] if isinstance(message_id, tuple) else message_id
        entry = catalog.get(key)
        strings = entry.string if entry else None
        strings = strings if isinstance(strings, tuple) else (strings,)
        if entry is None or entry.fuzzy or not all(strings):
            missing.append(message_id)
            continue
        wanted = set(PLACEHOLDER.findall(key))
        if any(
            set(PLACEHOLDER.findall(s)) - wanted
            or (not isinstance(message_id, tuple) and set(PLACEHOLDER.findall(s)) != wanted)
            for s in strings
        ):
            broken.append(message_id)
    assert not missing, f"{po.parts[-3]}: untranslated (run the Development commands in README.md): {missing}"
    assert not broken, f"{po.parts[-3]}: placeholders differ from the English: {broken}"


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: p.parts[-3])
def test_compiled_catalogues_match_their_sources(po):
    def table(catalog) -> dict:
        return {
            (tuple(m.id) if isinstance(m.id, (list, tuple)) else m.id): (
                tuple(m.string) if isinstance(m.string, (list, tuple)) else m.string
            )
            for m in catalog
            if m.id
        }

    source = table(read_po(po.open("rb")))
    compiled = table(read_mo(po.with_suffix(".mo").open("rb")))
    assert compiled == source, f"{po.with_suffix('.mo')} is stale: pybabel compile -d privindex/translations"


@pytest.mark.slow  # builds the wheel
def test_the_wheel_carries_the_catalogues(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("privindex-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for lang in ("de", "fr"):
        assert f"privindex/translations/{lang}/LC_MESSAGES/messages.mo" in names


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import start_server
    from wheels import make_wheel

    base = tmp_path_factory.mktemp("i18n")
    (base / "store").mkdir()
    make_wheel(base / "store", "sprachen", "1.0", headers="Summary: Ein Paket\n")
    srv = start_server(base / "store", base / "data")
    yield srv
    srv.stop()


def test_a_german_browser_gets_german_pages(server):
    page = requests.get(
        f"{server.url}/projects/sprachen?tab=history",
        headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"},
        timeout=10,
    ).text
    assert '<html lang="de">' in page
    assert "Versionsgeschichte" in page and "Neueste Version" in page and "Installieren" in page
    assert re.search(r"\d{2}\.\d{2}\.\d{4}", page)  # dates as Germans write them
    english = requests.get(
        f"{server.url}/projects/sprachen", headers={"Accept-Language": "ja"}, timeout=10
    ).text
    assert "Release history" in english and '<html lang="en">' in english


def test_the_language_menu_beats_accept_language(server):
    s = requests.Session()
    s.headers["Accept-Language"] = "de"
    page = s.get(f"{server.url}/projects", timeout=10).text
    assert "Projekte" in page
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    r = s.post(
        f"{server.url}/language",
        data={"csrf_token": csrf, "locale": "fr", "next": "/projects"},
        headers={"Referer": f"{server.url}/projects"},
        timeout=10,
    )
    assert r.status_code == 200 and "Rechercher des projets par nom ou résumé" in r.text
    bad = s.post(
        f"{server.url}/language",
        data={"csrf_token": csrf, "locale": "xx"},
        headers={"Referer": f"{server.url}/projects"},
        timeout=10,
    )
    assert bad.status_code == 400
