"""The `privindex` command line: parse, call a service, print. Errors are one line."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable

import click

from privindex import __version__
from privindex.config import ConfigError, Settings, load_settings

SETTING_NAMES = set(Settings.__dataclass_fields__)


def fail(message: str, code: int = 1) -> None:
    click.echo(f"privindex: error: {message}", err=True)
    sys.exit(code)


def settings_options(command: Callable) -> Callable:
    """--config, --store and --data-dir, shared by every command that touches the data."""

    @click.option("--config", "config_path", type=click.Path(dir_okay=False),
                  help="TOML settings file (also PRIVINDEX_CONFIG). See config.example.toml.")
    @click.option("--store", type=click.Path(file_okay=False),
                  help="Package folder [default: ./packages_store].")
    @click.option("--data-dir", type=click.Path(file_okay=False),
                  help="Database and caches [default: ./privindex_data].")
    @functools.wraps(command)
    def wrapper(config_path: str | None, **kwargs: Any):
        overrides = {name: kwargs.pop(name) for name in list(kwargs) if name in SETTING_NAMES}
        return command(load(overrides, config_path), **kwargs)

    return wrapper


def load(overrides: dict[str, Any], config_path: str | None = None) -> Settings:
    try:
        return load_settings(config_path, overrides=overrides)
    except ConfigError as exc:
        fail(f"bad setting: {exc}", code=2)
        raise  # unreachable


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="privindex")
def main() -> None:
    """privindex: a private Python package index for small teams."""


@main.command()
@click.option("--host", help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=int, help="TCP port; 0 picks a free one [default: 8080].")
@click.option("--threads", type=int, help="Worker threads [default: 8].")
@click.option("--upstream", "upstream_url", metavar="URL",
              help="Serve names not known here from this index, e.g. https://upstream.example/simple/.")
@click.option("--send-files-via", type=click.Choice(["off", "x-accel-redirect", "x-sendfile"]),
              help="Let the reverse proxy send package files (nginx: x-accel-redirect) [default: off].")
@settings_options
def serve(settings: Settings) -> None:
    """Serve the package folder as a simple index (Ctrl-C stops)."""
    from privindex.server import serve as run

    try:
        run(settings, echo=click.echo)
    except OSError as exc:
        fail(f"cannot serve the store {settings.store} with data in {settings.data_dir}: {exc}")
    except RuntimeError as exc:  # including server.CannotListen
        fail(str(exc))


# -- accounts ------------------------------------------------------------------------------------

def open_data(settings: Settings):
    """The data dir's database, bound for the rest of the command (see db.py)."""
    from privindex.db.connection import bound, connect, describe

    try:
        db = connect(settings.database)
    except (RuntimeError, OSError, ValueError) as exc:
        fail(f"cannot open the database {describe(settings.database)}: {exc}")
    return bound(db)


