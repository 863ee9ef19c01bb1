"""Every form the web UI and the upload API accept, fed hypothesis-generated values (unicode
digits, huge numbers, control characters, empty, very long, repeated fields, JSON of any
shape) as a signed-in admin with a valid CSRF token: bad input is a 4xx (or a flash and a
redirect), never a 500.

The routes come from the app's own routing table and the field names from its templates,
so a new form is fuzzed from the day it is added."""

from __future__ import annotations

import base64
import io
import re
from itertools import count
from pathlib import Path
from urllib.parse import quote

import pytest
import testdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from wheels import make_wheel, upload_form

from privindex.accounts import api_tokens, users
from privindex.ops import audit

pytestmark = pytest.mark.slow  # hypothesis over every form: a minute or more

PASSWORD = "correct horse battery"
TEMPLATES = Path(__file__).parents[2] / "privindex" / "web" / "templates"
FIELDS = sorted(
    {
        *re.findall(r'name="([a-z_0-9:]+)"', "".join(p.read_text() for p in TEMPLATES.glob("*.html"))),
        "page",
        "all",
        "label",
        "credential",
        "key",
    }
    - {"csrf_token", "viewport"}
)
UPLOAD_FIELDS = (
    ":action",
    "protocol_version",
    "name",
    "version",
    "filetype",
    "pyversion",
    "metadata_version",
    "sha256_digest",
    "blake2_256_digest",
    "content",
)
PROJECT = "fuzzproj"

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
EDGES = [
    "²",
    "٣",
    "１",
    "-1",
    "0",
    "9" * 400,
    "9" * 5000,
    "NaN",
    "inf",
    "1e9",
    "1.5",
    " 7 ",
    "0x10",
    "+3",
    "1_000",
    "",
    "\x00",
    "a\nb",
    "x" * 70_000,
]  # each tried in every field of every form, then the fuzz
NUMBERISH = st.sampled_from(EDGES)
VALUES = st.one_of(
    NUMBERISH,
    _text,
    st.text(st.characters(max_codepoint=0x9F, exclude_categories=("Cs",)), max_size=12),  # controls
    st.just(""),
    st.sampled_from([256, 5000, 70_000]).map(lambda n: "x" * n),
    st.integers().map(str),
    st.sampled_from(
        [
            "all",
            "projects",
            "remove",
            "disable",
            "enable",
            "reset-2fa",
            "password-link",
            "unyank",
            "owner",
            "maintainer",
            "de",
            "fr",
            PROJECT,
            "fuzzproj-1.0-py3-none-any.whl",
        ]
    ),
)
FORM = st.lists(st.tuples(st.sampled_from(FIELDS), VALUES), max_size=8)  # repeated keys: lists
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS) | _text, inner, max_size=3)
    ),
    max_leaves=8,
)
SEGMENT = st.one_of(
    st.sampled_from([PROJECT, "fuzzproj-1.0-py3-none-any.whl", "nobody", "x"]),
    _text.filter(bool),
    st.integers(min_value=0, max_value=2**80).map(str),
)


class Session:
    """A signed-in admin on the test client; signs in again as a new admin when a form
    ended the session (sign-out, "end every session") or locked the user out."""

    def __init__(self, app):
        self.app, self.client, self.csrf, self.names = app, app.test_client(), "", count()
        self.sign_in()

    def sign_in(self) -> None:
        name = f"fuzzadmin{next(self.names)}"
        with self.app.app_context():
            users.create_user(name, PASSWORD, audit.CLI, is_admin=True)
        self.client = self.app.test_client()
        page = self.client.get("/login").text
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
        resp = self.client.post("/login", data={"csrf_token": csrf, "username": name, "password": PASSWORD})
        assert resp.status_code == 302, resp.text
        self.csrf = re.search(
            r'<meta name="csrf-token" content="([^"]+)">', self.client.get("/tokens").text
        ).group(1)

    def signed_in(self) -> None:
        if self.client.get("/tokens").status_code != 200:
            self.sign_in()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from privindex.app import create_app
    from privindex.config import Settings

    base = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        Settings(
            store=base / "store",
            data_dir=base / "data",
            require_2fa=False,
            database_url=testdb.url_for(base / "data"),
            oidc_issuers=({"url": "https://ci.example.test", "kind": "github"},),
        )
    )
    with app.app_context():
        owner = users.create_user("fuzzowner", PASSWORD, audit.CLI, is_admin=True)
        token = api_tokens.create_token(owner, audit.CLI)[1]
    form, (filename, content) = upload_form(make_wheel(base, PROJECT, "1.0"))
    resp = app.test_client().post(
        "/legacy/", data={**form, "content": (io.BytesIO(content), filename)}, headers=_basic(token)
    )
    assert resp.status_code == 200, resp.text
    app.config["fuzz_token"] = token
    app.config["fuzz_wheel"] = base / filename
    return app


