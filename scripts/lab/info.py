"""What `pbx-lab env` prints: every endpoint, credential and convention a test or a user needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lab import mariadb
from lab.settings import HOST, LabSettings

# The contacts UAS picks its behaviour from the request-URI user (a leading '+' is ignored).
CONTACT_NUMBERS = {
    "200...": "answers, stays until the caller hangs up (also any number matching no rule below)",
    "201SS...": "answers, then hangs up itself after SS seconds (two digits, e.g. 20105... = 5 s)",
    "202SS...": "rings SS seconds, then answers and stays until the caller hangs up",
    "203RRSS...": "rings RR seconds, answers, hangs up itself SS seconds later (20303 05... = 3 s, 5 s)",
    "486...": "486 Busy Here",
    "480...": "rings (180) and never answers, until CANCEL",
    "404...": "404 Not Found (unallocated number)",
    "603...": "603 Decline",
    "701SS...": (
        "not SIPp: answered inside Asterisk ([lab-answerers]), a person: 0.6 s of tone ('hello'), then "
        "silence; hangs up after SS seconds. app_amd says HUMAN. Counted in the CDR, not the INVITE logs"
    ),
    "702SS...": (
        "not SIPp: answered inside Asterisk, an answering machine: a 4 s greeting (tone), then silence; "
        "hangs up after SS seconds. app_amd says MACHINE (LONGGREETING)"
    ),
}

AGENT_BEHAVIOURS = {
    "answer": "answers (after --ring-s seconds of ringing), stays until the other side hangs up (default)",
    "reject": "603 Decline",
    "busy": "486 Busy Here",
    "noanswer": "rings forever, until CANCEL",
    "offline": "unregistered (device state UNAVAILABLE), no SIPp process",
    "(on another call)": "originate PJSIP/<agent> into a Stasis app: it answers and stays (INUSE)",
}


def describe(settings: LabSettings) -> dict[str, Any]:
    """The lab as a JSON-able dict; tests read it through `pbx-lab env --json`."""
    log_dir = settings.log_dir
    return {
        "host": HOST,
        "lab_dir": str(settings.lab_dir),
        "cache_dir": str(settings.cache_dir),
        "asterisk_root": str(settings.root_dir),
        "ports": _ports(settings),
        "ari": {
            "url": settings.ari_url,
            "ws_url": f"ws://{HOST}:{settings.http_port}/ari/events",
            "user": settings.ari_user,
            "password": settings.ari_password,
            "app": settings.ari_app,
            "tls_url": settings.ari_tls_url,
        },
        "ami": {
            "host": HOST,
            "port": settings.ami_port,
            "user": settings.ami_user,
            "secret": settings.ami_secret,
            "tls_port": settings.ami_tls_port,
        },
        # the tests' own AMI user (read/write all) for observers and fault injection; never the daemon's
        "ami_harness": {
            "host": HOST,
            "port": settings.ami_port,
            "user": settings.harness_ami_user,
            "secret": settings.harness_ami_secret,
        },
        # users with too few rights, for doctor's tests: AMI without write agent, ARI read-only
        "too_weak": {
            "ami": {"user": settings.weak_ami_user, "secret": settings.weak_ami_secret},
            "ari": {"user": settings.read_only_ari_user, "password": settings.read_only_ari_password},
        },
        "tls": {"ca_file": str(settings.tls_dir / "ca.crt")},
        "redis": {"url": settings.redis_url, "port": settings.redis_port, "dir": str(settings.redis_dir)},
        "postgres": {
            "dsn": settings.pg_dsn,
            "host": settings.pg_host,
            "port": settings.pg_port,
            "database": settings.pg_database,
            "user": settings.pg_user,
            "password": settings.pg_password,
            "tables": ["cdr", "cel"],
        },
        # Asterisk writes the same rows here through ODBC; the password is generated per lab directory
        "mariadb": {
            "dsn": mariadb.dsn(settings),
            "host": settings.mariadb_host,
            "port": settings.mariadb_port,
            "database": settings.mariadb_database,
            "user": settings.mariadb_user,
            "password_file": str(mariadb.password_file(settings)),
            "client_cnf": str(mariadb.client_cnf(settings)),
            "odbc_dsn": mariadb.ODBC_DSN,
            "tables": ["cdr", "cel"],
        },
        "sip": {
            "host": HOST,
            "port": settings.sip_port,
            "contacts_trunk": "contacts",
            "contacts_port": settings.contacts_port,
            "rtp_ports": list(settings.rtp_ports),
        },
        "dialplan": {
            "outbound_context": "callback-outbound",
            "outbound_dial": "Local/<number>@callback-outbound",
            "agents_context": "agents",
            "inbound_context": "lab-inbound",
            "inbound_queue_call": (
                "scripts/pbx-lab call support|failover|<agent> [--caller N] [--hold-s S] [--keys SCRIPT]"
            ),
            "agent_call": "scripts/pbx-lab dial <agent> <number> [--keys SCRIPT] [--hold-s S]",
            # Key scripts (scripts/lab/dtmf.py): RFC 4733 telephone-events, PT 101, after the answer.
            "key_script": "space-separated steps <pause seconds>:<keys 0-9*#A-D>, e.g. 2:*7 1.5:1430#",
            "features": {"acb-request": "*7"},
            "queues": {
                "failover": {
                    "strategy": "linear",
                    "ringinuse": "no",
                    "members": list(settings.failover_agents),
                },
                "support": {"strategy": "ringall", "ringinuse": "no", "members": list(settings.agents)},
            },
        },
        "agents": {agent: _phone(settings, agent) for agent in settings.agents},
        # second phones, in no queue: a daemon config makes one an agent's (1001 = PJSIP/1001 & PJSIP/1011)
        "desk_phones": {phone: _phone(settings, phone) for phone in settings.phones[len(settings.agents) :]},
        "agent_behaviours": AGENT_BEHAVIOURS,
        "contacts": {
            "invite_dir": str(log_dir / "invites" / "contacts"),
            "invite_log": str(log_dir / "contacts.invites.log"),
            "numbers": CONTACT_NUMBERS,
        },
        "invite_log_format": (
            "one line per INVITE received: <unix time, s.us> <request-URI user> <Call-ID>. invite_dir "
            "holds one file per SIPp process (a phone restarts when its behaviour changes): read them "
            "all with scripts/lab/invites.py; invite_log links to the current process's file only"
        ),
        "logs": {
            "asterisk": str(settings.root_dir / "var" / "log" / "asterisk" / "messages.log"),
            "asterisk_stdout": str(log_dir / "asterisk.out"),
            "redis": str(log_dir / "redis.log"),
            "sipp": str(log_dir),
        },
    }


def _phone(settings: LabSettings, phone: str) -> dict[str, Any]:
    log_dir = settings.log_dir
    return {
        "endpoint": f"PJSIP/{phone}",
        "password": settings.agent_password,
        "sipp_port": settings.agent_port(phone),
        "sipp_rtp_ports": [settings.media_port(settings.phone_slot(phone)) + offset for offset in (0, 2)],
        "invite_dir": str(log_dir / "invites" / f"agent-{phone}"),
        "invite_log": str(log_dir / f"agent-{phone}.invites.log"),
    }


def _ports(settings: LabSettings) -> list[dict[str, Any]]:
    """Every port the lab listens on (all on 127.0.0.1), as the ACB_LAB_* settings chose them."""
    fixed = [
        (settings.sip_port, "udp", "asterisk-sip"),
        (settings.http_port, "tcp", "asterisk-http-ari"),
        (settings.ami_port, "tcp", "asterisk-ami"),
        (settings.https_port, "tcp", "asterisk-https-ari"),
        (settings.ami_tls_port, "tcp", "asterisk-ami-tls"),
        (settings.redis_port, "tcp", "redis"),
        (settings.contacts_port, "udp", "sipp-contacts"),
    ]
    agents = [(settings.agent_port(agent), "udp", f"sipp-agent-{agent}") for agent in settings.phones]
    return [{"port": port, "proto": proto, "service": service} for port, proto, service in fixed + agents]


def flatten(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted.key, value) pairs for the shell-friendly `pbx-lab env` output."""
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, f"{name}.")
        else:
            yield name, value
