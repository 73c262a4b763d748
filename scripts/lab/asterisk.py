"""Asterisk 22 in the sid chroot: configuration, start under a private mount namespace, stop, CLI.

It runs as `setsid unshare --mount --propagation private --fork --kill-child -- sh -c "mount -t proc
proc ROOT/proc && exec chroot ROOT asterisk -f"`: the /proc mount exists only in that namespace, so
it vanishes with the process and nothing leaks to the host's mount table, even after kill -9.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from lab import mariadb, procs, root, tls
from lab.ports import PortNeed, check_free, is_free
from lab.settings import LAB_PACKAGE, REPO, LabSettings
from lab.templates import render

NAME = "asterisk"
TEMPLATES = LAB_PACKAGE / "asterisk"
# unixODBC's data sources, rendered into the chroot's /etc (res_odbc.conf names them).
ODBC_TEMPLATES = LAB_PACKAGE / "odbc"
ASTERISK_LOG = Path("var/log/asterisk/messages.log")
# Files of the project's dialplan/ the lab's extensions.conf includes as they are (the chroot cannot
# see the checkout): a copy on every `up`, none while the checkout lacks the file (#tryinclude).
SHIPPED_DIALPLAN = ("callback-request.conf", "callback-inbound.conf")


def _marker(settings: LabSettings) -> str:
    """What only our Asterisk's command line contains: the chroot path."""
    return f"chroot {settings.root_dir} "


def _agent_sections(settings: LabSettings) -> str:
    sections = [
        f'\n[{agent}](agent)\nauth = {agent}\naors = {agent}\ncallerid = "Agent {agent}" <{agent}>\n'
        f"\n[{agent}](agent-auth)\nusername = {agent}\n\n[{agent}](agent-aor)\n"
        for agent in settings.phones
    ]
    return "".join(sections)


def _members(agents: tuple[str, ...]) -> str:
    return "\n".join(f"member => PJSIP/{agent}" for agent in agents)


def _values(settings: LabSettings) -> dict[str, str]:
    rtp_start, rtp_end = settings.rtp_ports
    plain = {
        key: str(getattr(settings, key))
        for key in ("http_port", "ami_port", "sip_port", "contacts_port", "ari_user", "ari_password",
                    "ami_user", "ami_secret", "harness_ami_user", "harness_ami_secret", "agent_password",
                    "weak_ami_user", "weak_ami_secret", "read_only_ari_user", "read_only_ari_password",
                    "pg_host", "pg_port", "pg_database", "pg_user", "pg_password")
    }  # fmt: skip
    return {
        **plain,
        **tls.values(settings),
        **mariadb.odbc_values(settings),
        "rtp_start": str(rtp_start),
        "rtp_end": str(rtp_end),
        "agent_sections": _agent_sections(settings),
        "failover_members": _members(settings.failover_agents),
        "support_members": _members(settings.agents),
    }


def write_config(settings: LabSettings) -> None:
    """Render every template in scripts/lab/asterisk into the chroot's /etc/asterisk (scripts/lab/odbc
    into its /etc), and copy the shipped dialplan files the lab includes (removing a copy whose
    original is gone)."""
    values = _values(settings)
    config_dir = settings.root_dir / "etc" / "asterisk"
    for template in sorted(TEMPLATES.glob("*.conf")):
        (config_dir / template.name).write_text(render(template, values))
    for template in sorted(ODBC_TEMPLATES.glob("*.ini")):
        (settings.root_dir / "etc" / template.name).write_text(render(template, values))
    for name in SHIPPED_DIALPLAN:
        shipped, copy = REPO / "dialplan" / name, config_dir / name
        if shipped.exists():
            copy.write_text(shipped.read_text())
        else:
            copy.unlink(missing_ok=True)


