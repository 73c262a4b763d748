"""Benchmark of the REST API against a real Redis holding many callbacks: create and list latency with
100 clients at once, beside a bare aiohttp handler on the same machine; prints a table (bench/README.md).

    scripts/pbx-lab up redis
    .venv/bin/python bench/api.py              # 100,000 callbacks stored, 2,000 requests of each kind
    .venv/bin/python bench/api.py --quick      # 10,000 stored, 500 requests of each kind

The API runs in a process of its own, built by ``asterisk_cb.api.component`` exactly as the daemon
builds it (the token check in Redis, roles, the service, the store), listening on 127.0.0.1 with 50
agents of 2,000 callbacks each (100,000 stored). The baseline is a bare aiohttp handler answering a
fixed JSON object, in a process of its own too. This process is the clients: ``CLIENTS`` requests in
flight over keep-alive connections, each request timed from send to the last byte read; every
answer's status is checked (a wrong one fails the run). Kinds: ``POST /callbacks`` (an agent's token,
a new number each), ``GET /callbacks?limit=100`` (an agent's first page of its 2,000), ``GET /me``
(the token check alone) and the bare handler. The namespace is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientSession, TCPConnector, web
from harness import create_all, far_future, lab_redis_url, markdown, scratch_store

from asterisk_cb import deployment
from asterisk_cb.api.component import api_server
from asterisk_cb.core import ini
from asterisk_cb.core.settings import from_documents
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.service import ADMIN, CallbackService, RolesService, SettingsService
from asterisk_cb.service_tokens import TokenService
from asterisk_cb.store import Store

STORED, QUICK_STORED = 100_000, 10_000
REQUESTS, QUICK_REQUESTS = 2_000, 500
CLIENTS = 100
AGENTS = [str(1000 + n) for n in range(50)]  # the harness's agents: callback n belongs to 1000 + n % 50
WARM_UP = 200


def config_text() -> str:
    agents = "".join(f"{agent} = PJSIP/{agent}\n" for agent in AGENTS)
    return (
        "[general]\nhorizon = 366d\n[ari]\nuser = b\npassword = b\n[ami]\nuser = b\nsecret = b\n"
        "[dialing]\noutbound_context = from-internal\n[api]\nlisten = 127.0.0.1:8090\n"
        "auth_failures = 10000\n[agents]\n" + agents
    )


def serve_api(redis_url: str, namespace: str, ports: Any) -> None:
    """The child process: the API as the daemon builds it, on a port of the OS's choosing."""

    async def run() -> None:
        file = from_documents([ini.parse(config_text(), "bench.conf")], deployment.SECTIONS)
        site = deployment.from_settings_file(file)
        site = replace(site, api=replace(site.api, port=0))
        redis = connect(redis_url, name="asterisk-cb-bench-api")
        store = Store(redis, Keys(namespace))
        clock = lambda: datetime.now(UTC)  # noqa: E731 - the daemon's clock
        roles = RolesService(store, site.roles, site.agents)
        settings = SettingsService(store, file, site)
        callbacks = CallbackService(store, site, settings.effective, clock)

        async def ready() -> tuple[dict[str, bool], bool]:
            return {}, True

        async def queues() -> list[str]:
            return []

        server = api_server(
            site, store, callbacks, lambda: settings, roles, readiness=ready, queues=queues, clock=clock
        )
        task = asyncio.create_task(server.run())
        ports.put(await server.listening())
        await task

    asyncio.run(run())


def serve_bare(ports: Any) -> None:
    """The child process of the baseline: one aiohttp handler, a fixed small JSON answer."""

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"name": "1001", "permissions": ["schedule_callback"]})

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/bare", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(run())


@dataclass(frozen=True)
class Kind:
    label: str
    method: str
    path: str
    status: int
    body: Callable[[int], dict[str, object]] | None = None


async def timed(session: ClientSession, base: str, kind: Kind, tokens: Sequence[str], n: int) -> float:
    headers = {"Authorization": f"Bearer {tokens[n % len(tokens)]}"}
    body = kind.body(n) if kind.body else None
    started = time.perf_counter()
    async with session.request(kind.method, base + kind.path, json=body, headers=headers) as response:
        await response.read()
        if response.status != kind.status:
            raise SystemExit(f"{kind.label}: {response.status} {await response.text()}")
    return time.perf_counter() - started


