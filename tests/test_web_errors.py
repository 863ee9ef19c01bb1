"""Error pages: a browser on the web UI meets a styled page in its own language that says
what to do next; programs on the machine paths keep their short answers."""

from __future__ import annotations

import pytest


def test_a_missing_page_is_a_page_in_the_site_s_frame_and_language(client):
    response = client.get("/projects/nothing/here/at/all", headers={"Accept-Language": "de"})
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Seite nicht gefunden" in body
    assert 'href="/static/style.css"' in body or "style.css" in body  # the site's frame
    assert "Not Found" not in body  # not werkzeug's English page


def test_a_view_s_own_reason_is_kept_and_a_wrong_method_lists_the_allowed_ones(client):
    response = client.get("/audit?page=x")
    if response.status_code == 302:  # signed out: the audit log asks for a sign-in first
        response = client.get("/projects?page=0")
    assert response.status_code == 400
    assert "must be a whole number" in response.get_data(as_text=True)
    wrong = client.post("/projects", data={})
    assert wrong.status_code in (400, 405)
    put = client.put("/login")
    assert put.status_code == 405
    assert "Not possible here" in put.get_data(as_text=True)
    assert "GET" in put.headers["Allow"]


def test_an_unexpected_failure_is_a_translated_500_with_the_request_id(make_app):
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    app.testing = False  # let the handler answer, as in production
    response = app.test_client().get("/boom", headers={"Accept-Language": "fr", "X-Request-ID": "req-12345"})
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "req-12345" in body
    assert "a bug" not in body and "Traceback" not in body
    assert 'lang="fr"' in body


@pytest.mark.parametrize("path", ["/legacy/", "/_/oidc/audience", "/healthz"])
def test_machine_paths_keep_their_plain_answers(client, path):
    response = client.put(path)
    assert response.status_code == 405
    assert "<nav" not in response.get_data(as_text=True)