def account_command(group: click.Group, *args, **kwargs) -> Callable:
    """A subcommand that opens the database and turns AccountError into one clear line."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(settings: Settings, **params: Any):
            from privindex.accounts.users import AccountError

            click.get_current_context().obj = settings
            with open_data(settings):
                try:
                    return fn(**params)
                except AccountError as exc:
                    fail(str(exc))

        return group.command(*args, **kwargs)(settings_options(wrapper))

    return decorate


def read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        fail("no terminal to ask for the password on; pipe it in with --password-stdin")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@main.group()
def user() -> None:
    """Manage users."""


@account_command(user, "add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May manage every project and user.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_add(name: str, admin: bool, password_stdin: bool) -> None:
    """Create a user (asks for the password twice unless it is piped in)."""
    from privindex.ops import audit
    from privindex.accounts import users

    new = users.create_user(name, read_password(password_stdin), audit.CLI, is_admin=admin)
    click.echo(f"created {'admin ' if admin else ''}user {new.username}", err=True)


@account_command(user, "list")
def user_list() -> None:
    """List users."""
    from privindex.accounts import users

    for u in users.list_users():
        flags = [f for f, on in (("admin", u.is_admin), ("disabled", u.is_disabled and not u.removed_at),
                                 ("removed", bool(u.removed_at)),
                                 ("2fa", users.has_second_factor(u))) if on]
        click.echo(f"{u.username}\t{','.join(flags) or '-'}\tcreated {_day(u.created_at)}"
                   f"\tlast login {_day(u.last_login_at)}")


@account_command(user, "disable")
@click.argument("name")
def user_disable(name: str) -> None:
    """Disable a user: their sessions end and their tokens are revoked, for good."""
    from privindex.ops import audit
    from privindex.accounts import users

    revoked = users.set_disabled(users.get_user(name), True, audit.CLI)
    click.echo(f"disabled {name}; {_tokens_revoked(revoked)}, their web sessions ended", err=True)


@account_command(user, "enable")
@click.argument("name")
def user_enable(name: str) -> None:
    """Enable a disabled user again (tokens revoked by the disable stay revoked)."""
    from privindex.ops import audit
    from privindex.accounts import users

    revoked = users.set_disabled(users.get_user(name), False, audit.CLI)
    if revoked:
        click.echo(f"enabled {name}; {_tokens_revoked(revoked)} when it was disabled: issue new ones "
                   f"(privindex token create {name})", err=True)
    else:
        click.echo(f"enabled {name}; it had no API tokens to revoke when it was disabled", err=True)


def _tokens_revoked(count: int) -> str:
    return f"its {count} API token{'' if count == 1 else 's'} {'was' if count == 1 else 'were'} revoked"


@account_command(user, "sign-out")
@click.argument("name")
def user_sign_out(name: str) -> None:
    """End every web session of user NAME at once (a lost laptop, a stolen cookie)."""
    from privindex.ops import audit
    from privindex.accounts import sessions
    from privindex.accounts import users

    ended = sessions.end_all(users.get_user(name), audit.CLI, reason="cli")
    click.echo(f"ended {ended} web session{'' if ended == 1 else 's'} of {name}", err=True)


@account_command(user, "totp")
@click.argument("name")
def user_totp(name: str) -> None:
    """Set up an authenticator app for NAME in this terminal: scan the QR code (or type the
    secret), then type the code the app shows. Prints recovery codes once, for a first factor."""
    import segno

    from privindex.ops import audit
    from privindex.accounts import second_factors as twofactor
    from privindex.accounts import users
    from privindex.auth import totp

    target = users.get_user(name)
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, target.username)
    click.echo(uri)
    segno.make(uri, error="m").terminal(compact=True)
    for attempt in range(3):
        code = click.prompt("Code the app shows now", err=True)
        try:
            codes = twofactor.enable_totp(target, secret, code, audit.CLI)
            break
        except users.AccountError as exc:
            if attempt == 2:
                raise
            click.echo(f"privindex: {exc}", err=True)
    click.echo(f"an authenticator app is set up for {target.username}", err=True)
    if codes:
        click.echo("Recovery codes (each works once; shown only now, keep them somewhere safe):", err=True)
        for c in codes:
            click.echo(c)


@account_command(user, "reset-2fa")
@click.argument("name")
def user_reset_2fa(name: str) -> None:
    """Remove every second factor of NAME (a lost phone and lost codes); ends their sessions."""
    from privindex.ops import audit
    from privindex.accounts import second_factors as twofactor
    from privindex.accounts import users

    twofactor.reset(users.get_user(name), audit.CLI)
    click.echo(f"removed every second factor of {name} and ended their web sessions; they can set up "
               f"new ones after signing in (or: privindex user totp {name})", err=True)


@account_command(user, "remove")
@click.argument("name")
def user_remove(name: str) -> None:
    """Remove NAME for good: refused while they are a project's last owner; their roles go,
    tokens are revoked, sessions end; the audit trail keeps their name."""
    from privindex.ops import audit
    from privindex.accounts import users

    revoked, roles = users.remove_user(users.get_user(name), audit.CLI)
    click.echo(f"removed {name}: {_tokens_revoked(revoked)}, {roles} project role{'' if roles == 1 else 's'} "
               "removed, their web sessions ended; their audit events stay", err=True)


@account_command(user, "set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_set_password(name: str, password_stdin: bool) -> None:
    """Set a user's password (ends their web sessions)."""
    from privindex.ops import audit
    from privindex.accounts import users

    target = users.get_user(name)
    users.set_password(target, read_password(password_stdin), audit.CLI)
    click.echo(f"password of {target.username} changed", err=True)


