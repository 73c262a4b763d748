"""The lab's own certificate authority and Asterisk's server certificate, made with the openssl CLI.

Why a CA and not one self-signed certificate: it is what an admin deploys (clients trust the CA
file, the server's certificate can be renewed without touching them), so the daemon's ``ca_file``
is tested the way it is used. Made once per lab directory and kept, so a client that read ca.crt
keeps trusting Asterisk across `up`s; the certificate names 127.0.0.1 and localhost.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from lab.settings import HOST, LabSettings

DAYS = "3650"
CA_SUBJECT = "/CN=asterisk-cb lab CA"
SERVER_SUBJECT = "/CN=asterisk-cb lab Asterisk"
IN_ROOT = Path("etc/asterisk/keys")  # where Asterisk (in its chroot) reads its certificate and key


def ca_file(settings: LabSettings) -> Path:
    return settings.tls_dir / "ca.crt"


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        raise SystemExit(
            "pbx-lab: openssl is needed for the lab's TLS certificates (apt-get install openssl)"
        )
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"pbx-lab: openssl {args[0]} failed: {result.stderr.strip()}")


def make_ca(directory: Path, subject: str = CA_SUBJECT) -> Path:
    """A CA key and self-signed certificate in ``directory``; returns the certificate's path."""
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / "ca.key", directory / "ca.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", DAYS, "-subj", subject, "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    return cert


def _make_server(directory: Path) -> None:
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", SERVER_SUBJECT)  # fmt: skip
    extensions = directory / "server.ext"
    extensions.write_text(f"subjectAltName = IP:{HOST}, DNS:localhost\nextendedKeyUsage = serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(directory / "ca.crt"),
             "-CAkey", str(directory / "ca.key"), "-CAcreateserial", "-out", str(cert), "-days", DAYS,
             "-extfile", str(extensions))  # fmt: skip


def ensure(settings: LabSettings) -> None:
    """The CA and server certificate (made once), copied into the chroot readable by Asterisk only."""
    directory = settings.tls_dir
    if not (directory / "server.crt").exists():
        make_ca(directory)
        _make_server(directory)
    target = settings.root_dir / IN_ROOT
    target.mkdir(parents=True, exist_ok=True)
    owner = (settings.root_dir / "var" / "lib" / "asterisk").stat()
    for name in ("server.crt", "server.key"):
        shutil.copyfile(directory / name, target / name)
        os.chown(target / name, owner.st_uid, owner.st_gid)
        (target / name).chmod(0o600)


def values(settings: LabSettings) -> dict[str, str]:
    """The template values: the certificate's and key's paths as Asterisk sees them (in its root)."""
    return {
        "https_port": str(settings.https_port),
        "ami_tls_port": str(settings.ami_tls_port),
        "tls_cert": f"/{IN_ROOT / 'server.crt'}",
        "tls_key": f"/{IN_ROOT / 'server.key'}",
    }
