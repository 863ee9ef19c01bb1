"""Marking user-visible text for translation, without tying the services to Flask.

`_("text %(name)s", name=...)` translates through Flask-Babel while a web request is being
answered (the message then reaches a page) and falls back to the English text otherwise
(the CLI). Messages of the upload API stay English: twine shows them in an HTTP status
line, which must be Latin-1.
"""

from __future__ import annotations


def _(message: str, **values: object) -> str:
    from flask import has_request_context

    if has_request_context():
        from flask_babel import gettext

        return gettext(message, **values)
    return message % values if values else message
