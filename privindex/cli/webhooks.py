"""`privindex webhook ...`: add, list and remove webhooks (a project's, or index-wide)."""

from __future__ import annotations

import click

from privindex.cli.common import account_command, day


@click.group()
def webhook() -> None:
    """Signed HTTP POSTs to other systems when files are uploaded, yanked or deleted."""


@account_command(webhook, "add")
@click.argument("url")
@click.option("--project", help="The project whose events it hears [default: every project].")
@click.option("--event", "event_names", multiple=True, help="An event it hears (repeatable) [default: all].")
def webhook_add(url: str, project: str | None, event_names: tuple[str, ...]) -> None:
    """Add a webhook to URL; prints its signing secret, shown only this once."""
    from privindex.notify import webhooks
    from privindex.notify.events import EVENTS
    from privindex.ops import audit

    settings = click.get_current_context().obj
    hook, secret = webhooks.add(
        project, url, event_names or EVENTS, settings.webhook_allowed_host_names, audit.CLI
    )
    click.echo(secret)
    scope = f"project {hook.project}" if hook.project else "every project"
    click.echo(
        f"webhook {hook.id} to {webhooks.shown_url(hook.url)} added for {scope} ({hook.events}); "
        "the secret above signs each message (X-Privindex-Signature) and is not shown again",
        err=True,
    )


@account_command(webhook, "list")
@click.option("--project", help="Only this project's [default: all].")
def webhook_list(project: str | None) -> None:
    """List webhooks: id, project (* for every project), URL's origin, events, added."""
    from privindex.db.models import Webhook
    from privindex.notify import webhooks

    hooks = Webhook.select().order_by(Webhook.id)
    if project:
        hooks = webhooks.hooks_of(project)
    for hook in hooks:
        url = webhooks.shown_url(hook.url)
        click.echo(f"{hook.id}\t{hook.project or '*'}\t{url}\t{hook.events}\t{day(hook.created_at)}")


@account_command(webhook, "remove")
@click.argument("hook_id", type=int)
def webhook_remove(hook_id: int) -> None:
    """Remove webhook HOOK_ID (see: privindex webhook list)."""
    from privindex.notify import webhooks
    from privindex.ops import audit

    hook = webhooks.remove(hook_id, audit.CLI)
    click.echo(f"webhook {hook_id} to {webhooks.shown_url(hook.url)} removed", err=True)
