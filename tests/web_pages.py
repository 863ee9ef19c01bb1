"""ui-flows' pages for the all-pages browser check (tests/test_web_layout.py, ui-system's,
was not on this branch yet: the lead folds this list into it at merge).

(name, path) as a signed-in admin sees them. Pages reached only through a POST (a
confirmation, the re-check carrying a form, a new token, new recovery codes, a password
link) are checked the same way (check_page) by tests/test_web_flows_browser.py."""

FLOW_PAGES = [
    ("tokens", "/tokens"),
    ("account", "/account"),
    ("security", "/account/security"),
    ("admin-users", "/admin/users"),
    ("reauth", "/reauth?next=/tokens"),
]
