"""Cross-site request forgery: every state-changing request of the panel carries its session's CSRF
token, in the form's ``csrf`` field or the ``X-CSRF-Token`` header (the page's script). Another site can
make a browser send the cookie (SameSite=Strict already stops the usual ways) but cannot read the
token off our pages, so it cannot send it."""

from __future__ import annotations

import hmac

FIELD = "csrf"
HEADER = "X-CSRF-Token"


def csrf_ok(expected: str, sent: str | None) -> bool:
    """Whether ``sent`` is the session's token (compared in constant time; missing or empty never is)."""
    if not sent or not expected:
        return False
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogateescape"), sent.encode("utf-8", "surrogateescape")
    )
