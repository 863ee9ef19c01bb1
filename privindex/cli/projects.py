"""`privindex project ...`: roles, yank, unyank, delete, claim, the upstream allowance, status."""

from __future__ import annotations

from collections.abc import Callable

import click

from privindex.cli.common import account_command


@click.group()
def project() -> None:
    """Projects and who may upload to them."""


@account_command(project, "list")
def project_list() -> None:
    """List projects with their owners and maintainers."""
    from privindex.packages import projects

    click.echo("project\tfiles\towners\tmaintainers")
    for p in projects.list_projects():
        click.echo(
            f"{p.name}\t{p.files}\t{','.join(p.owners) or '(no owner)'}\t{','.join(p.maintainers) or '-'}"
        )


def _file_actions(project_name: str, file_or_version: str, act: Callable[[str, str], None]) -> None:
    from packaging.utils import canonicalize_name

    from privindex.packages import withdrawal

    project_name = canonicalize_name(project_name)
    names = withdrawal.filenames(project_name, file_or_version)
    _unpublish_static(project_name, _recorded_paths(project_name))
    for filename in names:
        act(project_name, filename)


def _recorded_paths(name: str) -> list[str]:
    from privindex.db.models import DistFile

    return [path for (path,) in DistFile.select(DistFile.path).where(DistFile.project == name).tuples()]


def _unpublish_static(name: str, paths: list[str]) -> None:
    """nginx sends the data dir's pre-rendered pages and serving tree without asking
    privindex, which may be stopped or on another host: remove the project's pages and the
    links at its paths, so nginx falls through to privindex until a server writes them anew.
    Before the change is committed: a running server that rewrites them after it saw the
    change writes the new state, never to be removed by this."""
    from privindex.accounts.permissions import project_exists
    from privindex.packages import serving_tree, static_pages

    if not project_exists(name):  # no page, no link (and the change itself is refused)
        return
    settings = click.get_current_context().obj
    try:
        static_pages.forget(settings.static_dir, name)
        serving_tree.forget(settings.data_dir, paths)
    except OSError as exc:
        click.echo(
            f"could not remove {name}'s pre-rendered pages or served links from {settings.static_dir} "
            f"({exc.strerror or exc}): nginx may serve the old ones until privindex runs there again",
            err=True,
        )


@account_command(project, "yank")
@click.argument("project_name", metavar="PROJECT")
@click.argument("file_or_version", metavar="FILENAME|VERSION")
@click.option("--reason", default="", help="Shown to people installing it (pip prints it).")
def project_yank(project_name: str, file_or_version: str, reason: str) -> None:
    """Yank one file or every file of a version: installable by exact pin only (PEP 592)."""
    from privindex.ops import audit
    from privindex.packages import withdrawal

    def act(project: str, filename: str) -> None:
        withdrawal.set_yanked(None, None, project, filename, True, reason, audit.CLI)
        click.echo(f"yanked {filename}", err=True)

    _file_actions(project_name, file_or_version, act)


@account_command(project, "unyank")
@click.argument("project_name", metavar="PROJECT")
@click.argument("file_or_version", metavar="FILENAME|VERSION")
def project_unyank(project_name: str, file_or_version: str) -> None:
    """Unyank one file or every file of a version."""
    from privindex.ops import audit
    from privindex.packages import withdrawal

    def act(project: str, filename: str) -> None:
        withdrawal.set_yanked(None, None, project, filename, False, "", audit.CLI)
        click.echo(f"unyanked {filename}", err=True)

    _file_actions(project_name, file_or_version, act)


@account_command(project, "delete")
@click.argument("project_name", metavar="PROJECT")
@click.argument("file_or_version", metavar="FILENAME|VERSION")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def project_delete(project_name: str, file_or_version: str, yes: bool) -> None:
    """Delete one file or every file of a version for good (the filename may be published anew)."""
    from privindex.ops import audit
    from privindex.packages import withdrawal
    from privindex.packages.store import Store

    store = Store(click.get_current_context().obj.store)
    if not yes:
        click.confirm(f"Delete {file_or_version} of {project_name} for good?", abort=True, err=True)

    def act(project: str, filename: str) -> None:
        withdrawal.delete(store, None, None, project, filename, audit.CLI)
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


@account_command(project, "claim")
@click.argument("project_name")
@click.option("--owner", "username", help="Make this user its owner (who may then upload).")
def project_claim(project_name: str, username: str | None) -> None:
    """Make PROJECT_NAME local: the upstream index is hidden for it from now on."""
    from packaging.utils import canonicalize_name

    from privindex.accounts import permissions, users
    from privindex.ops import audit
    from privindex.packages import projects
    from privindex.upstream import source_rules

    if username and not permissions.project_exists(canonicalize_name(project_name)):
        try:  # the new owner, not the admin, is who creates it under a namespace
            permissions.check_namespace(users.get_user(username), canonicalize_name(project_name))
        except permissions.NamespaceReserved as exc:
            raise users.AccountError(str(exc)) from None
    changed = source_rules.claim(project_name, audit.CLI)
    if username:
        projects.set_role(project_name, username, "owner", audit.CLI)
    click.echo(
        f"{project_name} is {'now' if changed else 'already'} claimed here; the upstream is hidden for it",
        err=True,
    )


@account_command(project, "allow-upstream")
@click.argument("project_name")
@click.option("--revoke", is_flag=True, help="Hide the upstream's files for it again.")
def project_allow_upstream(project_name: str, revoke: bool) -> None:
    """Merge the upstream's files for PROJECT_NAME into its page, after the local ones."""
    from packaging.utils import canonicalize_name

    from privindex.ops import audit
    from privindex.upstream import source_rules

    _unpublish_static(canonicalize_name(project_name), [])  # its page mixes in the upstream now, or not
    changed = source_rules.set_upstream_allowed(project_name, not revoke, audit.CLI)
    state = "hidden" if revoke else "merged after the local files"
    click.echo(
        f"{project_name}: the upstream's files are {'now' if changed else 'already'} {state}", err=True
    )


@account_command(project, "status")
@click.argument("project_name", metavar="PROJECT")
@click.argument("status", type=click.Choice(["active", "archived", "deprecated", "quarantined"]))
@click.option("--reason", default="", help="Why, shown with the status on its pages (PEP 792).")
def project_status(project_name: str, status: str, reason: str) -> None:
    """Mark PROJECT active, archived (no uploads), deprecated or quarantined (no uploads, no
    files served). A running server follows within a rescan interval."""
    from packaging.utils import canonicalize_name

    from privindex.ops import audit
    from privindex.packages import project_status as statuses

    new = statuses.parse(status, reason)
    name = canonicalize_name(project_name)
    _unpublish_static(name, _recorded_paths(name))
    changed = statuses.set_status(project_name, new, audit.CLI)
    click.echo(f"{project_name} is {'now' if changed else 'already'} {status}", err=True)
    if status == "quarantined":
        click.echo(
            "its pages list no files and its files are not served; lift it with: "
            f"privindex project status {project_name} active",
            err=True,
        )
