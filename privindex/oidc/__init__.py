"""OpenID identities: tokens verified with PyJWT after discovery and JWKS (identity_tokens.py,
shared by both uses), Trusted Publishing's publishers per project, their matching and the
minted tokens (publishers.py), and sign-in through a team's identity provider (sso.py)."""