@main.group()
def token() -> None:
    """Manage API tokens (for twine, pip and CI)."""


@account_command(token, "create")
@click.argument("name")
@click.option("--project", "project_names", multiple=True, metavar="P",
              help="Limit the token to this project (repeatable); default: all the user's projects.")
@click.option("--read-only", is_flag=True, help="May read a private index, may not upload.")
@click.option("--expires", type=click.IntRange(min=1), metavar="DAYS", help="Expire after DAYS days.")
@click.option("--description", default="", help="What the token is for.")
def token_create(name: str, project_names: tuple[str, ...], read_only: bool, expires: int | None,
                 description: str) -> None:
    """Create a token for user NAME and print it (only this once) on standard output."""
    from privindex.accounts import api_tokens as apitokens
    from privindex.ops import audit
    from privindex.accounts import users

    row, secret = apitokens.create_token(users.get_user(name), audit.CLI, description=description,
                                        projects=list(project_names), read_only=read_only,
                                        expires_days=expires,
                                        require_2fa=click.get_current_context().obj.require_2fa)
    click.echo(secret)
    click.echo(f"token {row.id} created for {name}; it is shown only once. Use it with "
               "username __token__.", err=True)


@account_command(token, "list")
@click.argument("name", required=False)
def token_list(name: str | None) -> None:
    """List tokens (all, or user NAME's). Secrets are never shown."""
    from privindex.accounts import api_tokens as apitokens
    from privindex.accounts import users

    owner = users.get_user(name) if name else None
    click.echo("id\tuser\tprefix\tstatus\tscope\tcreated\texpires\tlast used\tdescription")
    for t in apitokens.list_tokens(owner):
        scope = "all projects" if t.all_projects else ",".join(
            sorted(link.project.name for link in t.project_links))
        if t.read_only:
            scope += " (read-only)"
        click.echo(f"{t.id}\t{t.user.username}\t{t.prefix}…\t{apitokens.token_status(t)}\t{scope}\t"
                   f"{_day(t.created_at)}\t{_day(t.expires_at)}\t{_day(t.last_used_at)}\t{t.description}")


