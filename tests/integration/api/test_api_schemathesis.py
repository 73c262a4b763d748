"""schemathesis over every route of the served API with a valid administrator's token: no 5xx, and no
response that breaks the published OpenAPI document (status, content type, schema, headers).

Run as schemathesis's own CLI against the API on a local port (4.x has no aiohttp shortcut), loading
the schema by URL exactly as a client would.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api_harness import CONFIG, Api, served_api

from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.store import Store

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ST = Path(sys.executable).with_name("st")
EXAMPLES = 25


@pytest.fixture
async def fuzzed(store: Store, redis: RedisClient) -> AsyncIterator[Api]:
    """The API with a failure limit no fuzzer reaches: its bad-token probes must not turn every later
    request into a 429 (the limit itself is tested in test_api_callbacks)."""
    async with served_api(store, redis, CONFIG.replace("auth_failures = 5", "auth_failures = 10000")) as api:
        yield api


async def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(
    fuzzed: Api, tmp_path: Path
) -> None:
    api = fuzzed
    process = await asyncio.create_subprocess_exec(
        str(ST),
        "run",
        f"{api.base}/openapi.json",
        "--header",
        f"Authorization: Bearer {api.tokens['root']}",
        "--checks",
        "all",
        "--exclude-checks",
        # positive_data_acceptance: a schema-valid request may still be refused 422 by the service's
        # own rules, which no JSON Schema can state (a due time in the past or outside calling hours,
        # an unknown agent, a number no dial plan takes); each of those is tested in test_api_callbacks.
        # object_level_authorization needs a second identity (tested there too: another agent's
        # callback is 404); use_after_free and ensure_resource_availability follow create-then-read
        # links the document does not declare.
        "positive_data_acceptance,object_level_authorization,use_after_free,ensure_resource_availability",
        # The live events stream until the client leaves: a test case there would time out, not fail;
        # test_api_live and test_api_events read it over real HTTP.
        "--exclude-operation-id",
        "live_events",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 600)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
