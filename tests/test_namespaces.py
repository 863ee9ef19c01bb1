"""PEP 752 namespaces: a granted prefix is local by rule and reserved for its owners.

The team's index is a real `privindex serve` in front of a loopback upstream (the public
index's stand-in) that publishes `acme-newthing` before the team does: the dependency
confusion a namespace closes by prefix. pip, uv and twine are the real clients.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import requests
from conftest import pip, start_server, twine, uv, wait_until
from fake_upstream import FakeUpstream
from helpers import V1_JSON, listed
from wheels import make_wheel

from privindex.accounts import namespaces
from privindex.accounts.users import AccountError


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    fake = FakeUpstream()
    folder = tmp_path_factory.mktemp("upstream-dists")
    fake.add("acme-newthing", make_wheel(folder, "acme-newthing", "6.6.6"))  # the attacker's
    fake.add("acmecorp", make_wheel(folder, "acmecorp", "1.0"))  # not under `acme`
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def team(tmp_path_factory, upstream):
    base = tmp_path_factory.mktemp("team")
    server = start_server(
        base / "store", base / "data", "--upstream", upstream.url, env={"PRIVINDEX_REQUIRE_2FA": "false"}
    )
    yield server
    server.stop()


def page(server, name: str) -> requests.Response:
    return requests.get(f"{server.index_url}{name}/", headers={"Accept": V1_JSON}, timeout=30)


def pip_download(server, folder: Path, requirement: str):
    return pip(
        "download", "--no-deps", "--index-url", server.index_url, "-d", str(folder), requirement, check=False
    )


def uv_install(server, folder: Path, requirement: str):
    return uv(
        "pip",
        "install",
        "--no-deps",
        "--index-url",
        server.index_url,
        "--python",
        sys.executable,
        "--target",
        str(folder),
        requirement,
        check=False,
    )


def audit_tags(acc, subject: str) -> list[str]:
    events = map(json.loads, acc.cli("audit", "--json").stdout.splitlines())
    return [e["tag"] for e in events if e["subject"] == subject]


def test_a_granted_prefix_closes_the_upstream_before_any_local_upload(team, upstream, accounts, tmp_path):
    acc = accounts(team)
    acc.user("alice")
    # before the grant: the name is the upstream's, and pip takes the attacker's release
    assert pip_download(team, tmp_path / "before", "acme-newthing").returncode == 0
    assert {p.name for p in (tmp_path / "before").iterdir()} == {"acme_newthing-6.6.6-py3-none-any.whl"}
    assert "acme-newthing" in requests.get(team.index_url, timeout=10).text  # cached, so listed

    granted = acc.cli("namespace", "grant", "Acme", "--owner", "alice")
    assert "namespace acme granted to alice" in granted.stderr
    wait_until(lambda: page(team, "acme-newthing").status_code == 404, 10)
    assert "acme-newthing" not in requests.get(team.index_url, timeout=10).text
    refused = pip_download(team, tmp_path / "pip", "acme-newthing")
    assert refused.returncode != 0 and "No matching distribution found for acme-newthing" in refused.stderr
    assert not (tmp_path / "pip").exists() or not any((tmp_path / "pip").iterdir())
    by_uv = uv_install(team, tmp_path / "uv", "acme-newthing")
    assert by_uv.returncode != 0 and "acme-newthing" in by_uv.stderr
    assert not (tmp_path / "uv").exists() or not any((tmp_path / "uv").glob("*.dist-info"))
    # nor by guessing the upstream file's URL, and a name merely starting with "acme" is not covered
    guessed = f"{team.url}/packages/.upstream/acme-newthing/acme_newthing-6.6.6-py3-none-any.whl"
    assert requests.get(guessed, timeout=10).status_code == 404
    assert page(team, "acmecorp").json()["namespaces"] is None

    # the team publishes its own: pip and uv get it, and the page carries the namespace
    ours = make_wheel(tmp_path / "ours", "acme-newthing", "1.0")
    uploaded = twine(team.url, acc.token("alice"), ours)
    assert uploaded.returncode == 0, uploaded.output
    assert set(listed(team, "acme-newthing")) == {ours.name}
    assert pip_download(team, tmp_path / "after", "acme-newthing").returncode == 0
    assert {p.name for p in (tmp_path / "after").iterdir()} == {ours.name}
    assert uv_install(team, tmp_path / "uv-after", "acme-newthing").returncode == 0
    assert {p.name for p in (tmp_path / "uv-after").glob("*.dist-info")} == {"acme_newthing-1.0.dist-info"}
    doc = page(team, "acme-newthing").json()
    assert doc["meta"]["api-version"] == "1.5"
    assert doc["namespaces"] == [{"name": "acme", "owned": True}]
    assert "namespace:grant" in audit_tags(acc, "acme")


def test_a_non_grantee_cannot_create_a_project_under_the_namespace(team, accounts, tmp_path):
    acc = accounts(team)
    if "alice" not in acc.cli("user", "list").stdout:
        acc.user("alice")
    acc.cli("namespace", "grant", "widgets", "--owner", "alice")
    acc.user("mallory")
    wheel = make_wheel(tmp_path, "widgets-x", "1.0")
    refused = twine(team.url, acc.token("mallory"), wheel)
    assert refused.returncode != 0
    assert "409" in refused.output
    assert "'widgets-x' is in the namespace 'widgets', reserved for alice" in refused.output
    assert listed(team, "widgets-x") == {}
    assert twine(team.url, acc.token("alice"), wheel).returncode == 0  # the grantee may
    assert set(listed(team, "widgets-x")) == {wheel.name}


def test_an_open_namespace_lets_anyone_create_and_still_hides_the_upstream(
    team, upstream, accounts, tmp_path
):
    acc = accounts(team)
    acc.user("olga")
    acc.user("bob")
    upstream.add("commons-tool", make_wheel(tmp_path / "up", "commons-tool", "9.9"))
    assert page(team, "commons-tool").status_code == 200  # the upstream's, for now
    acc.cli("namespace", "grant", "commons", "--owner", "olga", "--open")
    wait_until(lambda: page(team, "commons-tool").status_code == 404, 10)
    wheel = make_wheel(tmp_path / "ours", "commons-tool", "1.0")
    uploaded = twine(team.url, acc.token("bob"), wheel)
    assert uploaded.returncode == 0, uploaded.output
    assert set(listed(team, "commons-tool")) == {wheel.name}
    # bob owns the project, not the namespace: PEP 752's `owned` says so
    assert page(team, "commons-tool").json()["namespaces"] == [{"name": "commons", "owned": False}]
    assert "commons\topen\tolga" in acc.cli("namespace", "list").stdout


def test_revoking_a_grant_gives_unclaimed_names_back_to_the_upstream(team, upstream, accounts, tmp_path):
    acc = accounts(team)
    acc.user("rita")
    upstream.add("gizmo-lib", make_wheel(tmp_path, "gizmo-lib", "2.0"))
    acc.cli("namespace", "grant", "gizmo", "--owner", "rita")
    wait_until(lambda: page(team, "gizmo-lib").status_code == 404, 10)
    acc.cli("namespace", "revoke", "gizmo")
    wait_until(lambda: page(team, "gizmo-lib").status_code == 200, 10)
    assert page(team, "gizmo-lib").json()["namespaces"] is None
    assert "gizmo" not in acc.cli("namespace", "list").stdout
    assert audit_tags(acc, "gizmo") == ["namespace:revoke", "namespace:grant"]
    missing = acc.cli("namespace", "revoke", "gizmo", check=False)
    assert missing.returncode == 1 and "there is no namespace 'gizmo'" in missing.stderr


def test_the_namespace_list_and_detail_say_what_is_granted(team, accounts):
    acc = accounts(team)
    acc.user("tess")
    acc.cli("namespace", "grant", "tools", "--owner", "tess")
    acc.cli("namespace", "grant", "tools-cli-extra", "--owner", "tess")

    def get(path: str) -> requests.Response:
        return requests.get(f"{team.url}/simple/{path}", timeout=10)

    wait_until(lambda: {"name": "tools-cli-extra"} in get("namespaces").json(), 10)  # the watcher reloads
    assert {"name": "tools"} in get("namespaces").json()
    assert get("namespace/tools").json() == {
        "name": "tools",
        "parent": None,
        "children": ["tools-cli-extra"],
        "owner": "tess",  # PEP 752's optional key: the owner users, as the project page names them
    }
    detail = get("namespace/Tools.CLI_extra").json()
    assert detail == {"name": "tools-cli-extra", "parent": "tools", "children": [], "owner": "tess"}
    acc.user("tom")
    acc.cli("namespace", "grant", "kits", "--owner", "tom", "--owner", "tess")
    wait_until(lambda: get("namespace/kits").status_code == 200, 10)
    assert get("namespace/kits").json()["owner"] == "tess, tom"
    assert get("namespace/tools-cli").status_code == 404  # covered, but not a grant


# -- the rules, without a server ------------------------------------------------------------------


def test_a_namespace_covers_itself_and_its_hyphen_children_only():
    granted = {"acme", "acme-tools"}
    assert namespaces.covering("acme", granted) == ["acme"]
    assert namespaces.covering("acme-tools-cli", granted) == ["acme", "acme-tools"]
    assert namespaces.covering("acmecorp", granted) == []
    assert namespaces.covering("not-acme", granted) == []


def test_grants_are_normalized_and_may_not_take_names_from_another_owner(runner):
    runner.invoke("user", "add", "alice", "--password-stdin", input="correct horse battery staple 1\n")
    runner.invoke("user", "add", "bob", "--password-stdin", input="correct horse battery staple 2\n")
    assert (
        "namespace acme-tools granted"
        in runner.invoke("namespace", "grant", "Acme.Tools", "--owner", "alice").output
    )
    taken = runner.invoke("namespace", "grant", "acme", "--owner", "bob")
    assert taken.exit_code == 1 and "overlaps the namespace 'acme-tools'" in taken.output
    child = runner.invoke("namespace", "grant", "acme-tools-cli", "--owner", "bob")
    assert child.exit_code == 1 and "overlaps" in child.output
    assert (
        runner.invoke("namespace", "grant", "acme", "--owner", "alice").exit_code == 0
    )  # the same owner may
    claimed = runner.invoke("project", "claim", "acme-tools-x", "--owner", "bob")  # an admin's claim
    assert (
        claimed.exit_code == 1
        and "'acme-tools-x' is in the namespace 'acme', reserved for alice" in claimed.output
    )
    assert runner.invoke("project", "claim", "acme-tools-x", "--owner", "alice").exit_code == 0
    bad = runner.invoke("namespace", "grant", "acme_", "--owner", "alice")
    assert bad.exit_code == 1 and "not a valid project name" in bad.output
    with pytest.raises(AccountError):
        namespaces.normalize("no spaces")


def test_a_namespace_deeper_than_namespace_max_depth_is_not_granted(runner, tmp_path):
    """PEP 752: an index SHOULD limit the hyphens in a namespace (namespace_max_depth, 2)."""
    runner.invoke("user", "add", "alice", "--password-stdin", input="correct horse battery staple 1\n")
    deep = runner.invoke("namespace", "grant", "Acme.Data.Tools-CLI", "--owner", "alice")
    assert deep.exit_code == 1, deep.output
    assert (
        "'acme-data-tools-cli' has 3 hyphens, and a namespace may have at most 2 (namespace_max_depth)"
        in deep.output
    )
    assert runner.invoke("namespace", "list").output.strip() == "namespace\taccess\towners"  # none
    assert runner.invoke("namespace", "grant", "acme-data-tools", "--owner", "alice").exit_code == 0

    flat = tmp_path / "flat.toml"
    flat.write_text("namespace_max_depth = 0\n")
    one_word = runner.invoke("namespace", "grant", "beta-tools", "--owner", "alice", "--config", str(flat))
    assert one_word.exit_code == 1 and "at most 0 (namespace_max_depth)" in one_word.output
    assert (
        runner.invoke("namespace", "grant", "beta", "--owner", "alice", "--config", str(flat)).exit_code == 0
    )
    negative = tmp_path / "negative.toml"
    negative.write_text("namespace_max_depth = -1\n")
    refused = runner.invoke("namespace", "list", "--config", str(negative))
    assert refused.exit_code != 0 and "namespace_max_depth: must be 0 or more, got -1" in refused.output


def test_a_pending_publisher_cannot_create_a_project_in_someone_elses_namespace(make_app):
    """Trusted Publishing's pending publishers create projects too: the same rule applies."""
    from privindex.accounts import users
    from privindex.config import OIDCIssuer
    from privindex.db.connection import bound
    from privindex.oidc import publishers
    from privindex.ops import audit

    app = make_app(oidc_issuers=(OIDCIssuer("https://gitlab.example.test", "gitlab"),))
    settings = app.extensions["privindex"].settings
    with bound(app.extensions["privindex"].database):
        alice = users.create_user("alice", "correct horse battery", audit.CLI)
        mallory = users.create_user("mallory", "correct horse battery", audit.CLI)
        namespaces.grant("acme", ["alice"], False, audit.CLI, settings.namespace_max_depth)

        def add(user, name):
            return publishers.add_publisher(
                settings, name, "gitlab", "team/tool", ".gitlab-ci.yml", user, audit.CLI
            )

        with pytest.raises(AccountError, match="'acme-tool' is in the namespace 'acme', reserved for alice"):
            add(mallory, "acme-tool")
        assert add(alice, "acme-tool").pending_name == "acme-tool"
