"""What a malformed token is told: the reason, never the token."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from privindex.auth import token_format

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database

BODY = st.text(st.sampled_from("abcXYZ019_-!é =/\n"), max_size=140)


@given(st.one_of(BODY, BODY.map(lambda body: token_format.PREFIX + body)))
def test_a_reason_is_given_exactly_when_the_value_cannot_be_a_token_and_quotes_none_of_it(value):
    reason = token_format.malformed_reason(value)
    assert (reason is None) == token_format.looks_like_token(value)
    body = value[len(token_format.PREFIX) :]
    if reason is not None and len(body) >= 4:
        assert body not in reason


def test_each_kind_of_mistake_has_its_own_reason():
    good = token_format.generate()
    assert token_format.malformed_reason(good) is None
    assert "starts with 'pidx_'" in token_format.malformed_reason("pypi-" + good[5:])
    assert "too short (10 characters; a privindex token has at least 48)" in token_format.malformed_reason(
        "pidx_bogus"
    )
    assert "too long" in token_format.malformed_reason(good + "A" * 100)
    assert "space or line break" in token_format.malformed_reason(good + "\n")
    assert "characters other than A-Z a-z 0-9 _ -" in token_format.malformed_reason(good[:-1] + "+")
