#!/usr/bin/env python3
"""Render the lab's Asterisk config (scripts/lab/asterisk) for the compose network, into DEST.

One set of templates serves both labs: here PostgreSQL is the `postgres` service and Asterisk listens
on every interface of its container (compose publishes the ports on the host's loopback only).
Usage: render-asterisk-config.py DEST   (run from the repository root)
"""

import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPOSE_VALUES = {
    "ACB_LAB_PG_HOST": "postgres",
    "ACB_LAB_PG_PORT": "5432",
}
# Lines of the loopback lab that must open up inside a container: listen on every interface, let the
# compose network's AMI client in, and drop the loopback-only media address. TLS stays off: its
# certificates are made by `pbx-lab up`, which the compose lab does not run.
_REWRITES = (
    (re.compile(r"^tlsenable\s*=\s*yes", re.MULTILINE), "tlsenable = no"),
    (re.compile(r"^(bindaddr|bind)\s*=\s*127\.0\.0\.1", re.MULTILINE), r"\1 = 0.0.0.0"),
    (re.compile(r"^permit\s*=\s*127\.0\.0\.1/255\.255\.255\.255", re.MULTILINE), "permit = 0.0.0.0/0.0.0.0"),
    (re.compile(r"^(media_address|bind_rtp_to_media_address)\s*=.*\n", re.MULTILINE), ""),
)

# The loopback lab also writes CDR and CEL to a MariaDB database over ODBC; the compose lab has no
# MariaDB service (nor unixODBC in its image): PostgreSQL alone, as before.
_NO_MARIADB = ("res_odbc.conf", "cdr_adaptive_odbc.conf", "cel_odbc.conf")


def main(dest: Path) -> None:
    os.environ.update(COMPOSE_VALUES)
    os.environ["ACB_LAB_DIR"] = str(dest)
    sys.path.insert(0, str(REPO / "scripts"))
    # Imported here: the lab reads its settings from the environment set just above.
    from lab.asterisk import write_config  # noqa: PLC0415
    from lab.settings import load  # noqa: PLC0415

    settings = load()
    config_dir = settings.root_dir / "etc" / "asterisk"
    config_dir.mkdir(parents=True, exist_ok=True)
    write_config(settings)
    for name in _NO_MARIADB:
        (config_dir / name).unlink()
    for path in config_dir.glob("*.conf"):
        text = path.read_text()
        for pattern, replacement in _REWRITES:
            text = pattern.sub(replacement, text)
        path.write_text(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
