"""Keeping the config's secrets secret: URLs shown without their passwords, exposed config files refused.

The config file holds the ARI password and the AMI secret (and maybe Redis's). AMI with ``write =
system`` and ARI can both place calls, so a file any local user can read hands out the PBX: the daemon
refuses to start on a file (or a file it ``#include``s) that gives others (the o of ugo) any access, or
that still holds the sample's ``change-me``. Group access is fine: the file is meant to be
``root:asterisk-cb`` 0640, readable by the service's group and nobody else.

Every URL that reaches a terminal or a log goes through ``redact`` first: redis-py takes a password in
the userinfo (``redis://user:pw@host``) or in the query (``?password=pw``), for ``unix://`` too.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from asterisk_cb import config

MASK = "(set)"
SAMPLE_SECRET = "change-me"  # what config/asterisk-cb.conf ships in place of each secret
SERVICE_GROUP = "asterisk-cb"  # the Group= of config/systemd/asterisk-cb.service
PRIVATE_MODE = 0o600  # what the project's own config writers use: only their user reads it
# Query parameters whose value is a secret: password, ssl_password, secret, token, api_key, auth...
_SECRET_PARAMETER = re.compile(r"pass|secret|token|api_?key|auth", re.IGNORECASE)
_PARAMETER = re.compile(r"[?&]([^=&?]*)=([^&]*)")


def redact(url: str) -> str:
    """``url`` with the password of its userinfo and every secret query value replaced by ``(set)``.

    Never raises, also for a URL no parser accepts: it hides the spans either reading of the URL
    takes for a secret. The userinfo's password runs to the LAST ``@`` (a password with an unencoded
    ``/``, ``?`` or ``#`` still ends there), so an ``@`` in a query value hides a little too much
    (the host) rather than a password too little."""
    spans = [span for span in (*_userinfo_password(url), *_secret_values(url)) if span[0] < span[1]]
    merged: list[list[int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    pieces: list[str] = []
    end = 0
    for start, stop in merged:
        pieces += [url[end:start], MASK]
        end = stop
    return "".join(pieces) + url[end:]


def _userinfo_password(url: str) -> list[tuple[int, int]]:
    """Where ``password`` is in ``scheme://user:password@host``."""
    authority = url.find("://") + 3 if "://" in url else 0
    at = url.rfind("@")
    colon = url.find(":", authority, max(at, 0))
    return [(colon + 1, at)] if colon >= 0 else []


def _secret_values(url: str) -> list[tuple[int, int]]:
    """Where each secret query value is (``?password=...``, ``&secret=...``)."""
    return [match.span(2) for match in _PARAMETER.finditer(url) if _SECRET_PARAMETER.search(match[1])]


def exposures(path: Path) -> list[str]:
    """Why ``run`` refuses the config at ``path``, one line per problem, each naming the file and the
    fix: a file others can access, a value still holding ``change-me``. Empty: it is fine."""
    problems = []
    for document in config.documents(path):
        problems += _mode_problem(Path(document.file))
        problems += [
            f"{entry.file}:{entry.line} [{section.name}] {entry.key}: still the sample's {SAMPLE_SECRET}: "
            "set the real secret (the one in ari.conf / manager.conf / Redis)"
            for section in document.sections
            for entry in section.entries
            if SAMPLE_SECRET in entry.value.lower()
        ]
    return problems


def _mode_problem(file: Path) -> list[str]:
    mode = stat.S_IMODE(file.stat().st_mode)
    if not mode & stat.S_IRWXO:
        return []
    return [
        f"{file}: mode {mode:04o} gives other users access to its secrets: "
        f"chmod 0640 {file} && chgrp {SERVICE_GROUP} {file}"
    ]


def refuse_exposed(path: Path) -> None:
    """Raise the first of ``exposures`` as a ``ConfigError`` (one line; ``doctor`` lists them all)."""
    problems = exposures(path)
    if problems:
        more = f" (and {len(problems) - 1} more: see asterisk-cb doctor)" if len(problems) > 1 else ""
        raise config.ConfigError(f"{problems[0]}{more}")


def describe(path: Path) -> str:
    """``/etc/asterisk-cb/asterisk-cb.conf 0640 root:asterisk-cb``, for ``doctor``'s passing line."""
    info = path.stat()
    try:
        owner = f"{path.owner()}:{path.group()}"
    except KeyError:  # an id with no name on this host
        owner = f"{info.st_uid}:{info.st_gid}"
    return f"{path} {stat.S_IMODE(info.st_mode):04o} {owner}"


def write_private(path: Path, text: str) -> None:
    """Write a config file only its owner can read (0600), also when it existed with a wider mode:
    what the project's own writers (demo, tests, benchmarks) use, so ``run`` accepts their files."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), PRIVATE_MODE)
        file.write(text)
