"""FastAGI: the wire protocol and a server for ``AGI(agi://host:port/script?query)``; no callback logic.

Our own and not panoramisk's, whose server matched ``agi_network_script`` whole (Asterisk sends the
query string with it), had no timeouts, could spin forever on a peer closing inside the headers, and
wrapped plain handlers with ``asyncio.coroutine`` (gone in Python 3.11).

A connection goes: permit check (others closed unread), the ``agi_*`` header block (bounded in lines,
bytes and time), the route for its script, the handler under ``request_timeout_s``, close. Closing is
how a FastAGI script ends: Asterisk then goes on with the dialplan. Commands and replies follow
res_agi.c (Asterisk 22): one command line out, reply lines back, ``HANGUP`` lines in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from ipaddress import ip_network
from urllib.parse import parse_qsl

log = logging.getLogger(__name__)

MAX_HEADER_LINES = 200
MAX_HEADER_BYTES = 32 * 1024
# A reply line (a GET FULL VARIABLE value) may be longer than the headers; one longer is refused.
MAX_LINE_BYTES = 64 * 1024
# res_agi reads a command with fgets into 8192 bytes and runs what does not fit as a further command:
# a longer line must never be sent.
MAX_COMMAND_BYTES = 8190
CLOSE_TIMEOUT_S = 1.0  # a peer that does not read must not hold a closing connection open
HANGUP_LINE = "HANGUP"  # sent by Asterisk (AGISIGHUP not "no") when the channel hangs up

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AgiServerSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    permit: tuple[Network, ...] = (ip_network("127.0.0.1/32"), ip_network("::1/128"))
    header_timeout_s: float = 2.0  # the whole agi_* header block must arrive within this
    command_timeout_s: float = 2.0  # each command's reply
    request_timeout_s: float = 10.0  # a handler's whole run
    max_connections: int = 100  # beyond: refused (closed) and logged


@dataclass(frozen=True)
class AgiRequest:
    env: Mapping[str, str]  # agi_* headers without the prefix: "uniqueid", "channel", "network_script"...
    script: str  # network_script's path before "?", without leading "/"
    query: Mapping[str, str]  # the part after "?" (last value wins)
    peer: str  # peer IP


@dataclass(frozen=True)
class AgiReply:
    code: int  # 200 (only this one is returned; the others raise)
    result: str  # the text after "result=" ("1", "-1", "0")
    data: str | None  # the text in parentheses, if any (GET FULL VARIABLE's value)


class AgiError(Exception):
    """Protocol trouble: a bad or error reply (5xx), the connection closed or unusable."""


class AgiHangup(AgiError):
    """The channel hung up: a ``HANGUP`` line was seen before the reply, or Asterisk answered 511."""


class AgiTimeout(AgiError):
    """A reply did not come within ``command_timeout_s``; the session is unusable afterwards."""


Handler = Callable[[AgiRequest, "AgiSession"], Awaitable[None]]


def quote_argument(value: str) -> str:
    """``value`` as one argument of res_agi's parse_args: in double quotes, ``\\`` and ``"`` escaped.

    CR, LF and NUL cannot be carried: a line break ends the command (the rest would run as another
    one) and NUL ends Asterisk's C string, so they are refused."""
    if any(char in value for char in "\r\n\0"):
        raise ValueError("an AGI argument cannot contain CR, LF or NUL")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AgiSession:
    """Commands on one FastAGI connection, one at a time; replies are read until the final one."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command_timeout_s: float
    ) -> None:
        self.hung_up = False
        self._reader = reader
        self._writer = writer
        self._timeout_s = command_timeout_s
        self._lock = asyncio.Lock()
        self._broken: str | None = None  # once replies may be out of step, no command is sent

    async def command(self, line: str) -> AgiReply:
        """Send ``line`` and return its 200 reply; 511 raises AgiHangup, other codes AgiError."""
        data = line.encode() + b"\n"
        if any(char in line for char in "\r\n\0") or len(data) > MAX_COMMAND_BYTES + 1:
            raise ValueError("an AGI command is one line (no CR, LF or NUL) of at most 8190 bytes")
        async with self._lock:
            if self._broken is not None:
                raise AgiError(self._broken)
            try:
                async with asyncio.timeout(self._timeout_s):
                    self._writer.write(data)
                    await self._writer.drain()
                    return await self._read_reply()
            except TimeoutError:
                self._broken = f"no reply to {_verb(line)} within {self._timeout_s} s"
                raise AgiTimeout(self._broken) from None
            except ConnectionError as error:
                raise self._lost_step(f"connection lost: {error}") from None

    async def get_full_variable(self, expression: str) -> str | None:
        """``expression`` (e.g. ``${CHANNEL(linkedid)}``) evaluated on the channel.

        None when Asterisk answers result=0 (it found no channel to evaluate on); an unset variable
        evaluates to "" (Asterisk 22), as in the dialplan."""
        reply = await self.command(f"GET FULL VARIABLE {quote_argument(expression)}")
        if reply.result == "0":
            return None
        if reply.result != "1":
            raise AgiError(f"GET FULL VARIABLE: unexpected result={reply.result}")
        return reply.data or ""

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable (or a function such as ``SHARED(x)``) to ``value`` exactly."""
        reply = await self.command(f"SET VARIABLE {quote_argument(name)} {quote_argument(value)}")
        if reply.result != "1":
            raise AgiError(f"SET VARIABLE: unexpected result={reply.result}")

    async def _read_reply(self) -> AgiReply:
        while True:
            line = await self._read_line()
            if line == HANGUP_LINE:
                self.hung_up = True
                continue
            code, more = self._status(line)
            if more:
                await self._skip_continuation(code)
            if code == 100:  # provisional ("100 result=0 Trying..."): the final reply follows
                continue
            if code == 200 and not more:
                return await self._success(line[4:])
            if code == 511:
                self.hung_up = True
                raise AgiHangup(line)
            raise AgiError(line)

    async def _success(self, text: str) -> AgiReply:
        """A 200 line; a value holding a line break arrives over several lines until its ``)``."""
        if not text.startswith("result="):
            raise self._lost_step(f"unexpected reply: 200 {text[:80]}")
        result, _, rest = text[len("result=") :].partition(" ")
        opening = rest.find("(")
        if opening < 0:
            return AgiReply(200, result, None)
        while rest.rfind(")") < opening:
            rest += "\n" + await self._read_line()
        return AgiReply(200, result, rest[opening + 1 : rest.rfind(")")])

    def _status(self, line: str) -> tuple[int, bool]:
        """The reply code and whether more lines follow (``NNN-``)."""
        if len(line) < 4 or not line[:3].isdigit() or line[3] not in " -":
            raise self._lost_step(f"unexpected reply line: {line[:80]!r}")
        return int(line[:3]), line[3] == "-"

    async def _skip_continuation(self, code: int) -> None:
        """A ``NNN-`` reply (520's usage text) ends with a line starting ``NNN ``."""
        end = f"{code} "
        while not (await self._read_line()).startswith(end):
            pass

    async def _read_line(self) -> str:
        try:
            raw = await self._reader.readline()
        except ValueError:  # longer than the stream's limit
            raise self._lost_step(f"reply line longer than {MAX_LINE_BYTES} bytes") from None
        if not raw.endswith(b"\n"):
            error = self._lost_step("connection closed by Asterisk")
            raise AgiHangup(str(error)) if self.hung_up else error
        return raw.decode(errors="replace").rstrip("\r\n")

    def _lost_step(self, reason: str) -> AgiError:
        """Replies can no longer be matched to commands: this and every later command fail."""
        self._broken = reason
        return AgiError(reason)


