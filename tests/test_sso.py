"""Sign-in through the team's identity provider, end to end: a real OpenID provider on
loopback (the certified oidc-provider package, tests/oidc_provider.mjs), a real
`privindex serve`, and headless chromium following the real redirects (authorization code
flow with PKCE, state and nonce)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from conftest import ROOT, add_user, audit_json, enrol_totp_cli, free_port, privindex_cli, start_server, twine
from test_web_browser import browser, page  # noqa: F401  (the fixtures)
from wheels import make_wheel

pytestmark = pytest.mark.browser

NODE_MODULES = ROOT / "tests" / "node_modules"
SHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"
ISSUER_ACCOUNTS = {
    "alice": {
        "email": "alice@team.example",
        "email_verified": True,
        "groups": ["developers"],
        "amr": ["pwd", "mfa"],
    },
    "bob": {"email": "bob@team.example", "email_verified": True, "groups": ["developers"], "amr": ["pwd"]},
    "dave-at-team": {
        "email": "Dave@team.example",
        "email_verified": True,
        "groups": ["developers"],
        "amr": ["mfa"],
    },
    "erin": {"email": "erin@team.example", "email_verified": True, "groups": ["developers"], "amr": ["otp"]},
    "frank": {
        "email": "frank@team.example",
        "email_verified": True,
        "groups": ["developers"],
        "amr": ["mfa"],
    },
    "gina": {"email": "gina@team.example", "email_verified": True, "groups": ["developers"], "amr": ["mfa"]},
    "hana": {"email": "hana@team.example", "email_verified": True, "groups": ["developers"], "amr": ["mfa"]},
    "carol": {
        "email": "carol@team.example",
        "email_verified": True,
        "groups": ["sales"],
        "amr": ["pwd", "mfa"],
    },
}


@pytest.fixture(scope="module")
def sso(tmp_path_factory):
    """The provider and a privindex that trusts it (required group `developers`, the
    provider's MFA trusted): (server, accounts file)."""
    if not (NODE_MODULES / "oidc-provider").is_dir() or not shutil.which("node"):
        pytest.fail("oidc-provider is missing: cd tests && npm install --no-save axe-core@4 oidc-provider@8")
    base = tmp_path_factory.mktemp("sso")
    accounts = base / "accounts.json"
    accounts.write_text(json.dumps(ISSUER_ACCOUNTS))
    op_port, port = free_port(), free_port()
    provider = subprocess.Popen(
        [
            "node",
            "oidc_provider.mjs",
            str(op_port),
            f"http://localhost:{port}/login/sso/callback",
            str(accounts),
        ],
        cwd=ROOT / "tests",
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert provider.stdout.readline().strip() == "listening"
        config = base / "privindex.toml"
        config.write_text(
            f"""[[sso_providers]]
issuer = "http://127.0.0.1:{op_port}"
client_id = "privindex"
client_secret = "privindex-secret"
label = "Team ID"
required_groups = ["developers"]
trust_provider_mfa = true
"""
        )
        server = start_server(base / "store", base / "data", "--port", str(port), config=config)
        server.origin = f"http://localhost:{port}"
        yield server, accounts
        server.stop()
    finally:
        provider.terminate()
        provider.wait(10)


def sign_in_through_provider(tab, server, name: str, button: str = "Sign in with Team ID") -> None:
    tab.goto(server.origin + "/login")  # and a click at once: the passkey options may still be on their way
    tab.get_by_role("link", name=button).click()
    tab.fill("#login", name)
    tab.get_by_role("button", name="Sign in to Team ID").click()
    # back here through the provider's redirects, and the page there read to its end
    tab.wait_for_url(lambda url: url.startswith(server.origin), wait_until="load")


def sign_in_fresh(browser, server, name: str) -> tuple[bool, str]:  # noqa: F811
    """Sign in through the provider from a new browser profile: (signed in here?, the page)."""
    context = browser.new_context()
    tab = context.new_page()
    sign_in_through_provider(tab, server, name)
    signed_in, content = tab.get_by_role("button", name="Sign out").count() == 1, tab.content()
    context.close()
    return signed_in, content


def test_first_sign_in_creates_the_user_and_trusts_the_providers_mfa(sso, page):  # noqa: F811
    server, _ = sso
    sign_in_through_provider(page, server, "alice")
    assert urlsplit(page.url).path != "/login"
    assert "/account/security" not in page.url  # the provider's MFA counts: no enrolment demanded
    assert page.get_by_role("button", name="Sign out").count() == 1
    assert "alice" in page.content()
    events = audit_json(server, "--user", "alice")
    tags = [e["tag"] for e in events]
    assert "user:create" in tags and "user:sso:link" in tags
    login = next(e for e in events if e["tag"] == "user:login:success")
    assert login["details"]["method"] == "sso"
    assert "privindex-secret" not in server.log_path.read_text()


def test_a_click_at_once_keeps_the_flow_when_the_passkey_options_answer_late(sso, page):  # noqa: F811
    """The sign-in page asks for passkey options as it loads; hana clicks "Sign in with Team
    ID" before they answer, and their answer (a session cookie made from the one the request
    carried) arrives after the redirect out. The started flow must survive it. Chromium's own
    interception holds both (the redirect to the provider is a hop Playwright's routes do not
    see), so the options' answer lands between the redirect and the provider's page, every
    time."""
    server, _ = sso
    paused: list[dict] = []
    cdp = page.context.new_cdp_session(page)
    cdp.on("Fetch.requestPaused", lambda event: paused.append(event))
    cdp.send(
        "Fetch.enable",
        {"patterns": [{"urlPattern": "*/login/passkey/options"}, {"urlPattern": "http://127.0.0.1:*"}]},
    )

    def held(part: str) -> dict:
        for _ in range(400):
            if found := [e for e in paused if part in e["request"]["url"]]:
                return found[0]
            page.wait_for_timeout(25)
        raise AssertionError(f"{part} was never asked for")

    def cookie() -> str:
        return "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())

    page.goto(server.origin + "/login", wait_until="domcontentloaded")
    options, sent_with = held("/login/passkey/options"), cookie()  # on its way
    page.get_by_role("link", name="Sign in with Team ID").click(no_wait_after=True)  # it waits, held
    provider = held("127.0.0.1")  # the redirect out is in, and the cookies it set
    flow_set = cookie()
    headers = [{"name": k, "value": v} for k, v in options["request"]["headers"].items()]
    cdp.send(
        "Fetch.continueRequest",
        {"requestId": options["requestId"], "headers": [*headers, {"name": "Cookie", "value": sent_with}]},
    )
    for _ in range(200):  # the late answer's cookie replaces the one the redirect set
        if cookie() != flow_set:
            break
        page.wait_for_timeout(25)
    assert cookie() != flow_set
    cdp.send("Fetch.continueRequest", {"requestId": provider["requestId"]})
    cdp.send("Fetch.disable")
    page.fill("#login", "hana")
    page.get_by_role("button", name="Sign in to Team ID").click()
    page.wait_for_url(lambda url: url.startswith(server.origin), wait_until="load")
    assert "not started here" not in page.content()
    assert page.get_by_role("button", name="Sign out").count() == 1


def test_without_the_providers_mfa_privindex_asks_for_its_own_second_factor(sso, page):  # noqa: F811
    server, _ = sso
    sign_in_through_provider(page, server, "bob")
    assert "/security" in page.url
    assert "requires a second factor" in page.content()
    page.goto(server.origin + "/projects")
    assert "/security" in page.url  # nothing else until bob enrols one


def test_the_providers_mfa_counts_for_upload_tokens_until_a_sign_in_without_it(
    sso,
    page,  # noqa: F811
    browser,  # noqa: F811
    tmp_path,
):
    """gina's only second factor is the provider's (trusted) MFA: under require_2fa she
    creates an upload token in the web UI and twine uploads with it. Once she signs in
    without the provider's MFA, it stands for nothing: the token no longer uploads."""
    server, accounts = sso
    sign_in_through_provider(page, server, "gina")
    page.goto(server.origin + "/tokens")
    page.get_by_label("Description (what is it for?)").fill("release")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_url(re.compile(r"/tokens/new$"))
    secret = page.get_by_label("Token", exact=True).input_value()
    first = twine(server.url, secret, make_wheel(tmp_path, "gina-tool", "1.0"))
    assert first.returncode == 0, first.output
    people = json.loads(accounts.read_text())
    people["gina"]["amr"] = ["pwd"]
    accounts.write_text(json.dumps(people))
    try:
        assert "requires a second factor" in sign_in_fresh(browser, server, "gina")[1]  # to enrol one
    finally:
        accounts.write_text(json.dumps(ISSUER_ACCOUNTS))
    second = twine(server.url, secret, make_wheel(tmp_path, "gina-tool", "1.1"))
    assert second.returncode != 0 and "second factor" in second.output


def test_a_person_outside_the_required_groups_is_refused_in_their_language(sso, browser):  # noqa: F811
    server, accounts = sso
    context = browser.new_context(locale="de-DE")
    tab = context.new_page()
    sign_in_through_provider(tab, server, "carol", button="Mit Team ID anmelden")
    assert urlsplit(tab.url).path == "/login/sso/callback"
    assert "nicht in einer Gruppe" in tab.content()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (390, 1280):
        tab.set_viewport_size({"width": width, "height": 900})
        tab.screenshot(path=SHOTS / f"sso-refused-{width}.png", full_page=True)
    context.close()
    assert not [e for e in audit_json(server) if e["tag"] == "user:create" and e.get("subject") == "carol"]


def test_a_person_removed_from_the_group_is_refused_at_next_sign_in(sso, browser):  # noqa: F811
    server, accounts = sso
    assert sign_in_fresh(browser, server, "alice")[0]
    people = json.loads(accounts.read_text())
    people["alice"]["groups"] = ["former-staff"]
    accounts.write_text(json.dumps(people))
    try:
        signed_in, content = sign_in_fresh(browser, server, "alice")
        assert not signed_in and "not in a group this index admits" in content
        failures = [e for e in audit_json(server, "--user", "alice") if e["tag"] == "user:login:failure"]
        assert failures[0]["details"]["reason"] == "sso_group"
    finally:
        accounts.write_text(json.dumps(ISSUER_ACCOUNTS))


def test_a_user_disabled_here_is_refused_at_sign_in_and_loses_their_tokens(sso, browser):  # noqa: F811
    server, _ = sso
    assert sign_in_fresh(browser, server, "erin")[0]
    privindex_cli(server, "token", "create", "erin", "--read-only")
    privindex_cli(server, "user", "disable", "erin")
    signed_in, content = sign_in_fresh(browser, server, "erin")
    assert not signed_in and "This account is disabled." in content
    events = audit_json(server, "--user", "erin")
    assert [e for e in events if e["tag"] == "token:revoke"]
    assert [e for e in events if e["tag"] == "user:login:failure" and e["details"]["reason"] == "disabled"]


def test_an_existing_account_links_only_after_its_owner_proves_it(sso, page):  # noqa: F811
    """dave has a password, TOTP and the address the provider verifies: the provider's MFA
    does not stand in for proving the account here, so password and code are asked first."""
    server, _ = sso
    SHOTS.mkdir(parents=True, exist_ok=True)
    add_user(server, "dave", PASSWORD)
    privindex_cli(server, "user", "email", "dave", "dave@team.example", "--verified")
    _totp, codes, _out = enrol_totp_cli(server, "dave")
    sign_in_through_provider(page, server, "dave-at-team")
    assert urlsplit(page.url).path == "/login/sso/link"
    assert "dave" in page.content()
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=SHOTS / f"sso-link-{width}.png", full_page=True)
    page.fill("#password", "not dave's password")
    with page.expect_navigation():  # the answer is a new page: read it, not the one before
        page.get_by_role("button", name="Link and sign in").click()
    assert "That password is not right." in page.content()
    assert not [e for e in audit_json(server, "--user", "dave") if e["tag"] == "user:sso:link"]
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Link and sign in").click()
    assert urlsplit(page.url).path == "/login/2fa"
    page.fill("#recovery-code", codes[0])  # the TOTP code of now was spent by the enrolment
    with page.expect_navigation():
        page.get_by_role("button", name="Use recovery code").click()
    page.get_by_role("button", name="Sign out").wait_for()
    assert [e for e in audit_json(server, "--user", "dave") if e["tag"] == "user:sso:link"]
    page.get_by_role("button", name="Sign out").click()
    page.goto(server.origin + "/login")  # the provider remembers dave: no form this time
    page.get_by_role("link", name="Sign in with Team ID").click()
    page.wait_for_url(lambda url: url.startswith(server.origin) and "/login" not in url)
    page.get_by_role("button", name="Sign out").wait_for()  # linked: the provider's MFA counts
    assert "dave-at-team" not in [
        line.split("\t")[0] for line in privindex_cli(server, "user", "list").stdout.splitlines()
    ]


def test_a_user_the_provider_made_confirms_a_sensitive_action_through_it(sso, page):  # noqa: F811
    """alice has no password here: the reauth page sends her to the provider, which must
    authenticate her again (prompt=login); signing in there as someone else confirms nothing."""
    server, _ = sso
    sign_in_through_provider(page, server, "alice")
    page.goto(server.origin + "/reauth?next=/tokens")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=SHOTS / f"sso-reauth-{width}.png", full_page=True)
    page.get_by_role("link", name="Confirm with Team ID").click()
    page.fill("#login", "frank")  # the provider asks again, whatever its session
    page.get_by_role("button", name="Sign in to Team ID").click()
    page.wait_for_load_state()
    assert "You signed in at the identity provider as someone else." in page.content()
    assert "frank" not in privindex_cli(server, "user", "list").stdout  # no user made, nothing linked
    page.goto(server.origin + "/reauth?next=/tokens")
    page.get_by_role("link", name="Confirm with Team ID").click()
    page.fill("#login", "alice")
    page.get_by_role("button", name="Sign in to Team ID").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/tokens")


