"""API token text: what is made parses back, anything else (any length, any script) is refused without
an exception, and only a digest of the secret is what the store gets."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asterisk_cb.service_tokens import TOKEN_LENGTH, format_token, parse_token, secret_digest

TOKEN_ID = "0a1b2c3d"
SECRET = secrets.token_urlsafe(32)


def test_a_made_token_parses_back_to_its_id_and_secret() -> None:
    text = format_token(TOKEN_ID, SECRET)
    assert len(text) == TOKEN_LENGTH
    assert text.startswith("acb_0a1b2c3d_")
    assert parse_token(text) == (TOKEN_ID, SECRET)


@given(st.binary(min_size=32, max_size=32))
def test_every_secret_of_32_bytes_fits_the_pattern(raw: bytes) -> None:
    """token_urlsafe(32) is 43 characters of the URL-safe alphabet, '_' and '-' included."""
    secret = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    assert parse_token(format_token(TOKEN_ID, secret)) == (TOKEN_ID, secret)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "acb_",
        format_token(TOKEN_ID, SECRET)[:-1],
        format_token(TOKEN_ID, SECRET) + "x",
        format_token("0A1B2C3D", SECRET),  # ids are lower-case hex
        format_token("0a1b2c3g", SECRET),
        "xcb" + format_token(TOKEN_ID, SECRET)[3:],
        format_token(TOKEN_ID, SECRET[:-1] + "="),
        format_token(TOKEN_ID, SECRET[:-1] + "é"),  # same length in characters, not ASCII
        format_token(TOKEN_ID, SECRET[:-1] + "\n"),
        " " + format_token(TOKEN_ID, SECRET)[1:],
        "Bearer " + format_token(TOKEN_ID, SECRET),
        "a" * 10_000_000,
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    assert parse_token(text) is None


@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    assert parse_token(text) is None or len(text) == TOKEN_LENGTH


def test_the_stored_digest_is_the_secrets_sha256() -> None:
    assert secret_digest(SECRET) == hashlib.sha256(SECRET.encode()).hexdigest()
    assert SECRET not in secret_digest(SECRET)
