"""Notifications: the persistent outbox, mail over SMTP, signed webhooks."""