def test_a_callback_with_a_wrong_state_is_refused(sso):
    """Plain HTTP here: a browser gives a test no hold of a redirect in mid-chain."""
    server, _ = sso
    http = requests.Session()
    location = http.get(server.origin + "/login/sso/0", allow_redirects=False).headers["Location"]
    form = http.get(location)  # the provider's login page
    uid = re.search(r'action="/interaction/([^"]+)"', form.text).group(1)
    answer = http.post(
        f"{urlsplit(form.url)._replace(path='', query='').geturl()}/interaction/{uid}",
        data={"login": "alice"},
        allow_redirects=False,
    )
    while not answer.headers["Location"].startswith(server.origin):
        answer = http.get(urljoin(answer.url, answer.headers["Location"]), allow_redirects=False)
    callback = urlsplit(answer.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(callback.query).items()}
    assert query["code"] and query["state"]
    forged = http.get(f"{server.origin}{callback.path}?{urlencode({**query, 'state': query['state'][::-1]})}")
    assert forged.status_code == 403
    assert "was not started here" in forged.text
    assert "Sign out" not in forged.text
    replayed = http.get(answer.headers["Location"])  # the flow was spent by the forged attempt
    assert replayed.status_code == 403 and "Sign out" not in replayed.text
    refused = [e for e in audit_json(server) if e["tag"] == "user:login:failure"]
    assert refused[0]["details"]["reason"] == "sso_state"