def _verb(line: str) -> str:
    """The command's words before its arguments, for messages that must not carry values."""
    return line.split('"', 1)[0].strip() or line[:20]


class FastAgiServer:
    """The FastAGI listener as a component: auxiliary, since calls are placed without it."""

    name = "agi"
    essential = False

    def __init__(self, settings: AgiServerSettings, routes: Mapping[str, Handler]) -> None:
        self.settings = settings
        self._routes = dict(routes)
        self._connections: set[asyncio.Task[None]] = set()
        self._listening = asyncio.Event()
        self._port = 0

    async def wait_listening(self) -> int:
        """The bound port, once listening (the real one when settings.port is 0)."""
        await self._listening.wait()
        return self._port

    async def run(self) -> None:
        server = await asyncio.start_server(
            self._accept, self.settings.host, self.settings.port, limit=MAX_LINE_BYTES
        )
        try:
            self._port = server.sockets[0].getsockname()[1]
            self._listening.set()
            log.info("FastAGI listening", extra={"host": self.settings.host, "port": self._port})
            await server.serve_forever()
        finally:
            self._listening.clear()
            server.close()
            for task in self._connections:
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Refuse at once what is not permitted or too many; the rest gets its own task."""
        peer = _peer_ip(writer)
        if not self._permitted(peer):
            log.warning("FastAGI peer not permitted: closed", extra={"peer": peer})
            writer.transport.abort()
            return
        if len(self._connections) >= self.settings.max_connections:
            log.warning(
                "FastAGI connections at their limit: closed",
                extra={"peer": peer, "max_connections": self.settings.max_connections},
            )
            writer.transport.abort()
            return
        task = asyncio.create_task(self._serve(reader, writer, peer), name=f"agi {peer}")
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    def _permitted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # an IPv4 peer on a dual-stack listener
        return any(address in network for network in self.settings.permit)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        try:
            request = await self._read_request(reader, peer)
            if request is None:
                return
            handler = self._routes.get(request.script)
            if handler is None:
                log.warning(
                    "FastAGI script unknown: closed",
                    extra={"peer": peer, "script": request.script, "channel": request.env.get("channel")},
                )
                return
            session = AgiSession(reader, writer, self.settings.command_timeout_s)
            await self._run_handler(handler, request, session)
        finally:
            await _close(writer)

    async def _read_request(self, reader: asyncio.StreamReader, peer: str) -> AgiRequest | None:
        """The request, or None (logged) when the headers are bad, too big, cut short or too slow."""
        try:
            async with asyncio.timeout(self.settings.header_timeout_s):
                env = await _read_headers(reader)
        except TimeoutError:
            log.warning(
                "FastAGI headers not complete in time: closed",
                extra={"peer": peer, "header_timeout_s": self.settings.header_timeout_s},
            )
            return None
        except (AgiError, ConnectionError) as error:
            log.warning("FastAGI headers refused: closed", extra={"peer": peer, "reason": str(error)})
            return None
        return _request(env, peer)

    async def _run_handler(self, handler: Handler, request: AgiRequest, session: AgiSession) -> None:
        """A handler's end, whatever it is, closes the connection; none reaches the server."""
        where = {"script": request.script, "channel": request.env.get("channel"), "peer": request.peer}
        deadline = asyncio.timeout(self.settings.request_timeout_s)
        try:
            async with deadline:
                await handler(request, session)
        except TimeoutError:
            if not deadline.expired():
                log.exception("FastAGI handler failed: closed", extra=where)
                return
            log.warning(
                "FastAGI handler ran out of time: closed",
                extra={**where, "request_timeout_s": self.settings.request_timeout_s},
            )
        except AgiHangup:
            log.info("FastAGI channel hung up during the handler", extra=where)
        except AgiError as error:
            log.warning("FastAGI session failed: closed", extra={**where, "reason": str(error)})
        except Exception:
            log.exception("FastAGI handler failed: closed", extra=where)


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    """``agi_key: value`` lines up to a blank one; AgiError beyond the limits or when cut short.

    Every read either returns a line or ends the connection: a peer closing early yields an
    incomplete line (no spinning on empty reads)."""
    env: dict[str, str] = {}
    size = 0
    for _ in range(MAX_HEADER_LINES + 1):
        try:
            raw = await reader.readline()
        except ValueError:
            raise AgiError("header line too long") from None
        size += len(raw)
        if size > MAX_HEADER_BYTES:
            raise AgiError(f"headers larger than {MAX_HEADER_BYTES} bytes")
        if not raw.endswith(b"\n"):
            raise AgiError("connection closed inside the headers")
        line = raw.decode(errors="replace").rstrip("\r\n")
        if not line:
            return env
        key, colon, value = line.partition(":")
        if not colon or not key.startswith("agi_"):
            raise AgiError(f"not an AGI header: {line[:40]!r}")
        env[key.removeprefix("agi_").strip()] = value.removeprefix(" ")
    raise AgiError(f"more than {MAX_HEADER_LINES} header lines")


def _request(env: dict[str, str], peer: str) -> AgiRequest:
    path, _, query = env.get("network_script", "").partition("?")
    query_values = dict(parse_qsl(query, keep_blank_values=True))
    return AgiRequest(env=env, script=path.lstrip("/"), query=query_values, peer=peer)


def _peer_ip(writer: asyncio.StreamWriter) -> str:
    peername = writer.get_extra_info("peername")
    return str(peername[0]) if peername else ""


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close, giving queued bytes ``CLOSE_TIMEOUT_S`` to leave; a peer that does not read is cut."""
    writer.close()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await writer.wait_closed()
    except TimeoutError:
        writer.transport.abort()
    except ConnectionError:
        pass
