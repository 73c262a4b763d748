"""The AMI rights the README documents are the ones the lab's daemon user has, so the lab tests
(tests/integration/test_security_lab.py, the e2e suite) prove that the documented rights suffice."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RIGHTS = ("read =", "write =", "eventfilter")


def _rights(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip().startswith(RIGHTS)]


def _readme_ami_user() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("**AMI user** (`manager.conf`):", 1)[1].split("\n\n")[1]
    return _rights(block.splitlines())


def _lab_daemon_user() -> list[str]:
    """The section of the lab's manager.conf template for the daemon's user ({{ami_user}})."""
    text = (ROOT / "scripts" / "lab" / "asterisk" / "manager.conf").read_text()
    section = text.split("[{{ami_user}}]", 1)[1].split("\n[", 1)[0]
    return _rights(section.splitlines())


def test_the_readme_documents_exactly_the_lab_daemon_users_rights() -> None:
    documented = _readme_ami_user()
    assert "read = system,call,agent" in documented
    assert "write = agent,reporting" in documented
    assert documented == _lab_daemon_user()


def test_the_sample_config_names_the_same_write_classes() -> None:
    sample = (ROOT / "config" / "asterisk-cb.conf").read_text()
    assert ";   write = agent,reporting\n" in sample
    assert ";   read = system,call,agent\n" in sample
