"""Authentication building blocks, one small module per third-party library or secret kind
(argon2 passwords, the API token format, TOTP, WebAuthn, recovery codes, rate limits)."""
