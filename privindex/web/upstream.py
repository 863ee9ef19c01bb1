"""The upstream index in the web UI: a project's source (the `_upstream_status.html`
partial, through a template global) and the admins' page (whether the upstream answers,
the cache's size, shadowed and refused names; claim, allow or stop allowing the upstream,
each act audited by upstream/source_rules.py)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from packaging.utils import canonicalize_name

from privindex.api.http import audit_context
from privindex.upstream import source_rules
from privindex.upstream.source_rules import Source
from privindex.web import confirm
from privindex.web.admin import admin_required
from privindex.web.blueprint import bp, me, recent_auth, services


@bp.app_context_processor
def _upstream_globals():
    return {"upstream_status": upstream_status}


def upstream_status(name: str) -> dict | None:
    """What the partial shows for a project page; None when no upstream is configured."""
    srcs = services().sources
    if not srcs.upstream_on:
        return None
    kind = srcs.source(name)
    entry = srcs.cache.cached_entry(name)
    cached = entry.project if entry is not None else None
    is_admin = current_user.is_authenticated and me().is_admin
    shadowed = dict(source_rules.shadowed_names()).get(name) if is_admin else None
    return {
        "kind": kind.value,
        "cached_files": len(cached.files) if cached else 0,
        "fetched_at": entry.fetched_at if entry else None,
        "shadowed_at": shadowed,
        "is_admin": is_admin,
        "local": srcs.known_locally(name),
        "hidden": srcs.cache.hidden_by_cooldown(name) if kind is not Source.LOCAL else [],
    }


def upstream_known(name: str) -> bool:
    """Whether the project page of a name not known here has something to show."""
    srcs = services().sources
    if not srcs.upstream_on or srcs.source(name) is not Source.UPSTREAM:
        return False
    entry = srcs.cache.cached_entry(name)
    return entry is not None and entry.project is not None


@bp.get("/admin/upstream")
@admin_required
def admin_upstream():
    """Whether the upstream answers, what its cache holds, and the names the source rules
    decide against it (shadowed: local names it publishes too; refused: first uploads the
    upload guard turned away)."""
    srcs = services().sources
    cache = srcs.cache
    files, size = cache.size() if cache else (0, 0)
    return render_template(
        "admin_upstream.html",
        on=srcs.upstream_on,
        url=cache.upstream.shown_url if cache else "",
        offline=services().settings.upstream_offline,
        reach=cache.reachability.current() if cache else None,
        shadowed=source_rules.shadowed_names(),
        refused=source_rules.refused_names() if cache else [],
        allowed=sorted(srcs.allowed),
        cached_projects=len(cache.names) if cache else 0,
        cache_files=files,
        cache_bytes=size,
    )


@bp.post("/admin/upstream")
@admin_required
@recent_auth
def admin_upstream_action():
    name = canonicalize_name(request.form.get("name", "").strip())
    action = request.form.get("action")
    ctx = audit_context().with_actor(me())
    if not name:
        flash(_("Give a project name."), "error")
    elif action == "claim":
        source_rules.claim(name, ctx)
        flash(_("%(name)s is claimed here: the upstream is hidden for it.", name=name), "info")
    elif action in ("allow", "revoke"):
        if action == "allow" and (
            page := confirm.ask(
                _("Allow the upstream's files for %(project)s", project=name),
                _(
                    "This reopens dependency confusion for %(project)s: whoever publishes %(project)s "
                    "on the upstream index can then have their files installed by your team.",
                    project=name,
                ),
                url_for("web.admin_upstream"),
            )
        ):
            return page
        source_rules.set_upstream_allowed(name, action == "allow", ctx)
        flash(
            _("The upstream's files for %(name)s are merged after the local ones.", name=name)
            if action == "allow"
            else _("The upstream's files for %(name)s are hidden.", name=name),
            "info",
        )
    else:
        flash(_("Unknown action."), "error")
    services().sources.reload()
    back = request.form.get("back")
    if back == "project" and name:
        return redirect(url_for("web.project_page", name=name))
    return redirect(url_for("web.admin_upstream"))
