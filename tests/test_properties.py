"""Property-based tests (hypothesis): names, filenames, content negotiation, credentials."""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name
from packaging.version import Version
from werkzeug.test import Client

from privindex.api.simple import OFFERS, SimpleAPI, negotiate
from privindex.auth import token_format
from privindex.packages.distfile import InvalidDistribution, parse_filename
from privindex.packages.index import EMPTY
from privindex.packages.store import Store

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database

NAME = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,30}[A-Za-z0-9])?", fullmatch=True)
VERSION = st.builds(
    lambda parts, post: ".".join(map(str, parts)) + (f".post{post}" if post is not None else ""),
    st.lists(st.integers(0, 999), min_size=1, max_size=4),
    st.none() | st.integers(0, 9),
)


class EmptyIndex:
    """Just enough of an Index for the Simple API: it knows no project and no file."""

    snapshot = EMPTY

    def __init__(self, store):
        self.store = store

    def project(self, name):
        return None

    def project_list(self):
        return ()

    def file(self, path):
        return None


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return Client(SimpleAPI(EmptyIndex(Store(tmp_path_factory.mktemp("store")))))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(NAME)
def test_every_spelling_of_a_name_redirects_to_the_normalized_url(client, name):
    resp = client.get(f"/simple/{name}/")
    normalized = canonicalize_name(name)
    if name == normalized:
        assert resp.status_code == 404  # already canonical: answered directly (here: unknown)
    else:
        assert resp.status_code == 301
        assert resp.headers["Location"] == f"/simple/{normalized}/"
        assert canonicalize_name(normalized) == normalized


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=0, max_size=80))
def test_no_path_under_packages_escapes_or_errors(client, path):
    resp = client.get("/packages/" + path.replace("?", "%3F").replace("#", "%23"))
    assert resp.status_code == 404


@given(NAME, VERSION, st.sampled_from([".tar.gz", ".zip", "-py3-none-any.whl"]))
def test_valid_filenames_parse_to_the_name_and_version_they_carry(name, version, suffix):
    filename = f"{canonicalize_name(name).replace('-', '_')}-{version}{suffix}"
    assert parse_filename(filename) == (canonicalize_name(name), Version(version))


@given(st.text(max_size=120))
def test_any_filename_either_parses_or_is_refused_cleanly(filename):
    try:
        name, version = parse_filename(filename)
    except InvalidDistribution:
        return
    assert name == canonicalize_name(name)
    assert isinstance(version, Version)


MEDIA = st.sampled_from(
    [offer for offer, _f, _c in OFFERS]
    + ["*/*", "text/*", "application/*", "application/json", "text/plain", "image/png"]
)
QVALUE = st.one_of(st.none(), st.floats(0, 1).map(lambda q: round(q, 3)))


def _quality(offer: str, ranges: list[tuple[str, float]]) -> float:
    """Reference: the q of the most specific matching range (exact > type/* > */*)."""
    major = offer.split("/")[0]
    for candidate in (offer, f"{major}/*", "*/*"):
        qs = [q for media, q in ranges if media == candidate]
        if qs:
            return max(qs)
    return 0.0


@given(st.lists(st.tuples(MEDIA, QVALUE), min_size=1, max_size=6))
def test_negotiation_picks_an_offer_with_the_highest_quality(parts):
    header = ", ".join(media + (f";q={q}" if q is not None else "") for media, q in parts)
    ranges = [(media, 1.0 if q is None else q) for media, q in parts]
    best = max(_quality(offer, ranges) for offer, _f, _c in OFFERS)
    chosen = negotiate(header)
    if best == 0:
        assert chosen is None
    else:
        assert chosen is not None
        assert max(_quality(offer, ranges) for offer, fmt, ct in OFFERS if (fmt, ct) == chosen) == best


@given(st.text(max_size=200))
def test_negotiation_never_fails_on_garbage(header):
    assert negotiate(header) is None or negotiate(header) in {(f, c) for _o, f, c in OFFERS}


@given(st.text(max_size=300))
def test_authorization_headers_parse_or_are_refused_cleanly(header):
    try:
        credentials = token_format.read_authorization(header)
    except token_format.MalformedAuthorization as exc:
        assert "pidx_" not in str(exc)  # the message never echoes what was sent
        return
    assert credentials is None or isinstance(credentials.secret, str)


@given(st.text(alphabet=string.printable.replace(":", ""), max_size=40), st.text(max_size=80))
def test_basic_credentials_round_trip(username, password):
    header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    credentials = token_format.read_authorization(header)
    assert (credentials.username, credentials.secret) == (username, password)
    assert credentials.is_token == (username == "__token__")


@given(st.text(max_size=100))
def test_only_well_formed_tokens_look_like_tokens(text):
    if token_format.looks_like_token(text):
        assert text.startswith("pidx_") and len(text) >= 48


def test_generated_tokens_are_well_formed_and_distinct():
    made = {token_format.generate() for _ in range(200)}
    assert len(made) == 200
    assert all(token_format.looks_like_token(t) and len(token_format.digest(t)) == 64 for t in made)
