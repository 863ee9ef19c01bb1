"""What operators run and read: the audit trail (audit.py), metrics (metrics.py), log
redaction and set-up (logs.py), the access log (access_log.py), request ids
(request_ids.py), backup and check (maintenance.py), and the SQLite-to-PostgreSQL copy
(database_copy.py)."""
