"""A few HTTP helpers for the tests of a real daemon's API and panel: a free port to serve on, one API
call with a token, and waiting for the daemon to say it is ready."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def call(base: str, token_text: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token_text}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, base + path, headers=headers, **kwargs) as response,
    ):
        return response.status, await response.json()


async def readiness(base: str) -> dict[str, Any]:
    """``/ready`` once it says ready (no token: a probe's view), the API listening and every component up."""
    async with asyncio.timeout(15), aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"{base}/ready") as response:
                    if response.status == 200:
                        return dict(await response.json())
            except aiohttp.ClientConnectionError:
                pass  # not listening yet
            await asyncio.sleep(0.3)