def _ari_ready(settings: LabSettings) -> bool:
    """ARI answers an authenticated request: HTTP, res_ari and the user are all in place."""
    token = base64.b64encode(f"{settings.ari_user}:{settings.ari_password}".encode()).decode()
    request = urllib.request.Request(
        f"{settings.ari_url}/asterisk/info", headers={"Authorization": f"Basic {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def running(settings: LabSettings) -> bool:
    return procs.running_pid(settings.run_dir, NAME, _marker(settings)) is not None and _ari_ready(settings)


def _runtime_dirs(settings: LabSettings) -> None:
    """/run is empty in a fresh root (no systemd-tmpfiles): create Asterisk's run directory."""
    run_dir = settings.root_dir / "run" / "asterisk"
    run_dir.mkdir(parents=True, exist_ok=True)
    owner = (settings.root_dir / "var" / "lib" / "asterisk").stat()
    os.chown(run_dir, owner.st_uid, owner.st_gid)


def _argv(settings: LabSettings) -> list[str]:
    chroot = settings.root_dir
    inner = (
        f'mount -t proc proc "{chroot}/proc" && '
        f"exec chroot {chroot} /usr/sbin/asterisk -f -n -U asterisk -G asterisk"
    )
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--fork",
        "--kill-child",
        "--",
        "sh",
        "-c",
        inner,
    ]


def _port_needs(settings: LabSettings) -> tuple[PortNeed, ...]:
    return (
        PortNeed(settings.sip_port, "udp", "Asterisk (SIP)"),
        PortNeed(settings.http_port, "tcp", "Asterisk (HTTP/ARI)"),
        PortNeed(settings.ami_port, "tcp", "Asterisk (AMI)"),
        PortNeed(settings.https_port, "tcp", "Asterisk (HTTPS/ARI over TLS)"),
        PortNeed(settings.ami_tls_port, "tcp", "Asterisk (AMI over TLS)"),
    )


def up(settings: LabSettings) -> None:
    """Start Asterisk unless it runs (waiting for it if it is still starting); returns once booted."""
    if _alive(settings) and procs.wait_until(lambda: _ari_ready(settings), 30):
        return
    stop(settings)
    for need in _port_needs(settings):
        check_free(need)
    root.ensure_root(settings)
    tls.ensure(settings)
    write_config(settings)
    _runtime_dirs(settings)
    started = time.monotonic()
    procs.start(settings.run_dir, NAME, _argv(settings), settings.log_dir / "asterisk.out")
    _wait_ari(settings)
    ari_ready_s = time.monotonic() - started
    _wait_fully_booted(settings)
    version = root.installed_version(settings.root_dir)
    booted_s = time.monotonic() - started
    print(
        f"pbx-lab: Asterisk {version}: ARI ready after {ari_ready_s:.2f} s, "
        f"fully booted after {booted_s:.2f} s"
    )


def _wait_ari(settings: LabSettings) -> None:
    logs = f"see {log_path(settings)} and {settings.log_dir / 'asterisk.out'}"
    if not procs.wait_until(lambda: _ari_ready(settings) or not _alive(settings), 60, 0.02):
        raise SystemExit(f"pbx-lab: Asterisk did not answer ARI within 60 s; {logs}")
    if not _alive(settings):
        raise SystemExit(f"pbx-lab: Asterisk exited while starting; {logs}")


def _wait_fully_booted(settings: LabSettings) -> None:
    """ARI answers before every module is loaded (PJSIP may not listen yet): wait for FullyBooted."""
    result = subprocess.run(
        ["chroot", str(settings.root_dir), "/usr/sbin/asterisk", "-rx", "core waitfullybooted"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"pbx-lab: Asterisk did not finish booting: {result.stdout}{result.stderr}")


def _alive(settings: LabSettings) -> bool:
    return procs.running_pid(settings.run_dir, NAME, _marker(settings)) is not None


def chroot_pids(settings: LabSettings) -> list[int]:
    """Every process whose root directory is the lab chroot (Asterisk itself, stray CLI clients)."""
    pids = []
    target = str(settings.root_dir)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "root") == target:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def stop(settings: LabSettings) -> None:
    """Stop our Asterisk (its whole session), then anything else still running inside the chroot.

    Returns once its ports are free again, so an `up` right after never finds them taken.
    """
    stopped = procs.stop(settings.run_dir, NAME, _marker(settings), grace_s=10)
    for pid in chroot_pids(settings):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    procs.wait_until(lambda: not chroot_pids(settings), 5)
    if stopped:
        procs.wait_until(lambda: all(is_free(need.port, need.proto) for need in _port_needs(settings)), 5)


def down(settings: LabSettings) -> str:
    stop(settings)
    return "down"


def log_path(settings: LabSettings) -> Path:
    return settings.root_dir / ASTERISK_LOG


def cli(settings: LabSettings, command: str) -> int:
    """Run one Asterisk CLI command (`asterisk -rx`), or with none an interactive console (`-r`)."""
    if not _alive(settings):
        raise SystemExit("pbx-lab: the lab Asterisk is not running (scripts/pbx-lab up asterisk)")
    remote = ["-rx", command] if command else ["-r"]
    result = subprocess.run(["chroot", str(settings.root_dir), "/usr/sbin/asterisk", *remote], check=False)
    return result.returncode


def status(settings: LabSettings) -> str:
    if running(settings):
        version = root.installed_version(settings.root_dir)
        return f"up (Asterisk {version}, ARI {settings.ari_url}, AMI 127.0.0.1:{settings.ami_port})"
    if _alive(settings):
        return "starting or broken (process alive, ARI not answering)"
    return "down"
