"""Pages for the all-pages browser check (issue 26: 390 and 1280 px, light and dark, English
and German; no broken word, no sideways scroll, axe-core clean, a screenshot each).

ui-admin's pages, as (path, screenshot name), for an admin on a server with an upstream;
ui-projects' pages as (name, role, path) on the seeded site (demo-pkg 1.0 and 0.9 with a long
README, old-demo archived, alice-tools alice's, upstream-only-widgets).
"""

ADMIN_PAGES = [
    ("/admin/upstream", "admin-upstream"),
    ("/admin/namespaces", "admin-namespaces"),
    ("/audit", "audit"),
    ("/audit?tag=file:add&token=ci-upload&from=2026-01-01", "audit-filtered"),
]

PROJECT_PAGES = [
    ("projects-updated", "user", "/projects?sort=updated"),
    ("projects-mine", "user", "/projects?mine=1"),
    ("search-typo", "user", "/projects?q=dmeo-pkg"),
    ("project-history", "user", "/projects/demo-pkg?tab=history"),
    ("project-files", "user", "/projects/demo-pkg?tab=files"),
    ("project-version", "user", "/projects/demo-pkg/0.9"),
    ("project-owned-settings", "user", "/projects/alice-tools?tab=settings"),
    ("project-upstream-only", "user", "/projects/upstream-only-widgets"),
    ("project-upstream-only-version", "user", "/projects/upstream-only-widgets/3.2.1"),
    ("project-settings", "admin", "/projects/demo-pkg?tab=settings"),
    ("project-version-admin", "admin", "/projects/demo-pkg/1.0"),
    ("confirm-delete-release", "admin", "/projects/demo-pkg/0.9/delete"),
    ("confirm-allow-upstream", "admin", "/projects/demo-pkg/upstream/allow"),
]
