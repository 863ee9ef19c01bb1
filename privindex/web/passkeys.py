"""Registering a passkey from the security page (accounts/passkeys.py has the rules); signing
in with one is in signin.py, beside the other ways in. The page's part is
templates/_passkeys.html, included by security.html."""

from __future__ import annotations

from flask import flash, jsonify, session, url_for
from flask_babel import gettext as _
from flask_login import login_required

from privindex.accounts import passkeys, second_factors, users
from privindex.api.http import audit_context
from privindex.web.account import needs_email
from privindex.web.blueprint import (
    OFFER_SIGN_OUT,
    bp,
    json_object,
    me,
    recent_auth,
    settings,
    whole_number,
)

PASSKEY_REGISTER = "passkey_register"


@bp.post("/account/passkeys/options")
@login_required
@recent_auth
def passkey_options():
    if needs_email():
        return jsonify(error=_("Verify your primary email address first.")), 403
    second_factors.drop_pending(session.get(PASSKEY_REGISTER))
    options, session[PASSKEY_REGISTER] = second_factors.registration_options(
        me(), settings().rp_id, passkey=True
    )
    return jsonify(options)


@bp.post("/account/passkeys")
@login_required
@recent_auth
def passkey_add():
    """A new passkey, or (with `replace`, a key's id) a security key turned into one."""
    if needs_email():
        return jsonify(error=_("Verify your primary email address first.")), 403
    body = json_object()
    replace = body.get("replace")
    if replace is not None:  # a row id: a number PostgreSQL's INTEGER holds, else 400
        replace = whole_number(str(replace), 1, 2**31 - 1, _("there is no such security key"))
    label = " ".join(str(body.get("label", "")).split())
    conf = settings()
    try:
        codes = passkeys.enrol(
            me(),
            session.pop(PASSKEY_REGISTER, None),
            label,
            body.get("credential") or {},
            conf.rp_id,
            conf.origin,
            audit_context().with_actor(me()),
            replace=replace,
        )
    except (users.AccountError, second_factors.KeyRejected) as exc:
        return jsonify(error=str(exc)), 400
    session[OFFER_SIGN_OUT] = True
    flash(_("Passkey added: you can now sign in with it alone."), "info")
    return jsonify(redirect=url_for("web.security"), codes=codes or [])
