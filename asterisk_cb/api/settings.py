"""``[api]``: where the REST API listens (empty: off), who may stand in front of it, what it accepts,
and whether it serves the web panel too, with its sessions' limits.

Each parser takes an option's text and returns its value or raises ``ValueError`` with the reason;
``deployment`` adds the file, line and option, like every other config error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from urllib.parse import urlsplit

Network = IPv4Network | IPv6Network

MAX_BODY_BOUNDS = (1024, 10 * 1024 * 1024)
AUTH_FAILURES_BOUNDS = (1, 10_000)


@dataclass(frozen=True)
class ApiSite:
    """``[api]``. ``host``/``port``: None means the API is off (the default: a listener nobody asked
    for is a door nobody watches). ``trusted_proxies``: the TLS proxies whose ``X-Forwarded-For`` names
    the client (anyone else's is ignored, or a client could pick the address it is rate-limited as).
    ``cors_origins``: browser origins allowed to call the API from their pages (none: CORS off).
    ``auth_failures`` failed authentications per ``auth_window`` from one client address, then 429
    (failed panel sign-ins count with them). ``panel``: serve the web panel at ``/panel/``;
    ``session_idle`` and ``session_max_age``: when a panel session ends unused, and at the latest."""

    host: str | None = None
    port: int | None = None
    trusted_proxies: tuple[Network, ...] = ()
    cors_origins: tuple[str, ...] = ()
    max_body: int = 64 * 1024
    auth_failures: int = 10
    auth_window: timedelta = timedelta(minutes=1)
    panel: bool = False
    session_idle: timedelta = timedelta(minutes=30)
    session_max_age: timedelta = timedelta(hours=12)

    @property
    def enabled(self) -> bool:
        return self.port is not None

    def explain(self) -> list[tuple[str, str, str]]:
        """(section, option, value) rows for ``check-config``."""
        listen = f"{self.host}:{self.port}" if self.enabled else "(off)"
        return [
            ("api", "listen", listen),
            ("api", "trusted_proxies", ", ".join(map(str, self.trusted_proxies)) or "(none)"),
            ("api", "cors_origins", ", ".join(self.cors_origins) or "(off)"),
            ("api", "max_body", str(self.max_body)),
            ("api", "auth_failures", str(self.auth_failures)),
            ("api", "auth_window", f"{self.auth_window.total_seconds():g}s"),
            ("api", "panel", "yes" if self.panel else "no"),
            ("api", "session_idle", f"{self.session_idle.total_seconds():g}s"),
            ("api", "session_max_age", f"{self.session_max_age.total_seconds():g}s"),
        ]


def parse_networks(text: str) -> tuple[Network, ...]:
    """``127.0.0.1, 10.0.0.0/24``: addresses or networks, comma-separated."""
    try:
        return tuple(ip_network(part.strip()) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise ValueError(f"{text!r}: {error} (write e.g. 127.0.0.1, 10.0.0.0/24)") from error


def parse_origins(text: str) -> tuple[str, ...]:
    """``https://crm.example.com, https://wall.example.com``: scheme://host[:port], nothing more (a
    browser's Origin header never carries a path, and ``*`` would hand every site the API)."""
    origins = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        parts = urlsplit(part)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
            raise ValueError(f"{part!r} is not an origin (write e.g. https://crm.example.com)")
        origins.append(part.rstrip("/"))
    return tuple(origins)


def parse_max_body(text: str) -> int:
    """The largest request body accepted, in bytes."""
    return _count(text, MAX_BODY_BOUNDS, "bytes")


def parse_auth_failures(text: str) -> int:
    """Failed authentications allowed per window from one client address."""
    return _count(text, AUTH_FAILURES_BOUNDS, "failures")


def _count(text: str, bounds: tuple[int, int], unit: str) -> int:
    low, high = bounds
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{text!r} is not a whole number of {unit} from {low} to {high}")
    return int(text)
