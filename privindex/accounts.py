"""Compatibility names for code written before accounts.py was split into users.py and
apitokens.py (the upload view still imports it); new code imports those modules."""

from privindex.apitokens import (  # noqa: F401
    TokenAuth, TokenRejected, authenticate_token, create_token, list_tokens, revoke_token, token_status,
)
from privindex.permissions import project_exists, user_role  # noqa: F401
from privindex.users import (  # noqa: F401
    AccountError, create_user, find_user, get_user, has_second_factor, list_users, normalize_username,
    set_disabled, set_password,
)
