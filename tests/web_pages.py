"""Pages for the all-pages browser check (issue 26: 390 and 1280 px, light and dark, English
and German; no broken word, no sideways scroll, axe-core clean, a screenshot each).

ui-admin's pages, as (path, screenshot name), for an admin on a server with an upstream.
The lead joins this list into tests/test_web_layout.py's page list (ui-system's) at merge;
until then tests/test_web_admin.py sweeps these pages itself.
"""

ADMIN_PAGES = [
    ("/admin/upstream", "admin-upstream"),
    ("/admin/namespaces", "admin-namespaces"),
    ("/audit", "audit"),
    ("/audit?tag=file:add&token=ci-upload&from=2026-01-01", "audit-filtered"),
]