async def load(base: str, kind: Kind, tokens: Sequence[str], requests: int) -> tuple[list[float], float]:
    """``requests`` of ``kind``, ``CLIENTS`` in flight; each one's latency, and requests per second."""
    numbers = itertools.count()
    latencies: list[float] = []
    async with ClientSession(connector=TCPConnector(limit=CLIENTS)) as session:

        async def client(count: int, into: list[float] | None) -> None:
            for _ in range(count):
                seconds = await timed(session, base, kind, tokens, next(numbers))
                if into is not None:
                    into.append(seconds)

        await asyncio.gather(*(client(WARM_UP // CLIENTS + 1, None) for _ in range(CLIENTS)))
        started = time.perf_counter()
        await asyncio.gather(*(client(requests // CLIENTS, latencies) for _ in range(CLIENTS)))
        return latencies, len(latencies) / (time.perf_counter() - started)


def quantiles(latencies: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


async def started(target: Callable[..., None], *args: object) -> tuple[multiprocessing.Process, int]:
    ports: Any = multiprocessing.get_context("spawn").Queue()
    process = multiprocessing.get_context("spawn").Process(target=target, args=(*args, ports), daemon=True)
    process.start()
    port = await asyncio.get_running_loop().run_in_executor(None, ports.get, True, 60)
    return process, int(port)


def new_callback(n: int) -> dict[str, object]:
    due = datetime.now(UTC) + timedelta(days=2, seconds=n)
    return {"contact_number": f"+4989{n:08}", "due_at": due.isoformat(), "contact_name": "Bench"}


async def main(args: argparse.Namespace) -> list[tuple[str, ...]]:
    stored = QUICK_STORED if args.quick else STORED
    requests = QUICK_REQUESTS if args.quick else REQUESTS
    async with scratch_store(lab_redis_url()) as scratch:
        await create_all(scratch.store, 0, far_future(stored))
        roles = RolesService(scratch.store, deployment.roles.NO_ROLES, AGENTS)
        tokens_service = TokenService(scratch.store, roles, lambda: datetime.now(UTC))
        tokens = [(await tokens_service.create(ADMIN, agent=agent))[0] for agent in random.sample(AGENTS, 10)]
        api, api_port = await started(serve_api, lab_redis_url(), scratch.keys.namespace)
        bare, bare_port = await started(serve_bare)
        try:
            return await measure(
                f"http://127.0.0.1:{api_port}/api/v1",
                f"http://127.0.0.1:{bare_port}",
                tokens,
                requests,
                stored,
            )
        finally:
            for process in (api, bare):
                process.terminate()
                process.join(5)


async def measure(
    api: str, bare: str, tokens: Sequence[str], requests: int, stored: int
) -> list[tuple[str, ...]]:
    kinds: list[tuple[str, Kind]] = [
        (api, Kind("POST /callbacks (create)", "POST", "/callbacks", 201, new_callback)),
        (
            api,
            Kind(
                f"GET /callbacks?limit=100 (an agent's page of {stored // len(AGENTS):,})",
                "GET",
                "/callbacks?limit=100",
                200,
            ),
        ),
        (api, Kind("GET /me (the token check alone)", "GET", "/me", 200)),
        (bare, Kind("bare aiohttp handler", "GET", "/bare", 200)),
    ]
    measured = {}
    for base, kind in kinds:
        latencies, rate = await load(base, kind, tokens, requests)
        measured[kind.label] = (*quantiles(latencies), rate)
    _, bare_p99, _bare_rate = measured["bare aiohttp handler"]
    rows = []
    for label, (p50, p99, rate) in measured.items():
        rows.append((label, f"{p50:.1f} / {p99:.1f} ms", f"{rate:,.0f}/s", f"x{p99 / bare_p99:.1f}"))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="10,000 callbacks stored, 500 requests of each kind"
    )
    header = (f"measure ({CLIENTS} clients at once)", "p50 / p99", "requests/s", "p99 / bare's")
    print(markdown(header, asyncio.run(main(parser.parse_args()))))
