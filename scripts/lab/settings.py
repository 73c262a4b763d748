"""Every lab setting in one place, read from ACB_LAB_* environment variables with loopback defaults.

Ports are settings because an admin's host may already run Asterisk, Redis or another SIP stack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB_PACKAGE = Path(__file__).resolve().parent
HOST = "127.0.0.1"


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        port = int(raw)
    except ValueError:
        raise SystemExit(f"pbx-lab: {name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise SystemExit(f"pbx-lab: {name}={port} is out of range")
    return port


@dataclass(frozen=True)
class LabSettings:
    """The lab's ports, credentials and directories; `pbx-lab env` prints exactly this."""

    lab_dir: Path
    cache_dir: Path
    sip_port: int
    http_port: int
    ami_port: int
    https_port: int  # ARI over TLS (http.conf tlsbindaddr), certificate from the lab's own CA
    ami_tls_port: int  # AMI over TLS (manager.conf tlsbindaddr)
    redis_port: int
    contacts_port: int
    agent_base_port: int
    rtp_ports: tuple[int, int]
    media_base_port: int
    pg_host: str
    pg_port: int
    agents: tuple[str, ...]
    pg_database: str
    pg_user: str
    # The lab's own database on the host's MariaDB server: Asterisk writes CDR and CEL there too
    # (res_odbc, cdr_adaptive_odbc, cel_odbc); its password is generated into mariadb_dir.
    mariadb_host: str = HOST
    mariadb_port: int = 3306
    mariadb_database: str = "acb_lab"
    mariadb_user: str = "acb_lab"
    # Second phones of agents (endpoint, SIPp UAS, registration like an agent's; in no queue): the
    # daemon's [agents] decides whose they are, e.g. "1001 = PJSIP/1001 & PJSIP/1011".
    desk_phones: tuple[str, ...] = ()
    ari_user: str = "acb"
    ari_password: str = "acb-lab-ari"
    ari_app: str = "asterisk-cb"
    ami_user: str = "acb"  # exactly the rights the README documents for the daemon
    ami_secret: str = "acb-lab-ami"
    # The tests' own AMI user (read = all, write = all): observers and fault injection need more than
    # the daemon's documented rights, and must not widen them.
    harness_ami_user: str = "acb-harness"
    harness_ami_secret: str = "acb-lab-harness"
    # Users with less than the daemon needs, so `doctor`'s rights checks are seen failing on a real peer.
    weak_ami_user: str = "acb-weak"  # write = reporting (no agent: no queue pauses)
    weak_ami_secret: str = "acb-lab-weak"
    read_only_ari_user: str = "acb-read-only"  # ari.conf read_only = yes
    read_only_ari_password: str = "acb-lab-read-only"
    agent_password: str = "acb-lab-agent"
    pg_password: str = "acb-lab-pg"

    @property
    def root_dir(self) -> Path:
        """The unpacked Asterisk chroot (disposable: recreated from the cached tarball)."""
        return self.lab_dir / "root"

    @property
    def log_dir(self) -> Path:
        return self.lab_dir / "log"

    @property
    def run_dir(self) -> Path:
        """Pid files of the lab's processes."""
        return self.lab_dir / "run"

    @property
    def redis_dir(self) -> Path:
        return self.lab_dir / "redis"

    @property
    def phones_dir(self) -> Path:
        """Per-phone state (chosen behaviour) and SIPp scenario copies."""
        return self.lab_dir / "phones"

    @property
    def mariadb_dir(self) -> Path:
        """The lab MariaDB user's generated password and a client option file (both mode 0600)."""
        return self.lab_dir / "mariadb"

    @property
    def tls_dir(self) -> Path:
        """The lab's self-signed CA and Asterisk's certificate (kept across ups: clients trust ca.crt)."""
        return self.lab_dir / "tls"

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    @property
    def pg_dsn(self) -> str:
        return (
            f"postgresql://{self.pg_user}:{self.pg_password}@{self.pg_host}:{self.pg_port}/{self.pg_database}"
        )

    @property
    def ari_url(self) -> str:
        return f"http://{HOST}:{self.http_port}/ari"

    @property
    def ari_tls_url(self) -> str:
        return f"https://{HOST}:{self.https_port}/ari"

    @property
    def failover_agents(self) -> tuple[str, ...]:
        """The failover queue's members: the second half of the agents (the first take callbacks)."""
        return self.agents[len(self.agents) // 2 :]

    @property
    def phones(self) -> tuple[str, ...]:
        """Every registered phone: the agents', then the desk phones (so agents keep their ports)."""
        return self.agents + tuple(phone for phone in self.desk_phones if phone not in self.agents)

    def agent_port(self, agent: str) -> int:
        """Each phone (agent or desk phone) is its own SIPp process on its own UDP port."""
        return self.agent_base_port + self.phones.index(agent)

    def media_port(self, slot: int) -> int:
        """SIPp binds an RTP echo port and that port + 2: every SIPp process gets its own pair, by slot
        (0 the contacts UAS, 1.. the phones, then one-shot registrations and test calls)."""
        return self.media_base_port + 4 * slot

    def phone_slot(self, phone: str) -> int:
        return 1 + self.phones.index(phone)


def load() -> LabSettings:
    """Settings from the environment; defaults give a lab on 127.0.0.1 next to the repository."""
    agents = tuple(os.environ.get("ACB_LAB_AGENTS", "1001 1002 1003 1004").split())
    return LabSettings(
        lab_dir=Path(os.environ.get("ACB_LAB_DIR", str(REPO / ".lab"))).resolve(),
        cache_dir=Path(os.environ.get("ACB_LAB_CACHE", "/var/cache/asterisk-cb-lab")),
        sip_port=_port("ACB_LAB_SIP_PORT", 5060),
        http_port=_port("ACB_LAB_HTTP_PORT", 8088),
        ami_port=_port("ACB_LAB_AMI_PORT", 5038),
        https_port=_port("ACB_LAB_HTTPS_PORT", 8089),
        ami_tls_port=_port("ACB_LAB_AMI_TLS_PORT", 5039),
        redis_port=_port("ACB_LAB_REDIS_PORT", 6380),
        contacts_port=_port("ACB_LAB_SIPP_CONTACTS_PORT", 5070),
        agent_base_port=_port("ACB_LAB_SIPP_AGENT_BASE_PORT", 5071),
        media_base_port=_port("ACB_LAB_SIPP_MEDIA_BASE_PORT", 16000),
        rtp_ports=(_port("ACB_LAB_RTP_START", 20000), _port("ACB_LAB_RTP_END", 20999)),
        pg_host=os.environ.get("ACB_LAB_PG_HOST", HOST),
        pg_port=_port("ACB_LAB_PG_PORT", 5432),
        agents=agents,
        pg_database=os.environ.get("ACB_LAB_PG_DATABASE", "asterisk_cb_lab"),
        pg_user=os.environ.get("ACB_LAB_PG_USER", "asterisk_cb_lab"),
        desk_phones=tuple(os.environ.get("ACB_LAB_DESK_PHONES", "1011").split()),
        mariadb_host=os.environ.get("ACB_LAB_MARIADB_HOST", HOST),
        mariadb_port=_port("ACB_LAB_MARIADB_PORT", 3306),
        mariadb_database=os.environ.get("ACB_LAB_MARIADB_DATABASE", "acb_lab"),
        mariadb_user=os.environ.get("ACB_LAB_MARIADB_USER", "acb_lab"),
    )
