"""The Docker path is not run by CI (no Docker engine there), so at least keep its compose file honest:
it parses, names the lab's services, publishes only on loopback, and points at files that exist."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from asterisk_cb import config, deployment, secrecy
from asterisk_cb.cli import build_parser

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER_DIR / "compose.yaml").read_text())


def test_compose_names_the_lab_services(compose: dict) -> None:
    assert set(compose["services"]) == {"asterisk", "redis", "postgres", "asterisk-cb"}


@pytest.mark.parametrize(
    ("service", "port"),
    [
        ("asterisk", "127.0.0.1:5060:5060/udp"),
        ("asterisk", "127.0.0.1:8088:8088"),
        ("asterisk", "127.0.0.1:5038:5038"),
        ("redis", "127.0.0.1:6380:6379"),
        ("postgres", "127.0.0.1:5433:5432"),
        ("asterisk-cb", "127.0.0.1:8090:8090"),
    ],
)
def test_compose_publishes_each_port_on_loopback(compose: dict, service: str, port: str) -> None:
    assert port in compose["services"][service]["ports"]


def test_compose_publishes_nothing_beyond_loopback(compose: dict) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_redis_keeps_acknowledged_writes(compose: dict) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_built_images_point_at_existing_dockerfiles(compose: dict) -> None:
    built = [s for s in compose["services"].values() if "build" in s]
    assert len(built) == 2
    for service in built:
        dockerfile = DOCKER_DIR.parent / service["build"]["dockerfile"]
        assert dockerfile.is_file(), dockerfile


def test_mounted_host_paths_exist(compose: dict) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DOCKER_DIR / source).exists(), f"{source} is mounted but missing"


def test_the_daemon_config_loads_and_points_at_the_compose_services() -> None:
    site = deployment.from_settings_file(
        config.load(DOCKER_DIR / "asterisk-cb.conf", other_sections=deployment.SECTIONS)
    )
    assert site.redis.url == "redis://redis:6379/0"
    assert site.ari.url == "http://asterisk:8088/ari"
    assert site.ami.host == "asterisk"
    assert site.has_agent("1001")


def _dockerfile_lines() -> list[str]:
    return (DOCKER_DIR / "Dockerfile.daemon").read_text().splitlines()


def test_the_daemon_image_runs_its_baked_config() -> None:
    """ENTRYPOINT + CMD is a command line the CLI takes (top-level --config before the command)."""
    lines = _dockerfile_lines()
    entrypoint = json.loads(next(line for line in lines if line.startswith("ENTRYPOINT "))[11:])
    command = json.loads(next(line for line in lines if line.startswith("CMD "))[4:])
    assert entrypoint == ["asterisk-cb"]
    args = build_parser().parse_args(command)
    assert args.command == "run"
    assert "COPY docker/asterisk-cb.conf /etc/asterisk-cb/asterisk-cb.conf" in lines
    assert str(args.config) == "/etc/asterisk-cb/asterisk-cb.conf"


def test_the_image_config_is_one_the_daemon_accepts(compose: dict, tmp_path: Path) -> None:
    """Installed as the Dockerfile does (0640, group asterisk-cb, the user the daemon runs as), with
    no change-me; not bind-mounted, which would keep the checkout's 0644."""
    lines = _dockerfile_lines()
    assert "USER asterisk-cb" in lines
    assert any(
        line.startswith("RUN chown root:asterisk-cb /etc/asterisk-cb/asterisk-cb.conf")
        and line.endswith("chmod 0640 /etc/asterisk-cb/asterisk-cb.conf")
        for line in lines
    )
    mounts = compose["services"]["asterisk-cb"].get("volumes", [])
    assert not any("asterisk-cb.conf" in volume for volume in mounts)
    baked = tmp_path / "asterisk-cb.conf"
    shutil.copyfile(DOCKER_DIR / "asterisk-cb.conf", baked)
    baked.chmod(0o640)
    assert secrecy.exposures(baked) == []
