"""SIPp phones: one contacts UAS (behaviour chosen by the dialled number) and one UAS per agent phone
(the agents' and the desk phones, see LabSettings.desk_phones), plus one-shot callers: inbound test
calls (`call`) and calls an agent's phone places (`dial`).

An agent phone is a SIPp UAS on its own port plus a registration whose Contact points at it, made
by a one-shot SIPp REGISTER. Changing an agent's behaviour restarts its UAS with another scenario;
`offline` unregisters it (Asterisk then reports the device UNAVAILABLE). Every INVITE a phone gets
is logged (`pbx-lab env`: invite_dir, lab/invites.py) so tests can count calls per number.

Every phone offers telephone-event (RFC 4733) and may press keys after the answer: a key script
(lab/dtmf.py) becomes a pcap the SIPp scenario plays.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lab import asterisk, dtmf, procs
from lab.ports import PortNeed, check_free, is_free
from lab.settings import HOST, LAB_PACKAGE, LabSettings
from lab.templates import render

SCENARIOS = LAB_PACKAGE / "sipp"
CONTACTS = "contacts"
# The prefix an agent phone puts before the dialled user: see the rules in sipp/uas.xml.
BEHAVIOUR_CODES = {"answer": "", "reject": "603", "busy": "486", "noanswer": "480"}
PORT_RELEASE_S = 5  # how long a just-stopped phone may take to free its ports
START_TRIES = 3  # a phone start that lost a port race is tried again (a clear error after that)
REGISTRATION_S = 2592000  # 30 days: a long-running lab never sees its agents expire
# Every phone's SDP (offer or answer): PCMU, and telephone-event for keys both ways.
SDP = """v=0
o=lab 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16"""


@dataclass(frozen=True)
class Behaviour:
    """What an agent phone does with every INVITE until changed: name (answer, reject, busy, noanswer,
    offline), ring_s before answering, hangup_after_s after the answer (0: waits for the BYE), and the
    key script it plays after each answer ("" = none)."""

    name: str = "answer"
    ring_s: int = 0
    hangup_after_s: int = 0
    keys: str = ""

    def describe(self) -> str:
        return (
            self.name
            + (f" after {self.ring_s}s" if self.ring_s else "")
            + (f", keys {self.keys!r}" if self.keys else "")
            + (f", hangs up {self.hangup_after_s}s after the answer" if self.hangup_after_s else "")
        )


def _sipp() -> str:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("pbx-lab: sipp is not installed (Debian package sip-tester; run scripts/setup-host)")
    return sipp


def invite_dir(settings: LabSettings, phone: str) -> Path:
    """Where phone's INVITE logs go: one file per SIPp process (read them with lab.invites.read)."""
    return settings.log_dir / "invites" / phone


def _phone_name(agent: str) -> str:
    return f"agent-{agent}"


def _new_invite_log(settings: LabSettings, phone: str) -> str:
    """A fresh INVITE log for a phone process (SIPp truncates the file it logs to), and the
    <phone>.invites.log link to it: the current process's INVITEs; invite_dir holds them all."""
    invites = invite_dir(settings, phone)
    invites.mkdir(parents=True, exist_ok=True)
    log_file = invites / f"{time.time_ns()}.log"
    log_file.touch()
    current = settings.log_dir / f"{phone}.invites.log"
    current.unlink(missing_ok=True)
    current.symlink_to(log_file)
    return str(log_file)


def _sipp_common(settings: LabSettings, scenario: Path, phone: str, slot: int, port: int) -> list[str]:
    """Loopback everywhere: SIP, media and SIPp's control socket (which defaults to 0.0.0.0).

    Always an explicit SIP port: without -p, SIPp takes 5060 whenever it is free (e.g. while the
    lab Asterisk restarts) and then talks to itself.
    """
    return [
        _sipp(), "-sf", str(scenario), "-i", HOST, "-p", str(port),
        "-mi", HOST, "-mp", str(settings.media_port(slot)),
        "-ci", HOST, "-nostdin", "-trace_err", "-error_file", str(settings.log_dir / f"{phone}.errors.log"),
    ]  # fmt: skip


def _write_scenario(settings: LabSettings, template: str, name: str, values: dict[str, str]) -> Path:
    settings.phones_dir.mkdir(parents=True, exist_ok=True)
    scenario = settings.phones_dir / f"{name}.xml"
    scenario.write_text(render(SCENARIOS / template, {"sdp": SDP, **values}))
    return scenario


def _keys_pcap(settings: LabSettings, name: str) -> Path:
    return settings.phones_dir / f"{name}.keys.pcap"


