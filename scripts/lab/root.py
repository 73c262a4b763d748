"""The lab's Asterisk 22: a Debian sid root (debootstrap) cached as a zstd tarball, unpacked per lab.

Debian 12 has no asterisk package; sid has Asterisk 22 with every module. Nothing from sid touches
the host: it all lives in the chroot. The cache keeps a known-good root, because sid moves daily.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from lab.settings import LabSettings

MIRROR = os.environ.get("ACB_LAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# unixodbc and odbc-mariadb (MariaDB Connector/ODBC): res_odbc, cdr_adaptive_odbc and cel_odbc write
# the lab's CDR and CEL to its MariaDB database too (lab/mariadb.py).
PACKAGES = (
    "asterisk",
    "asterisk-modules",
    "asterisk-config",
    "asterisk-moh-opsound-gsm",
    "unixodbc",
    "odbc-mariadb",
)
WANTED_MAJOR = "22"
# Marks a fully unpacked root; holds the tarball's mtime so a rebuilt cache replaces the root.
STAMP = ".acb-lab-root"
# Prefix for commands that mount inside the root: the mounts live and die with a private namespace.
PRIVATE_MOUNTS = ("unshare", "--mount", "--propagation", "private", "--fork", "--kill-child", "--")


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"pbx-lab: {what} failed (exit {result.returncode}):\n{tail}")


def _in_chroot(root: Path, script: str, what: str) -> None:
    """Run a shell script inside root, in a private mount namespace so nothing can leak to the host."""
    _run([*PRIVATE_MOUNTS, "chroot", str(root), "sh", "-ec", script], what)


def _free_id(taken: set[int], start: int = 64000) -> int:
    """A uid/gid unused on the host: the package would otherwise take 101, often the host's postgres."""
    candidate = start
    while candidate in taken:
        candidate += 1
    return candidate


def _asterisk_ids() -> tuple[int, int]:
    uid = _free_id({entry.pw_uid for entry in pwd.getpwall()})
    gid = _free_id({entry.gr_gid for entry in grp.getgrall()})
    return uid, gid


def _prepare(build: Path) -> None:
    """Before apt runs: the asterisk user, no service starts, and tolerance for an aging mirror."""
    uid, gid = _asterisk_ids()
    policy = build / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\n# pbx-lab: never start services while installing packages\nexit 101\n")
    policy.chmod(0o755)
    # A mirror snapshot can serve a Release file whose Valid-Until lies in the past.
    (build / "etc" / "apt" / "apt.conf.d" / "99acb-lab").write_text('Acquire::Check-Valid-Until "false";\n')
    _in_chroot(
        build,
        f"groupadd --gid {gid} asterisk && useradd --uid {uid} --gid {gid} --no-create-home "
        "--home-dir /var/lib/asterisk --shell /usr/sbin/nologin asterisk",
        "creating the asterisk user in the chroot",
    )


def installed_version(root: Path) -> str:
    """Upstream version of the asterisk package in root, e.g. '22.10.1'."""
    status = (root / "var" / "lib" / "dpkg" / "status").read_text(errors="replace")
    match = re.search(r"^Package: asterisk\n(?:[^\n]+\n)*?Version: (?:\d+:)?([0-9.]+)", status, re.MULTILINE)
    if match is None:
        raise SystemExit(f"pbx-lab: no asterisk package is installed in {root}")
    return match.group(1)


def check_version(root: Path) -> str:
    """Fail clearly if sid moved to another Asterisk major: the lab and its tests target 22.x."""
    version = installed_version(root)
    if version.split(".")[0] != WANTED_MAJOR:
        raise SystemExit(
            f"pbx-lab: Debian sid now ships Asterisk {version}, the lab needs {WANTED_MAJOR}.x. Use a "
            "cached root (ACB_LAB_CACHE) built earlier, or a Debian snapshot mirror "
            "(ACB_LAB_DEBIAN_MIRROR)."
        )
    return version


def _build_tarball(settings: LabSettings) -> None:
    """Cold build: debootstrap sid, install Asterisk, check 22.x, pack as zstd into the cache."""
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    build = settings.cache_dir / f"build-{os.getpid()}"
    shutil.rmtree(build, ignore_errors=True)
    try:
        started = time.monotonic()
        print(f"pbx-lab: building the Asterisk root (debootstrap sid from {MIRROR}); once per machine")
        _run(
            [*PRIVATE_MOUNTS, "debootstrap", "--variant=minbase", "sid", str(build), MIRROR],
            "debootstrap of Debian sid",
        )
        _prepare(build)
        _in_chroot(
            build,
            "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq "
            f"--no-install-recommends {' '.join(PACKAGES)} >/dev/null && apt-get clean "
            "&& rm -rf /var/lib/apt/lists/*",
            "installing Asterisk in the chroot",
        )
        version = check_version(build)
        partial = tarball(settings).with_name(f"{tarball(settings).name}.{os.getpid()}.partial")
        _run(
            ["sh", "-c", f'tar -C "{build}" --numeric-owner -cf - . | zstd -q -T0 -3 -f -o "{partial}"'],
            "packing the Asterisk root",
        )
        partial.replace(tarball(settings))
        print(f"pbx-lab: Asterisk {version} root cached in {time.monotonic() - started:.0f} s")
    finally:
        shutil.rmtree(build, ignore_errors=True)


def cache_key(packages: Sequence[str]) -> str:
    """A digest of the package list, in the cached tarball's name: a root built before a package was
    added or dropped is never reused (it stays in the cache for labs of older checkouts)."""
    return hashlib.sha256(" ".join(packages).encode()).hexdigest()[:8]


def tarball(settings: LabSettings) -> Path:
    """The cached root for this checkout's package list."""
    return settings.cache_dir / f"asterisk{WANTED_MAJOR}-sid-root-{cache_key(PACKAGES)}.tar.zst"


def _stamp_value(settings: LabSettings) -> str:
    """The tarball's path and mtime: a root unpacked from another package list or build is replaced."""
    cached = tarball(settings)
    return f"{cached} {cached.stat().st_mtime_ns}"


def ensure_root(settings: LabSettings) -> Path:
    """The unpacked chroot, built and cached first if needed; reused while it matches the cache."""
    root = settings.root_dir
    if not tarball(settings).exists():
        _build_tarball(settings)
    stamp = root / STAMP
    if stamp.exists() and stamp.read_text() == _stamp_value(settings):
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    _run(
        ["sh", "-c", f'zstd -q -dc "{tarball(settings)}" | tar -C "{root}" --numeric-owner -xf -'],
        "unpacking the cached Asterisk root",
    )
    check_version(root)
    stamp.write_text(_stamp_value(settings))
    return root
