"""Teams on the web: the admin's Teams page (list, create, members, roles, delete), a
project's teams in its settings for its owners (`_teams_manage.html`), and "maintained by
team X" beside its people (`_teams.html`), both partials fed by template globals.
accounts/teams.py owns the rules (who may manage which team) and the audit."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from packaging.utils import canonicalize_name

from privindex.accounts import permissions, teams, users
from privindex.api.http import audit_context
from privindex.db.models import Team
from privindex.web.admin import admin_required
from privindex.web.blueprint import bp, me, recent_auth
from privindex.web.projects import back_to_project


@bp.app_context_processor
def _teams_globals():
    return {"project_teams": project_teams, "team_settings": team_settings}


def project_teams(name: str) -> list[teams.TeamRoleView]:
    """The teams with a role on the project, directly or through a namespace over it."""
    return teams.teams_of_project(canonicalize_name(name))


def team_settings(name: str) -> dict | None:
    """What an owner's settings card shows: the project's teams (those whose members this
    user may change marked), the names of the teams they may give a role; None for
    someone who may not change them."""
    if not current_user.is_authenticated or not permissions.can_manage(me(), name):
        return None
    project = canonicalize_name(name)
    shown = []
    for role in teams.teams_of_project(project):
        team = Team.get(Team.name == role.team)
        shown.append(
            {"role": role, "members": teams.describe(team).members, "manage": teams.may_manage(me(), team)}
        )
    grantable = [t.name for t in Team.select().order_by(Team.name) if teams.may_manage(me(), t)]
    return {"teams": shown, "all": grantable}


def _back():
    """The project's settings when the form came from there, else the Teams page."""
    project = request.form.get("from_project", "")
    if project:
        return back_to_project(canonicalize_name(project))
    return redirect(url_for("web.admin_teams"))


def _ctx():
    return audit_context().with_actor(me())


@bp.get("/admin/teams")
@admin_required
def admin_teams():
    return render_template("admin_teams.html", teams=teams.list_teams())


@bp.post("/admin/teams")
@admin_required
@recent_auth
def admin_team_create():
    try:
        team = teams.create_team(request.form.get("name", ""), request.form.get("description", ""), _ctx())
    except users.AccountError as exc:
        flash(str(exc), "error")
    else:
        flash(_("The team %(team)s is created: add its members and give it roles.", team=team.name), "info")
    return redirect(url_for("web.admin_teams"))


@bp.post("/projects/<name>/teams")
@login_required
@recent_auth
def project_team_create(name: str):
    try:
        team = teams.create_team_for_project(
            request.form.get("name", ""),
            request.form.get("description", ""),
            name,
            request.form.get("role", "maintainer"),
            _ctx(),
        )
    except users.AccountError as exc:
        flash(str(exc), "error")
    else:
        flash(
            _("The team %(team)s is created with a role on %(project)s.", team=team.name, project=name),
            "info",
        )
    return back_to_project(canonicalize_name(name))


@bp.post("/teams/delete")
@login_required
@recent_auth
def team_delete():
    team = request.form.get("team", "")
    try:
        teams.delete_team(team, _ctx())
    except users.AccountError as exc:
        flash(str(exc), "error")
    else:
        flash(_("The team %(team)s is deleted: its members no longer hold its roles.", team=team), "info")
    return _back()


@bp.post("/teams/members")
@login_required
@recent_auth
def team_members():
    team = request.form.get("team", "")
    username = request.form.get("username", "").strip()
    try:
        if request.form.get("action") == "remove":
            teams.remove_member(team, username, _ctx())
            flash(
                _("%(user)s left the team %(team)s and no longer holds its roles.", user=username, team=team),
                "info",
            )
        else:
            teams.add_member(team, username, _ctx())
            flash(_("%(user)s joined the team %(team)s.", user=username, team=team), "info")
    except users.AccountError as exc:
        flash(str(exc), "error")
    return _back()


@bp.post("/teams/roles")
@login_required
@recent_auth
def team_roles():
    team = request.form.get("team", "")
    target = {
        "project": request.form.get("project", "").strip() or None,
        "namespace": request.form.get("namespace", "").strip() or None,
    }
    role = request.form.get("role", "maintainer")
    try:
        if request.form.get("action") == "revoke":
            teams.revoke(team, _ctx(), **target)
            flash(_("The team %(team)s no longer has a role there.", team=team), "info")
        else:
            teams.grant(team, role, _ctx(), **target)
            label = _("owner") if role == "owner" else _("maintainer")
            flash(_("The team %(team)s is now %(role)s.", team=team, role=label), "info")
    except users.AccountError as exc:
        flash(str(exc), "error")
    return _back()