@pytest.fixture(scope="module")
def web(app):
    return Session(app)


def _basic(token: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()}


def _rules(app, method: str) -> list:
    return sorted(
        (
            r
            for r in app.url_map.iter_rules()
            if method in r.methods and r.endpoint.startswith("web.") and r.endpoint != "web.static"
        ),
        key=lambda r: r.rule,
    )


def _path(rule, segments: list[str]) -> str:
    path = rule.rule
    for arg, value in zip(sorted(rule.arguments), segments):
        if f"<int:{arg}>" in path and not (value.isascii() and value.isdigit()):
            value = "1"
        path = re.sub(rf"<(?:\w+:)?{arg}>", quote(value, safe=""), path)
    return path


def _no_500(resp, what: str) -> None:
    assert resp.status_code < 500, f"{what}: {resp.status_code}\n{resp.get_data(as_text=True)[:2000]}"


EXAMPLES = 12  # per route: every route, for a minute or two in all


def fuzz(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


def test_every_web_form_answers_any_values_without_a_500(app, web):
    rules = _rules(app, "POST")
    assert len(rules) >= 20
    for rule in rules:  # each form its own examples
        for edge in EDGES:
            web.signed_in()
            form = MultiDict([("csrf_token", web.csrf), *((field, edge) for field in FIELDS)])
            path = _path(rule, [edge or "x"] * 3)
            _no_500(
                web.client.post(path, data=form, environ_base={"REMOTE_ADDR": "10.9.9.9"}),
                f"POST {path} every field {edge[:20]!r}",
            )

        @fuzz(EXAMPLES)
        @given(
            rule=st.just(rule),
            segments=st.lists(SEGMENT, min_size=3, max_size=3),
            form=FORM,
            body=st.none() | JSON,
            address=st.integers(1, 250),
        )
        def post(rule, segments, form, body, address):
            web.signed_in()
            path = _path(rule, segments)
            environ = {"REMOTE_ADDR": f"10.9.8.{address}"}  # failures lock other addresses than ours
            if body is None:
                form = MultiDict([("csrf_token", web.csrf), *form])
                resp = web.client.post(path, data=form, environ_base=environ)
            else:
                resp = web.client.post(
                    path, json=body, headers={"X-CSRFToken": web.csrf}, environ_base=environ
                )
            _no_500(resp, f"POST {path} {form if body is None else body!r}")

        post()


def test_every_web_page_answers_any_query_without_a_500(app, web):
    for rule in _rules(app, "GET"):
        for edge in EDGES:
            web.signed_in()
            path = _path(rule, [edge or "x"] * 3)
            query = MultiDict((field, edge) for field in FIELDS)
            _no_500(web.client.get(path, query_string=query), f"GET {path} every field {edge[:20]!r}")

        @fuzz(EXAMPLES)
        @given(rule=st.just(rule), segments=st.lists(SEGMENT, min_size=3, max_size=3), query=FORM)
        def get(rule, segments, query):
            web.signed_in()
            path = _path(rule, segments)
            _no_500(web.client.get(path, query_string=MultiDict(query)), f"GET {path} {query!r}")

        get()


@pytest.mark.parametrize("field", UPLOAD_FIELDS)
def test_the_upload_form_answers_any_values_without_a_500(app, field):
    form, (filename, content) = upload_form(app.config["fuzz_wheel"])
    for edge in EDGES:
        sent = MultiDict([*{**form, field: edge}.items(), ("content", (io.BytesIO(content), filename))])
        _no_500(
            app.test_client().post("/legacy/", data=sent, headers=_basic(app.config["fuzz_token"])),
            f"upload {field}={edge[:20]!r}",
        )

    @fuzz(30)
    @given(
        value=NUMBERISH | VALUES,
        others=st.lists(st.tuples(st.sampled_from(UPLOAD_FIELDS), VALUES), max_size=2),
        drop=st.booleans(),
    )
    def upload(value, others, drop):
        fields = [(field, value), *others]
        sent = [(k, v) for k, v in form.items() if k not in dict(fields)]
        if not drop:
            sent += [(k, v) for k, v in fields if k != "content"]
        if field != "content" or not drop:
            file_name = next((v for k, v in fields if k == "content"), filename)
            sent.append(("content", (io.BytesIO(content), file_name)))
        resp = app.test_client().post(
            "/legacy/", data=MultiDict(sent), headers=_basic(app.config["fuzz_token"])
        )
        _no_500(resp, f"upload {fields!r}{' (dropped)' if drop else ''}")
        assert resp.status_code in (200, 400, 403, 409, 413), resp.text

    upload()
