"""Roles: the file's sections checked with file and line, run-time values over them per entry, and an
agent's permissions resolved through its role (own entry, then default, then built in)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import config_texts
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asterisk_cb import config, deployment, roles
from asterisk_cb.core import rules
from asterisk_cb.core.settings import OriginKind
from asterisk_cb.service_access import Permission

REPO = Path(__file__).resolve().parents[2]
REQUIRED = (
    config_texts.REQUIRED
    + """[agents]
1001 = PJSIP/1001
1002 = PJSIP/1002
1003 = PJSIP/1003
"""
)
AGENTS = ("1001", "1002", "1003")


def load(tmp_path: Path, text: str) -> deployment.Deployment:
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(REQUIRED + text)
    return deployment.from_settings_file(config.load(path, other_sections=deployment.SECTIONS))


def permissions(agent: str, file: roles.RoleLayer, runtime: roles.RoleLayer = roles.NO_ROLES) -> set[str]:
    return {permission.value for permission in roles.permissions_of(agent, file, runtime)}


def test_without_sections_every_agent_is_an_agent(tmp_path: Path) -> None:
    site = load(tmp_path, "")
    assert permissions("1001", site.roles) == {"schedule_callback"}
    assert roles.permissions_of("1001", site.roles, roles.NO_ROLES) == frozenset({Permission.SCHEDULE})
    assert roles.defined_roles(site.roles, roles.NO_ROLES)["admin"].value == frozenset(Permission)


def test_the_file_defines_roles_and_gives_them_to_agents(tmp_path: Path) -> None:
    site = load(
        tmp_path,
        "[roles]\nteamlead = schedule_callback ,view_all_callbacks\ntrainee =\n"
        "[agent_roles]\ndefault = trainee\n1003 = teamlead\n1002 = supervisor\n",
    )
    assert permissions("1001", site.roles) == set()  # the default: trainee may do nothing
    assert permissions("1002", site.roles) == {"schedule_callback", "manage_callbacks", "view_all_callbacks"}
    assert permissions("1003", site.roles) == {"schedule_callback", "view_all_callbacks"}
    role, by_default = roles.role_of("1003", site.roles, roles.NO_ROLES)
    assert (role.value, by_default, role.origin.line) == ("teamlead", False, 19)


def test_the_file_may_redefine_a_built_in_role(tmp_path: Path) -> None:
    site = load(tmp_path, "[roles]\nagent = schedule_callback, view_all_callbacks\n")
    assert permissions("1001", site.roles) == {"schedule_callback", "view_all_callbacks"}


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("[roles]\nteamlead = schedule_callback, fly\n", 15, "teamlead: 'fly' is not a permission (known: "),
        ("[roles]\nteamlead = schedule_callback,\n", 15, "teamlead: '' is not a permission"),
        ("[roles]\nteam lead = schedule_callback\n", 15, "team lead: 'team lead' is not a valid name"),
        ("[agent_roles]\n1001 = boss\n", 15, "1001: unknown role 'boss' (known: admin, agent, supervisor)"),
        ("[agent_roles]\ndefault = boss\n", 15, "default: unknown role 'boss'"),
        ("[agent_roles]\n9999 = agent\n", 15, "9999: unknown agent '9999' (not in [agents])"),
        ("[agent_roles]\n1001 = agent\n1001 = admin\n", 16, "1001: already set at"),
        ("[roles]\nagent = x\n[roles]\nagent = y\n", 17, "agent: already set at"),
    ],
)
def test_a_bad_entry_is_a_config_error_with_file_line_and_option(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    with pytest.raises(config.ConfigError) as raised:
        load(tmp_path, text)
    path = tmp_path / "asterisk-cb.conf"
    assert re.match(rf"{re.escape(str(path))}:{line} \[(agent_)?roles\]: ", str(raised.value)), raised.value
    assert reason in str(raised.value)


def test_run_time_values_win_per_entry_over_the_file(tmp_path: Path) -> None:
    site = load(tmp_path, "[roles]\nteamlead = schedule_callback\n[agent_roles]\n1003 = teamlead\n")
    runtime = roles.runtime_roles(
        {"teamlead": "schedule_callback, manage_callbacks", "night": "view_all_callbacks"},
        {"default": "night", "1002": "supervisor"},
        site.roles,
        AGENTS,
    )
    assert runtime.refused == ()
    assert permissions("1003", site.roles, runtime.layer) == {"schedule_callback", "manage_callbacks"}
    assert permissions("1002", site.roles, runtime.layer) == {
        "schedule_callback",
        "manage_callbacks",
        "view_all_callbacks",
    }
    assert permissions("1001", site.roles, runtime.layer) == {"view_all_callbacks"}  # the run-time default
    role, by_default = roles.role_of("1001", site.roles, runtime.layer)
    assert (role.value, by_default, role.origin.kind) == ("night", True, OriginKind.RUNTIME)


@pytest.mark.parametrize(
    ("role_values", "agent_values", "refusal"),
    [
        (
            {"teamlead": "schedule_callback, teleport"},
            {},
            "[roles]: teamlead: 'teleport' is not a permission",
        ),
        ({"a b": ""}, {}, "[roles]: a b: 'a b' is not a valid name"),
        ({}, {"1001": "gone"}, "[agent_roles]: 1001: unknown role 'gone'"),
        ({}, {"1009": "agent"}, "[agent_roles]: 1009: unknown agent '1009' (not in [agents])"),
        ({"x": "teleport"}, {"1001": "x"}, "[agent_roles]: 1001: unknown role 'x'"),
    ],
)
def test_a_run_time_value_that_does_not_hold_is_left_out_and_reported(
    role_values: dict[str, str], agent_values: dict[str, str], refusal: str
) -> None:
    """Written by a newer version or by hand, or outlived by its role: the look-up still answers."""
    runtime = roles.runtime_roles(role_values, agent_values, roles.NO_ROLES, AGENTS)
    assert refusal in " ".join(map(str, runtime.refused))
    assert permissions("1001", roles.NO_ROLES, runtime.layer) == {"schedule_callback"}
    (ignored,) = [line for line in roles.explain(roles.NO_ROLES, runtime, AGENTS) if line.ignored][-1:]
    assert ignored.origin.kind is OriginKind.RUNTIME


def test_explain_lists_roles_then_default_and_agents_with_origins(tmp_path: Path) -> None:
    site = load(tmp_path, "[roles]\nteamlead = view_all_callbacks\n[agent_roles]\n1003 = teamlead\n")
    runtime = roles.runtime_roles({"zeta": ""}, {"1002": "zeta", "1009": "agent"}, site.roles, AGENTS)
    lines = [
        (line.section, line.name, line.text, str(line.origin), line.ignored)
        for line in roles.explain(site.roles, runtime, AGENTS)
    ]
    path = str(tmp_path / "asterisk-cb.conf")
    assert lines == [
        ("roles", "agent", "schedule_callback", "default", ""),
        ("roles", "supervisor", "schedule_callback, manage_callbacks, view_all_callbacks", "default", ""),
        ("roles", "admin", roles.format_permissions(Permission), "default", ""),
        ("roles", "teamlead", "view_all_callbacks", f"{path}:15 [roles]", ""),
        ("roles", "zeta", "", "runtime override [roles]", ""),
        ("agent_roles", "default", "agent", "default", ""),
        ("agent_roles", "1001", "agent (default)", "default", ""),
        ("agent_roles", "1002", "zeta", "runtime override [agent_roles]", ""),
        ("agent_roles", "1003", "teamlead", f"{path}:17 [agent_roles]", ""),
        (
            "agent_roles",
            "1009",
            "",
            "runtime override [agent_roles]",
            "unknown agent '1009' (not in [agents])",
        ),
    ]


_NAMES = st.sampled_from(["agent", "supervisor", "admin", "teamlead", "trainee"])
_LAYER_ROLES = st.dictionaries(
    _NAMES, st.sets(st.sampled_from(list(Permission))).map(roles.format_permissions)
)
_LAYER_AGENTS = st.dictionaries(st.sampled_from([roles.DEFAULT, *AGENTS, "1009"]), _NAMES | st.just("gone"))


@given(_LAYER_ROLES, _LAYER_AGENTS, _LAYER_ROLES, _LAYER_AGENTS)
def test_any_run_time_values_resolve_every_agent_to_a_defined_role(
    file_roles: dict[str, str],
    file_agents: dict[str, str],
    run_roles: dict[str, str],
    run_agents: dict[str, str],
) -> None:
    """Whatever sits in Redis (and whatever a valid file says), every agent's look-up answers with the
    permissions of the role it is shown with, and the entries left out are exactly those reported."""
    file = roles.runtime_roles(file_roles, file_agents, roles.NO_ROLES, AGENTS).layer  # a valid file
    runtime = roles.runtime_roles(run_roles, run_agents, file, AGENTS)
    defined = roles.defined_roles(file, runtime.layer)
    for agent in AGENTS:
        role, _ = roles.role_of(agent, file, runtime.layer)
        assert roles.permissions_of(agent, file, runtime.layer) == defined[role.value].value
    kept = len(runtime.layer.roles) + len(runtime.layer.agents)
    assert kept + len(runtime.refused) == len(run_roles) + len(run_agents)


@given(st.sets(st.sampled_from(list(Permission))))
def test_permissions_round_trip_through_their_text(held: set[Permission]) -> None:
    assert roles.parse_permissions(roles.format_permissions(held)) == held


def test_the_sample_config_documents_the_roles_sections() -> None:
    text = (REPO / "config" / "asterisk-cb.conf").read_text()
    assert "[roles]" in text
    assert "[agent_roles]" in text
    assert "[users]\n" in text
    assert ";anna = supervisor\n" in text
    for permission in Permission:
        assert permission.value in text


def test_the_roles_module_does_no_io() -> None:
    forbidden = ("asyncio", "socket", "redis", "asterisk_cb.store")
    probe = f"import sys\nimport asterisk_cb.roles\nprint([m for m in {forbidden!r} if m in sys.modules])\n"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_users_hold_a_role_and_are_listed_after_the_agents(tmp_path: Path) -> None:
    site = load(
        tmp_path, "[roles]\nteamlead = view_all_callbacks\n[users]\nanna = supervisor\nbob = teamlead\n"
    )
    assert {permission.value for permission in roles.user_permissions("bob", site.roles, roles.NO_ROLES)} == {
        "view_all_callbacks"
    }
    runtime = roles.runtime_roles({"teamlead": "administer"}, {}, site.roles, AGENTS)
    assert roles.user_permissions("bob", site.roles, runtime.layer) == frozenset({Permission.ADMINISTER})
    path = str(tmp_path / "asterisk-cb.conf")
    users = [
        (line.name, line.text, str(line.origin))
        for line in roles.explain(site.roles, runtime, AGENTS)
        if line.section == roles.USERS
    ]
    assert users == [("anna", "supervisor", f"{path}:17 [users]"), ("bob", "teamlead", f"{path}:18 [users]")]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (
            "[users]\n1001 = supervisor\n",
            15,
            "1001: '1001' is an agent id of [agents]: give the user another name",
        ),
        ("[users]\nanna = boss\n", 15, "anna: unknown role 'boss' (known: admin, agent, supervisor)"),
        ("[users]\nan na = admin\n", 15, "an na: 'an na' is not a valid name"),
        ("[users]\nanna = admin\nanna = agent\n", 16, "anna: already set at"),
    ],
)
def test_a_bad_user_line_is_a_config_error_with_file_line_and_option(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    with pytest.raises(config.ConfigError) as raised:
        load(tmp_path, text)
    path = tmp_path / "asterisk-cb.conf"
    assert str(raised.value).startswith(f"{path}:{line} [users]: "), raised.value
    assert reason in str(raised.value)


def test_a_user_may_hold_a_role_the_file_defines_below_it(tmp_path: Path) -> None:
    """[users] may come before [roles] in the file: the roles are parsed first."""
    site = load(tmp_path, "[users]\nanna = night\n[roles]\nnight = view_all_callbacks\n")
    assert roles.user_permissions("anna", site.roles, roles.NO_ROLES) == frozenset({Permission.VIEW_ALL})


def test_check_user_refuses_names_not_in_users(tmp_path: Path) -> None:
    site = load(tmp_path, "[users]\nanna = admin\n")
    assert roles.check_user("anna", site.roles) == "anna"
    for name, reason in (("bob", "unknown user 'bob' (not in [users])"), ("a b", "is not a valid name")):
        with pytest.raises(rules.ValidationError) as raised:
            roles.check_user(name, site.roles)
        assert raised.value.field == "user"
        assert reason in raised.value.reason