def _after_answer(settings: LabSettings, name: str, keys: str) -> str:
    """The scenario step that presses the keys once the call is answered (none without keys): SIPp
    replays their pcap from the call's media port to the far end's, in the background."""
    if not keys:
        return ""
    pcap = dtmf.write(keys, _keys_pcap(settings, name))
    return f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>'


def _uas_ports(settings: LabSettings, phone: str, port: int, slot: int) -> list[PortNeed]:
    """Every port a UAS binds: its SIP port and its RTP echo pair (SIPp exits if any one is taken)."""
    media = settings.media_port(slot)
    return [
        PortNeed(port, "udp", f"SIPp phone {phone}"),
        PortNeed(media, "udp", f"SIPp phone {phone} (RTP)"),
        PortNeed(media + 2, "udp", f"SIPp phone {phone} (RTP)"),
    ]


def _wait_for_ports(needs: list[PortNeed]) -> None:
    """Wait until every port is free, then refuse the start naming the holder of one still taken.

    Why wait: a phone just killed holds its ports until the last of SIPp's threads has exited, which
    can come after its main thread reads as gone (the e2e suite restarts phones this way)."""
    procs.wait_until(lambda: all(is_free(need.port, need.proto) for need in needs), PORT_RELEASE_S)
    for need in needs:
        check_free(need)


def _sipp_error(settings: LabSettings, phone: str) -> str:
    """The last error SIPp logged for phone (its -error_file), for a message that says why it stopped."""
    errors = settings.log_dir / f"{phone}.errors.log"
    lines = errors.read_text(errors="replace").splitlines() if errors.exists() else []
    return lines[-1].split(": ", 1)[-1] if lines else "no error logged"


def _launch_uas(settings: LabSettings, phone: str, port: int, slot: int, scenario: Path) -> str | None:
    """Start the UAS once: None once it listens, else why it did not (it is stopped then)."""
    _wait_for_ports(_uas_ports(settings, phone, port, slot))
    (settings.log_dir / f"{phone}.errors.log").unlink(missing_ok=True)
    log_file = _new_invite_log(settings, phone)
    argv = [*_sipp_common(settings, scenario, phone, slot, port), "-aa", "-trace_logs", "-log_file", log_file]
    procs.start(settings.run_dir, phone, argv, settings.log_dir / f"{phone}.out", cwd=settings.phones_dir)

    def running() -> bool:
        return procs.running_pid(settings.run_dir, phone, str(scenario)) is not None

    procs.wait_until(lambda: not is_free(port, "udp") or not running(), 10)
    if running() and not is_free(port, "udp"):
        return None
    problem = _sipp_error(settings, phone) if not running() else "not listening after 10 s"
    procs.stop(settings.run_dir, phone, str(scenario), signum=signal.SIGKILL)
    return problem


def _start_uas(settings: LabSettings, phone: str, port: int, slot: int, mode: str, *, keys: str = "") -> None:
    """Start a UAS phone on port (unless running) and wait until it listens.

    A start that loses a port to another process between the check and SIPp's bind is tried again."""
    if procs.running_pid(settings.run_dir, phone, str(settings.phones_dir / f"{phone}.xml")) is not None:
        return
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    values = {"mode": mode, "after_answer": _after_answer(settings, phone, keys)}
    scenario = _write_scenario(settings, "uas.xml", phone, values)
    for _ in range(START_TRIES):
        problem = _launch_uas(settings, phone, port, slot, scenario)
        if problem is None:
            return
        if "already in use" not in problem:
            break
    log = settings.log_dir / f"{phone}.out"
    raise SystemExit(f"pbx-lab: SIPp phone {phone} did not start: {problem}; see {log}")


def _stop_uas(settings: LabSettings, phone: str) -> None:
    """SIGKILL: a phone keeps no state, and SIPp takes 1.5 s to wind down on SIGTERM."""
    procs.stop(settings.run_dir, phone, str(settings.phones_dir / f"{phone}.xml"), signum=signal.SIGKILL)
    _keys_pcap(settings, phone).unlink(missing_ok=True)


