"""Trusted Publishing's identities: CI identity tokens verified with PyJWT (identity_tokens.py),
and the trusted publishers per project, their matching and the minted tokens (publishers.py)."""
