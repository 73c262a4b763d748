"""TLS to ARI and AMI in the config (``[ari] ca_file``, ``[ami] tls``/``ca_file``), and doctor's
verdict on each transport: a secret sent in clear to another host is a warning."""

from pathlib import Path

import pytest
from lab.tls import make_ca

from asterisk_cb import config, deployment
from asterisk_cb.doctor import Verdict, _api_transport, _transports

BASE = """
[ari]
url = {ari_url}
user = acb
password = pw
{ari_extra}
[ami]
host = {ami_host}
user = acb
secret = pw
{ami_extra}
[dialing]
outbound_context = from-internal
"""


def load(tmp_path: Path, **values: str) -> deployment.Deployment:
    fields = {
        "ari_url": "http://127.0.0.1:8088/ari",
        "ami_host": "127.0.0.1",
        "ari_extra": "",
        "ami_extra": "",
    }
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(BASE.format(**(fields | values)))
    return deployment.from_settings_file(config.load(path, other_sections=deployment.SECTIONS))


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_ca(tmp_path_factory.mktemp("ca")))


def test_tls_is_off_by_default_and_on_moves_the_ami_port_to_5039(tmp_path: Path, ca_file: str) -> None:
    plain = load(tmp_path)
    assert (plain.ami.tls, plain.ami.port, plain.ami.ca_file, plain.ari.ca_file) == (False, 5038, None, None)
    site = load(
        tmp_path,
        ari_url="https://pbx.example:8089/ari",
        ari_extra=f"ca_file = {ca_file}",
        ami_extra=f"tls = yes\nca_file = {ca_file}",
    )
    assert (site.ami.tls, site.ami.port, site.ami.ca_file, site.ari.ca_file) == (True, 5039, ca_file, ca_file)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"ami_extra": "tls = maybe"}, r"conf:11 \[ami\]: tls: 'maybe' is not yes or no"),
        (
            {"ami_extra": "ca_file = /nonexistent/ca.pem"},
            r"conf:11 \[ami\]: ca_file: cannot load '/nonexistent/ca",
        ),
        ({"ari_extra": "ca_file = {conf}"}, r"conf:6 \[ari\]: ca_file: cannot load .* as PEM certificates"),
    ],
)
def test_a_bad_tls_setting_is_refused_with_its_line(
    tmp_path: Path, values: dict[str, str], words: str
) -> None:
    conf = tmp_path / "asterisk-cb.conf"
    with pytest.raises(config.ConfigError, match=words):
        load(tmp_path, **{key: value.format(conf=conf) for key, value in values.items()})


@pytest.mark.parametrize(
    ("values", "verdicts"),
    [
        ({}, (Verdict.OK, Verdict.OK)),  # in clear, but on this host
        ({"ari_url": "http://localhost:8088/ari", "ami_host": "::1"}, (Verdict.OK, Verdict.OK)),
        ({"ari_url": "http://10.0.0.5:8088/ari", "ami_host": "pbx.example"}, (Verdict.WARN, Verdict.WARN)),
        ({"ari_url": "https://10.0.0.5:8089/ari", "ami_host": "10.0.0.5", "ami_extra": "tls = yes"},
         (Verdict.OK, Verdict.OK)),
    ],
)  # fmt: skip
def test_doctor_warns_when_a_secret_goes_in_clear_to_another_host(
    tmp_path: Path, values: dict[str, str], verdicts: tuple[Verdict, Verdict]
) -> None:
    checks = _transports(load(tmp_path, **values))
    assert [check.name for check in checks] == ["ari transport", "ami transport"]
    assert tuple(check.verdict for check in checks) == verdicts
    for check in checks:
        assert ("tls = yes" in check.detail or "https://" in check.detail) == (check.verdict is Verdict.WARN)


@pytest.mark.parametrize(
    ("api", "verdicts"),
    [
        ("", []),
        ("[api]\nlisten = 127.0.0.1:8090\n", [Verdict.OK]),
        ("[api]\nlisten = [::1]:8090\n", [Verdict.OK]),
        ("[api]\nlisten = 0.0.0.0:8090\n", [Verdict.WARN]),
    ],
)
def test_doctor_warns_when_api_tokens_go_in_clear_beyond_this_host(
    tmp_path: Path, api: str, verdicts: list[Verdict]
) -> None:
    site = load(tmp_path, ami_extra=api.replace("[api]", "\n[api]") if api else "")
    checks = _api_transport(site)
    assert [check.verdict for check in checks] == verdicts
    assert all(check.name == "api transport" for check in checks)
    assert all(("TLS proxy" in check.detail) for check in checks)
