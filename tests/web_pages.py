"""Pages for the all-pages browser check (issue 26: 390 and 1280 px, light and dark, English
and German; no broken word, no sideways scroll, axe-core clean, a screenshot each).

The admin pages as (path, screenshot name) that tests/test_web_admin.py sweeps in states the
all-pages check (tests/test_web_layout.py's PAGES, where every page is listed) does not seed:
an upstream that stopped answering, a refused upload, a token's upload.
"""

ADMIN_PAGES = [
    ("/admin/upstream", "admin-upstream"),
    ("/admin/namespaces", "admin-namespaces"),
    ("/admin/teams", "admin-teams"),
    ("/audit", "audit"),
    ("/audit?tag=file:add&token=ci-upload&from=2026-01-01", "audit-filtered"),
]
