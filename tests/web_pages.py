"""The pages of ui-projects (issue 26) for the all-pages browser sweep.

tests/test_web_layout.py (ui-system's sweep) was not on this branch yet: at the merge these
lines go into its PAGES as P(name, role, path). Its seeded site has demo-pkg 1.0 and 0.9
(a long README), old-demo (archived), alice-tools (alice's) and upstream-only-widgets.
"""

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