def _free_udp_port() -> int:
    """A port the kernel considers free, for one-shot SIPp clients (registrations, test calls)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _register_one(settings: LabSettings, agent: str, expires: int) -> str | None:
    """One REGISTER (with digest auth) for agent; None on success, else what went wrong."""
    slot = len(settings.phones) + settings.phone_slot(agent)
    name = f"register-{agent}"
    values = {
        "agent": agent,
        "password": settings.agent_password,
        "phone_port": str(settings.agent_port(agent)),
        "expires": str(expires),
    }
    scenario = _write_scenario(settings, "register.xml", name, values)
    argv = [
        *_sipp_common(settings, scenario, name, slot, _free_udp_port()),
        "-m", "1", "-timeout", "10s", "-timeout_error", f"{HOST}:{settings.sip_port}",
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, cwd=settings.phones_dir, check=False)
    if result.returncode == 0:
        return None
    return f"agent {agent}: sipp exited {result.returncode}, see {settings.log_dir}/{name}.errors.log"


def register(settings: LabSettings, agents: list[str], expires: int = REGISTRATION_S) -> None:
    """(Un)register agents in parallel; expires=0 unregisters. Fails loudly if Asterisk refused."""
    if not agents:
        return
    with ThreadPoolExecutor(max_workers=len(agents)) as pool:
        problems = [p for p in pool.map(lambda agent: _register_one(settings, agent, expires), agents) if p]
    if problems:
        raise SystemExit("pbx-lab: registration failed: " + "; ".join(problems))


def _behaviour_file(settings: LabSettings, agent: str) -> Path:
    return settings.phones_dir / f"{_phone_name(agent)}.behaviour"


def behaviour(settings: LabSettings, agent: str) -> Behaviour:
    """The agent's chosen behaviour (answer at once, no keys, until set otherwise).

    The file's first line is `<name> <ring_s> [<hangup_after_s>]`, the second the key script, if any.
    """
    path = _behaviour_file(settings, agent)
    if not path.exists():
        return Behaviour()
    first, _, keys = path.read_text().partition("\n")
    name, ring_s, *hangup = first.split()
    return Behaviour(name, int(ring_s), int(hangup[0]) if hangup else 0, keys.strip())


def _mode(chosen: Behaviour) -> str:
    """The behaviour as the prefix sipp/uas.xml reads (answer after RR s, hang up SS s later: 203RRSS)."""
    if chosen.name != "answer":
        return BEHAVIOUR_CODES[chosen.name]
    if chosen.hangup_after_s:
        ring = f"203{chosen.ring_s:02d}" if chosen.ring_s else "201"
        return f"{ring}{chosen.hangup_after_s:02d}"
    return f"202{chosen.ring_s:02d}" if chosen.ring_s else ""


def _start_agent(settings: LabSettings, agent: str) -> None:
    chosen = behaviour(settings, agent)
    if chosen.name != "offline":
        slot = settings.phone_slot(agent)
        port = settings.agent_port(agent)
        _start_uas(settings, _phone_name(agent), port, slot, _mode(chosen), keys=chosen.keys)


def up(settings: LabSettings) -> None:
    """Start whatever phone is missing and (re)register every agent that is not offline."""
    _start_uas(settings, CONTACTS, settings.contacts_port, 0, "")
    for agent in settings.phones:
        _start_agent(settings, agent)
    register(settings, [agent for agent in settings.phones if behaviour(settings, agent).name != "offline"])


def _free_slot(settings: LabSettings) -> int:
    """The first media slot past the phones' own whose RTP ports are both free (for a test call)."""
    slot = 1 + 2 * len(settings.phones)
    while not (is_free(settings.media_port(slot), "udp") and is_free(settings.media_port(slot) + 2, "udp")):
        slot += 1
    return slot


def _finish_calls(settings: LabSettings, only_ended: bool) -> None:
    """Forget ended test calls (pid file, scenario, keys); with only_ended=False, hang up the others too."""
    for pid_file in settings.run_dir.glob("call-*.pid"):
        name = pid_file.name.removesuffix(".pid")
        scenario = settings.phones_dir / f"{name}.xml"
        if only_ended and procs.running_pid(settings.run_dir, name, str(scenario)) is not None:
            continue
        procs.stop(settings.run_dir, name, str(scenario), signum=signal.SIGKILL)
        scenario.unlink(missing_ok=True)
        _keys_pcap(settings, name).unlink(missing_ok=True)


def _start_call(settings: LabSettings, name: str, template: str, values: dict[str, str], keys: str) -> str:
    """Run a one-shot SIPp UAC scenario (one call to the lab Asterisk) in the background."""
    if not asterisk.running(settings):
        raise SystemExit("pbx-lab: the lab Asterisk is not running (scripts/pbx-lab up)")
    _finish_calls(settings, only_ended=True)
    values = {**values, "after_answer": _after_answer(settings, name, keys)}
    scenario = _write_scenario(settings, template, name, values)
    common = _sipp_common(settings, scenario, name, _free_slot(settings), _free_udp_port())
    argv = [*common, "-m", "1", f"{HOST}:{settings.sip_port}"]
    procs.start(settings.run_dir, name, argv, settings.log_dir / "calls.out", cwd=settings.phones_dir)
    return name


def _hold_ms(hold_s: float) -> str:
    if hold_s < 0:
        raise SystemExit("pbx-lab: --hold-s must not be negative")
    return str(round(hold_s * 1000))


