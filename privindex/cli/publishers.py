"""`privindex publisher ...`: Trusted Publishing's CI workflows per project."""

from __future__ import annotations

import click

from privindex.cli.common import account_command, fail


@click.group()
def publisher() -> None:
    """Trusted Publishing: CI workflows that may exchange their identity token for an upload token."""


@account_command(publisher, "add")
@click.argument("project_name")
@click.option("--gitlab", "gitlab", metavar="GROUP/REPO", help="A GitLab project (its project_path).")
@click.option("--github", "github", metavar="OWNER/REPO", help="A GitHub repository.")
@click.option("--forgejo", "forgejo", metavar="OWNER/REPO", help="A Forgejo repository.")
@click.option(
    "--workflow-ref",
    "--workflow",
    "workflow",
    required=True,
    metavar="FILE",
    help="GitLab: the CI file's path (.gitlab-ci.yml); GitHub/Forgejo: the workflow file (release.yml).",
)
@click.option("--environment", help="Only jobs running in this deployment environment.")
@click.option(
    "--owner-id",
    help="GitHub/Forgejo: the repository owner's numeric id (guards against a re-registered owner name).",
)
@click.option("--issuer", help="The issuer URL, when several of that kind are configured.")
@click.option(
    "--user",
    "username",
    help="The user the minted tokens act for (an owner of the project; "
    "required for a project that does not exist yet). "
    "Default: the project's first owner.",
)
def publisher_add(
    project_name: str,
    gitlab: str | None,
    github: str | None,
    forgejo: str | None,
    workflow: str,
    environment: str | None,
    owner_id: str | None,
    issuer: str | None,
    username: str | None,
) -> None:
    """Trust a CI workflow to upload to PROJECT_NAME (or to create it, if it does not exist)."""
    from privindex.accounts import users
    from privindex.oidc import publishers
    from privindex.ops import audit
    from privindex.packages import projects

    given = [
        (kind, repo) for kind, repo in (("gitlab", gitlab), ("github", github), ("forgejo", forgejo)) if repo
    ]
    if len(given) != 1:
        fail("name exactly one of --gitlab, --github or --forgejo")
    kind, repository = given[0]
    if username is None:
        info = next(iter(projects.list_projects(name=publishers.canonicalize_name(project_name))), None)
        if info is None or not info.owners:
            fail("name the user the minted tokens act for with --user (the project has no owner)")
        username = info.owners[0]
    row = publishers.add_publisher(
        click.get_current_context().obj,
        project_name,
        kind,
        repository,
        workflow,
        users.get_user(username),
        audit.CLI,
        environment=environment,
        repository_owner_id=owner_id,
        issuer_url=issuer,
    )
    state = " (pending: its first exchange creates the project)" if row.project_id is None else ""
    click.echo(
        f"publisher {row.id} added to {publishers.project_of(row)}{state}: "
        f"{publishers.describe(row)}, acting for {username}",
        err=True,
    )


@account_command(publisher, "list")
@click.argument("project_name", required=False)
def publisher_list(project_name: str | None) -> None:
    """List trusted publishers (all, or PROJECT_NAME's)."""
    from privindex.oidc import publishers

    click.echo("id\tproject\tkind\trepository\tworkflow\tenvironment\tacts for\tissuer")
    for p in publishers.list_publishers(project_name):
        name = publishers.project_of(p) + (" (pending)" if p.project_id is None else "")
        click.echo(
            f"{p.id}\t{name}\t{p.kind}\t{p.repository}\t{p.workflow}\t{p.environment or '-'}\t"
            f"{p.created_by.username}\t{p.issuer}"
        )


@account_command(publisher, "remove")
@click.argument("publisher_id", type=int)
def publisher_remove(publisher_id: int) -> None:
    """Stop trusting publisher PUBLISHER_ID (see publisher list); its live tokens are revoked."""
    from privindex.oidc import publishers
    from privindex.ops import audit

    row = publishers.remove_publisher(publisher_id, audit.CLI)
    click.echo(f"publisher {row.id} removed from {publishers.project_of(row)}", err=True)