@account_command(token, "revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke token TOKEN_ID (see token list); it stops working at once."""
    from privindex.accounts import api_tokens as apitokens
    from privindex.ops import audit

    revoked = apitokens.revoke_token(token_id, audit.CLI)
    click.echo(f"token {revoked.id} of {revoked.user.username} revoked", err=True)


@main.group()
def project() -> None:
    """Projects and who may upload to them."""


@account_command(project, "list")
def project_list() -> None:
    """List projects with their owners and maintainers."""
    from privindex.packages import projects

    click.echo("project\tfiles\towners\tmaintainers")
    for p in projects.list_projects():
        click.echo(f"{p.name}\t{p.files}\t{','.join(p.owners) or '(no owner)'}\t{','.join(p.maintainers) or '-'}")


def _file_actions(project_name: str, file_or_version: str, act: Callable[[str, str], None]) -> None:
    from packaging.utils import canonicalize_name

    from privindex.packages import withdrawal as files

    project_name = canonicalize_name(project_name)
    for filename in files.filenames(project_name, file_or_version):
        act(project_name, filename)


@account_command(project, "yank")
@click.argument("project_name", metavar="PROJECT")
@click.argument("file_or_version", metavar="FILENAME|VERSION")
@click.option("--reason", default="", help="Shown to people installing it (pip prints it).")
def project_yank(project_name: str, file_or_version: str, reason: str) -> None:
    """Yank one file or every file of a version: installable by exact pin only (PEP 592)."""
    from privindex.ops import audit
    from privindex.packages import withdrawal as files

    def act(project: str, filename: str) -> None:
        files.set_yanked(None, None, project, filename, True, reason, audit.CLI)
        click.echo(f"yanked {filename}", err=True)

    _file_actions(project_name, file_or_version, act)


@account_command(project, "unyank")
@click.argument("project_name", metavar="PROJECT")
@click.argument("file_or_version", metavar="FILENAME|VERSION")
def project_unyank(project_name: str, file_or_version: str) -> None:
    """Unyank one file or every file of a version."""
    from privindex.ops import audit
    from privindex.packages import withdrawal as files

    def act(project: str, filename: str) -> None:
        files.set_yanked(None, None, project, filename, False, "", audit.CLI)
        click.echo(f"unyanked {filename}", err=True)

    _file_actions(project_name, file_or_version, act)


@account_command(project, "delete")
@click.argument("project_name", metavar="PROJECT")
@click.argument("file_or_version", metavar="FILENAME|VERSION")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def project_delete(project_name: str, file_or_version: str, yes: bool) -> None:
    """Delete one file or every file of a version for good (the filename may be published anew)."""
    from privindex.ops import audit
    from privindex.packages import withdrawal as files
    from privindex.packages.store import Store

    store = Store(click.get_current_context().obj.store)
    if not yes:
        click.confirm(f"Delete {file_or_version} of {project_name} for good?", abort=True, err=True)

    def act(project: str, filename: str) -> None:
        files.delete(store, None, None, project, filename, audit.CLI)
        click.echo(f"deleted {filename}", err=True)

    _file_actions(project_name, file_or_version, act)


@account_command(project, "add-maintainer")
@click.argument("project_name")
@click.argument("username")
def project_add_maintainer(project_name: str, username: str) -> None:
    """Let USERNAME upload to PROJECT_NAME."""
    from privindex.ops import audit
    from privindex.packages import projects

    projects.set_role(project_name, username, "maintainer", audit.CLI)
    click.echo(f"{username} maintains {project_name}", err=True)


@account_command(project, "remove-maintainer")
@click.argument("project_name")
@click.argument("username")
def project_remove_maintainer(project_name: str, username: str) -> None:
    """Take away USERNAME's maintainer role on PROJECT_NAME."""
    from privindex.ops import audit
    from privindex.packages import projects

    projects.remove_role(project_name, username, audit.CLI, role="maintainer")
    click.echo(f"{username} no longer maintains {project_name}", err=True)


@account_command(project, "set-owner")
@click.argument("project_name")
@click.argument("username")
def project_set_owner(project_name: str, username: str) -> None:
    """Make USERNAME an owner of PROJECT_NAME (other owners stay)."""
    from privindex.ops import audit
    from privindex.packages import projects

    projects.set_role(project_name, username, "owner", audit.CLI)
    click.echo(f"{username} owns {project_name}", err=True)


@main.group()
def publisher() -> None:
    """Trusted Publishing: CI workflows that may exchange their identity token for an upload token."""


@account_command(publisher, "add")
@click.argument("project_name")
@click.option("--gitlab", "gitlab", metavar="GROUP/REPO", help="A GitLab project (its project_path).")
@click.option("--github", "github", metavar="OWNER/REPO", help="A GitHub repository.")
@click.option("--forgejo", "forgejo", metavar="OWNER/REPO", help="A Forgejo repository.")
@click.option("--workflow-ref", "--workflow", "workflow", required=True, metavar="FILE",
              help="GitLab: the CI file's path (.gitlab-ci.yml); GitHub/Forgejo: the workflow file (release.yml).")
@click.option("--environment", help="Only jobs running in this deployment environment.")
@click.option("--owner-id", help="GitHub/Forgejo: the repository owner's numeric id (guards against a "
                                 "re-registered owner name).")
@click.option("--issuer", help="The issuer URL, when several of that kind are configured.")
@click.option("--user", "username", help="The user the minted tokens act for (an owner of the project; "
                                         "required for a project that does not exist yet). "
                                         "Default: the project's first owner.")
def publisher_add(project_name: str, gitlab: str | None, github: str | None, forgejo: str | None, workflow: str,
                  environment: str | None, owner_id: str | None, issuer: str | None, username: str | None) -> None:
    """Trust a CI workflow to upload to PROJECT_NAME (or to create it, if it does not exist)."""
    from privindex.ops import audit
    from privindex.packages import projects
    from privindex.oidc import publishers as trusted_publishing
    from privindex.accounts import users

    given = [(kind, repo) for kind, repo in (("gitlab", gitlab), ("github", github), ("forgejo", forgejo)) if repo]
    if len(given) != 1:
        fail("name exactly one of --gitlab, --github or --forgejo")
    kind, repository = given[0]
    if username is None:
        info = next(iter(projects.list_projects(name=trusted_publishing.canonicalize_name(project_name))), None)
        if info is None or not info.owners:
            fail("name the user the minted tokens act for with --user (the project has no owner)")
        username = info.owners[0]
    row = trusted_publishing.add_publisher(
        click.get_current_context().obj, project_name, kind, repository, workflow, users.get_user(username),
        audit.CLI, environment=environment, repository_owner_id=owner_id, issuer_url=issuer)
    state = " (pending: its first exchange creates the project)" if row.project_id is None else ""
    click.echo(f"publisher {row.id} added to {trusted_publishing.project_of(row)}{state}: "
               f"{trusted_publishing.describe(row)}, acting for {username}", err=True)


@account_command(publisher, "list")
@click.argument("project_name", required=False)
def publisher_list(project_name: str | None) -> None:
    """List trusted publishers (all, or PROJECT_NAME's)."""
    from privindex.oidc import publishers as trusted_publishing

    click.echo("id\tproject\tkind\trepository\tworkflow\tenvironment\tacts for\tissuer")
    for p in trusted_publishing.list_publishers(project_name):
        name = trusted_publishing.project_of(p) + (" (pending)" if p.project_id is None else "")
        click.echo(f"{p.id}\t{name}\t{p.kind}\t{p.repository}\t{p.workflow}\t{p.environment or '-'}\t"
                   f"{p.created_by.username}\t{p.issuer}")


@account_command(publisher, "remove")
@click.argument("publisher_id", type=int)
def publisher_remove(publisher_id: int) -> None:
    """Stop trusting publisher PUBLISHER_ID (see publisher list); its live tokens are revoked."""
    from privindex.ops import audit
    from privindex.oidc import publishers as trusted_publishing

    row = trusted_publishing.remove_publisher(publisher_id, audit.CLI)
    click.echo(f"publisher {row.id} removed from {trusted_publishing.project_of(row)}", err=True)


@account_command(project, "claim")
@click.argument("project_name")
@click.option("--owner", "username", help="Make this user its owner (who may then upload).")
def project_claim(project_name: str, username: str | None) -> None:
    """Make PROJECT_NAME local: the upstream index is hidden for it from now on."""
    from privindex.ops import audit
    from privindex.packages import projects
    from privindex.upstream import source_rules as sources

    changed = sources.claim(project_name, audit.CLI)
    if username:
        projects.set_role(project_name, username, "owner", audit.CLI)
    click.echo(f"{project_name} is {'now' if changed else 'already'} claimed here; the upstream is hidden "
               "for it", err=True)


@account_command(project, "allow-upstream")
@click.argument("project_name")
@click.option("--revoke", is_flag=True, help="Hide the upstream's files for it again.")
def project_allow_upstream(project_name: str, revoke: bool) -> None:
    """Merge the upstream's files for PROJECT_NAME into its page, after the local ones."""
    from privindex.ops import audit
    from privindex.upstream import source_rules as sources

    changed = sources.set_upstream_allowed(project_name, not revoke, audit.CLI)
    state = "hidden" if revoke else "merged after the local files"
    click.echo(f"{project_name}: the upstream's files are {'now' if changed else 'already'} {state}", err=True)


@main.group("file")
def file_group() -> None:
    """Deliberate changes to published files (each one audited as file:replace)."""


def publishing_command(fn: Callable) -> Callable:
    """Opens the database and the store (and passes the settings' archive limits); a
    refusal is one clear line and exit 1."""

    @functools.wraps(fn)
    def wrapper(settings: Settings, **params: Any):
        from privindex.packages.publishing import PublishError
        from privindex.packages.store import Store

        with open_data(settings):
            try:
                return fn(Store(settings.store), limits=settings.archive_limits, **params)
            except PublishError as exc:
                fail(str(exc))

    return settings_options(wrapper)


@file_group.command("accept")
@click.argument("filename")
@publishing_command
def file_accept(store, limits, filename: str) -> None:
    """Publish the bytes now on disk as FILENAME's content (after a change by hand).

    A running server lists the file again, with its new sha256, within a second or two.
    """
    from privindex.ops import audit
    from privindex.packages import publishing

    old, new = publishing.accept(store, filename, audit.CLI, limits)
    click.echo(f"{filename}: published sha256 {old} -> {new}", err=True)


@file_group.command("replace")
@click.argument("filename")
@click.argument("newfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@publishing_command
def file_replace(store, limits, filename: str, newfile: Path) -> None:
    """Replace FILENAME's content with NEWFILE (written atomically) and publish it."""
    from privindex.ops import audit
    from privindex.packages import publishing

    old, new = publishing.replace(store, filename, newfile, audit.CLI, limits)
    click.echo(f"{filename}: published sha256 {old} -> {new}", err=True)


@main.command("audit")
@settings_options
@click.option("--user", "username", help="Events done by or to this user.")
@click.option("--project", "project_name", help="Events about this project.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
              help="Only events at or after this UTC date (YYYY-MM-DD[THH:MM:SS]).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit_command(settings: Settings, username: str | None, project_name: str | None, since,
                  as_json: bool) -> None:
    """Show the audit trail, newest first."""
    import calendar
    import json

    from packaging.utils import canonicalize_name

    from privindex.ops import audit

    since_ts = calendar.timegm(since.timetuple()) if since else None
    with open_data(settings):
        events = audit.query(username=username.lower() if username else None,
                             project=canonicalize_name(project_name) if project_name else None, since=since_ts)
        for event in events:
            row = audit.as_dict(event)
            if as_json:
                click.echo(json.dumps(row, sort_keys=True))
            else:
                click.echo(f"{row['time']}\t{row['tag']}\t{row['actor'] or '-'}\t{row['subject'] or '-'}\t"
                           f"{row['project'] or '-'}\t{row['ip'] or '-'}\t"
                           f"{json.dumps(row['details'], sort_keys=True)}")


def _day(timestamp: float | None) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(timestamp)) if timestamp else "-"


# -- the upstream cache ---------------------------------------------------------------------------

@main.group("cache")
def cache_group() -> None:
    """The pull-through cache of the upstream index (data dir, upstream/)."""


def _upstream_cache(settings: Settings):
    from privindex.app import make_upstream_cache
    from privindex.config import replace

    if not settings.upstream_url:  # the cache on disk is still there to list or prune
        settings = replace(settings, upstream_url="http://upstream.invalid/")
    return make_upstream_cache(replace(settings, upstream_offline=True))


@cache_group.command("list")
@settings_options
def cache_list(settings: Settings) -> None:
    """List cached upstream files, most recently used first."""
    cache = _upstream_cache(settings)
    click.echo("file\tbytes\tlast used (UTC)")
    for rel, size, used in cache.listing():
        click.echo(f"{rel}\t{size}\t{_day(used)}")
    click.echo(f"{len(cache.listing())} files, {cache.total_bytes() / 1e6:.1f} MB "
               f"(limit {settings.upstream_cache_max_gb} GB)", err=True)


@cache_group.command("prune")
@settings_options
@click.option("--max-gb", type=float, help="Prune down to this size [default: upstream_cache_max_gb].")
@click.option("--all", "everything", is_flag=True, help="Remove every cached file.")
def cache_prune(settings: Settings, max_gb: float | None, everything: bool) -> None:
    """Remove least recently used upstream files until the cache fits."""
    cache = _upstream_cache(settings)
    limit = 0 if everything else int((max_gb if max_gb is not None else settings.upstream_cache_max_gb) * 1024**3)
    removed = cache.prune(limit, report=lambda line: click.echo(line, err=True))
    click.echo(f"removed {removed} files; {cache.total_bytes() / 1e6:.1f} MB left", err=True)


# -- maintenance ----------------------------------------------------------------------------------

@main.command()
@settings_options
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
def backup(settings: Settings, dest: Path) -> None:
    """Copy the database and the store into DEST, safely while the server runs.

    Restore by serving the copy: privindex serve --data-dir DEST/data --store DEST/packages
    (or copy those two folders back into place).
    """
    from privindex.ops.maintenance import MaintenanceError, record_success
    from privindex.ops.maintenance import backup as run_backup
    from privindex.packages.store import Store

    try:
        result = run_backup(settings.database, Store(settings.store), dest,
                            lambda line: click.echo(line, err=True))
    except MaintenanceError as exc:
        fail(str(exc))
    for problem in result.problems:
        click.echo(f"problem: {problem}", err=True)
    click.echo(f"backed up {result.files} files ({result.bytes / 1e6:.1f} MB) and the database to {dest}",
               err=True)
    if result.problems:
        sys.exit(1)
    record_success(settings.data_dir, "backup")


@main.command()
@settings_options
@click.option("--quick", is_flag=True, help="Compare sizes only; do not re-read every file.")
def check(settings: Settings, quick: bool) -> None:
    """Verify every file against its recorded hash; report missing and unindexed files.

    Exits with 1 if anything is wrong.
    """
    from privindex.ops.maintenance import MaintenanceError, record_success
    from privindex.ops.maintenance import check as run_check
    from privindex.packages.store import Store

    try:
        result = run_check(settings.database, Store(settings.store),
                           lambda line: click.echo(line, err=True), rehash=not quick,
                           limits=settings.archive_limits)
    except MaintenanceError as exc:
        fail(str(exc))
    problems, checked = list(result.problems), result.checked
    if settings.upstream_dir.is_dir():  # cached upstream files, by the digest they are filed under
        cached, cache_problems = _upstream_cache(settings).check()
        problems += cache_problems
        checked += cached
    for problem in problems:
        click.echo(f"problem: {problem}")
    if problems:
        click.echo(f"{len(problems)} problem(s) in {checked} files", err=True)
        sys.exit(1)
    click.echo(f"all {checked} files match their records", err=True)
    record_success(settings.data_dir, "check")


@main.command("migrate-db")
@settings_options
@click.option("--to", "target_url", required=True, metavar="URL",
              help="The empty PostgreSQL database: postgresql://user:password@host:port/name.")
@click.option("--skip-check", is_flag=True, help="Do not run `privindex check` on the new database.")
def migrate_db(settings: Settings, target_url: str, skip_check: bool) -> None:
    """Copy the data dir's SQLite database to an empty PostgreSQL database.

    Stop the servers first: what they write during the copy is not copied. Every table is
    copied in one transaction, the row counts are compared, and `privindex check` runs
    against the new database. The SQLite file is left as it was.
    """
    from privindex.db.connection import redact_url
    from privindex.ops.database_copy import CopyError, copy_sqlite_to_postgres
    from privindex.ops.maintenance import MaintenanceError
    from privindex.ops.maintenance import check as run_check
    from privindex.packages.store import Store

    shown = redact_url(target_url)
    click.echo(f"copying {settings.database_path} to {shown}", err=True)
    try:
        result = copy_sqlite_to_postgres(settings.database_path, target_url, lambda line: click.echo(line, err=True))
    except (CopyError, ValueError) as exc:
        fail(str(exc))
    rows = sum(result.counts.values())
    click.echo(f"copied and verified {len(result.counts)} tables, {rows:,} rows: the row counts match", err=True)
    if not skip_check:
        try:
            checked = run_check(target_url, Store(settings.store), lambda line: click.echo(line, err=True))
        except MaintenanceError as exc:
            fail(f"the copy is committed, but check could not run: {exc}")
        for problem in checked.problems:
            click.echo(f"problem: {problem}")
        if checked.problems:
            fail(f"the copy is committed, but check found {len(checked.problems)} problem(s) in "
                 f"{checked.checked} files (the SQLite installation has them too: `privindex check`)")
        click.echo(f"check: all {checked.checked} files match their records in the new database", err=True)
    click.echo(f"done. Point every server at it: database_url = \"{shown}\" (or PRIVINDEX_DATABASE_URL), "
               f"with the same store and data dir; keep {settings.database_path.name} as a backup", err=True)