def call(settings: LabSettings, exten: str, caller: str, hold_s: float, *, keys: str = "") -> str:
    """Place an inbound call from SIPp to exten@lab-inbound in the background; returns its name.

    The caller stays hold_s seconds after Asterisk answers (the queues answer at once), pressing the
    key script's keys (lab/dtmf.py) from the answer on.
    """
    values = {"exten": exten, "caller": caller, "hold_ms": _hold_ms(hold_s)}
    return _start_call(settings, f"call-{exten}-{time.time_ns()}", "caller.xml", values, keys)


def dial(settings: LabSettings, agent: str, number: str, *, keys: str = "", hold_s: float = 30) -> str:
    """Place a call from agent's endpoint to number (context `agents`) in the background; returns its name.

    A one-shot SIPp UAC authenticates as the agent without registering (the agent's phone stays
    registered), presses the keys from the answer on, and hangs up hold_s seconds after the answer
    unless the far end hangs up first.
    """
    _known_phone(settings, agent)
    values = {
        "agent": agent,
        "number": number,
        "password": settings.agent_password,
        "hold_ms": _hold_ms(hold_s),
    }
    return _start_call(settings, f"call-{agent}-dials-{time.time_ns()}", "dial.xml", values, keys)


def down(settings: LabSettings) -> str:
    """Unregister the agents (if Asterisk still runs), stop every phone, forget chosen behaviours."""
    if asterisk.running(settings):
        try:
            register(settings, list(settings.phones), expires=0)
        except SystemExit as problem:
            print(problem)
    _finish_calls(settings, only_ended=False)
    _stop_uas(settings, CONTACTS)
    # Every agent phone that was started, also those of an earlier `up` with more ACB_LAB_AGENTS:
    # a phone left running would hold its port against the next `up`.
    for pid_file in settings.run_dir.glob(f"{_phone_name('*')}.pid"):
        _stop_uas(settings, pid_file.stem)
    for behaviour_file in settings.phones_dir.glob(f"{_phone_name('*')}.behaviour"):
        behaviour_file.unlink()
    return "down"


def _known_phone(settings: LabSettings, agent: str) -> None:
    if agent not in settings.phones:
        raise SystemExit(f"pbx-lab: unknown phone {agent}; phones: {' '.join(settings.phones)}")


def _check(chosen: Behaviour) -> None:
    if not 0 <= chosen.ring_s <= 99:
        raise SystemExit("pbx-lab: --ring-s must be between 0 and 99")
    if not 0 <= chosen.hangup_after_s <= 99:
        raise SystemExit("pbx-lab: --hangup-after must be between 0 and 99")
    if chosen.name != "answer" and (chosen.keys or chosen.hangup_after_s):
        raise SystemExit("pbx-lab: --keys and --hangup-after need the answer behaviour")
    if chosen.keys:
        dtmf.parse(chosen.keys)


def set_behaviour(
    settings: LabSettings, agent: str, name: str, ring_s: int = 0, *, keys: str = "", hangup_after_s: int = 0
) -> None:
    """Switch an agent phone to another behaviour at run time (calls on its old UAS are dropped).

    keys (a key script, lab/dtmf.py) and hangup_after_s apply to every call the phone answers until
    the next change.
    """
    _known_phone(settings, agent)
    chosen = Behaviour(name, ring_s, hangup_after_s, " ".join(keys.split()))
    _check(chosen)
    if not asterisk.running(settings):
        raise SystemExit("pbx-lab: the lab Asterisk is not running (scripts/pbx-lab up)")
    settings.phones_dir.mkdir(parents=True, exist_ok=True)
    _behaviour_file(settings, agent).write_text(f"{name} {ring_s} {hangup_after_s}\n{chosen.keys}\n")
    _stop_uas(settings, _phone_name(agent))
    if name == "offline":
        register(settings, [agent], expires=0)
        return
    _start_agent(settings, agent)
    register(settings, [agent])


def _phone_running(settings: LabSettings, phone: str) -> bool:
    marker = str(settings.phones_dir / f"{phone}.xml")
    return procs.running_pid(settings.run_dir, phone, marker) is not None


def status(settings: LabSettings) -> str:
    agents = []
    healthy = _phone_running(settings, CONTACTS)
    for agent in settings.phones:
        chosen = behaviour(settings, agent)
        alive = _phone_running(settings, _phone_name(agent))
        healthy = healthy and (alive or chosen.name == "offline")
        agents.append(f"{agent} {chosen.describe()}" + ("" if alive else " (no phone)"))
    state = "up" if healthy else "down"
    return f"{state} (contacts UAS 127.0.0.1:{settings.contacts_port}; agents: {', '.join(agents)})"
