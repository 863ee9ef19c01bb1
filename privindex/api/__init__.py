"""What machines speak, over HTTP: the Simple API and file downloads (simple.py, plain WSGI),
the legacy upload API for twine (upload.py), the Trusted Publishing token exchange
(exchange.py), /healthz and /readyz (health.py), and the helpers these faces share with the
web UI (http.py, headers.py). Parses and answers; the domain packages decide."""
