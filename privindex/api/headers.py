"""Security headers: one vocabulary for the web UI (Flask) and the Simple API (plain WSGI)."""

from __future__ import annotations

# The web UI: our own scripts and styles only, never framed, forms post to ourselves.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
WEB_SECURITY_HEADERS = [
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
]
# The Simple API's pages are data, never a place to run code: the strictest policy costs nothing.
PAGE_SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]
# Sent when the server is reached over HTTPS (public_url https://, secure cookies): browsers
# then refuse plain http for a year, so a network attacker cannot strip TLS and read cookies.
HSTS = ("Strict-Transport-Security", "max-age=31536000")
