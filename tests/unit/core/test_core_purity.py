"""The core stays pure: importing all of it pulls in no network, async or storage module."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "codec",
    "durations",
    "effects",
    "ini",
    "inputs",
    "lifecycle",
    "model",
    "numbers",
    "rules",
    "settings",
]
FORBIDDEN = ["asyncio", "socket", "redis", "aiohttp", "panoramisk", "asyncpg", "random", "asterisk_cb.store"]


def test_core_imports_nothing_that_does_io() -> None:
    probe = (
        "import sys\n"
        + "".join(f"import asterisk_cb.core.{name}\n" for name in CORE)
        + f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
