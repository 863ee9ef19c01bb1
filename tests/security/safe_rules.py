"""The app's own routing table, so a new POST route is covered by the red-team tests at once."""

from __future__ import annotations


def post_rules(server) -> list:
    from privindex.app import create_app
    from privindex.config import Settings

    app = create_app(Settings(store=server.store, data_dir=server.data_dir))
    return sorted((rule for rule in app.url_map.iter_rules() if "POST" in rule.methods), key=lambda r: r.rule)
