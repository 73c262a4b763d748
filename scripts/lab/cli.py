"""`scripts/pbx-lab` commands: up, down, status, env, cli, phone, call, dial (see scripts/lab/README.md)."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import sys
from collections.abc import Iterator, Sequence

from lab import info, services
from lab.settings import load

KEYS_HELP = 'a key script, steps "<pause s>:<keys>", e.g. "2:*7 1.5:1430#"'


def _cmd_up(args: argparse.Namespace) -> int:
    settings = load()
    for service in services.with_dependencies(args.services or services.NAMES):
        services.get(service).up(settings)
        print(f"pbx-lab: {service} up")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    settings = load()
    for service in reversed(services.with_dependents(args.services or services.NAMES)):
        print(f"pbx-lab: {service} {services.get(service).down(settings)}")
    return 0


def _cmd_status(_: argparse.Namespace) -> int:
    settings = load()
    all_up = True
    for service in services.NAMES:
        state = services.get(service).status(settings)
        all_up = all_up and state.startswith("up")
        print(f"{service:9} {state}")
    return 0 if all_up else 3


def _cmd_env(args: argparse.Namespace) -> int:
    lab_info = info.describe(load())
    if args.json:
        print(json.dumps(lab_info, indent=2))
    else:
        for key, value in info.flatten(lab_info):
            print(f"{key}={value if isinstance(value, str | int) else json.dumps(value)}")
    return 0


def _cmd_cli(args: argparse.Namespace) -> int:
    from lab import asterisk  # noqa: PLC0415 - only this command needs the chroot helpers

    return asterisk.cli(load(), " ".join(args.command))


def _cmd_phone(args: argparse.Namespace) -> int:
    from lab import phones  # noqa: PLC0415 - only this command needs the SIPp helpers

    settings = load()
    phones.set_behaviour(
        settings, args.agent, args.behaviour, args.ring_s, keys=args.keys, hangup_after_s=args.hangup_after
    )
    print(f"pbx-lab: agent {args.agent} now {phones.behaviour(settings, args.agent).describe()}")
    return 0


def _cmd_call(args: argparse.Namespace) -> int:
    from lab import phones  # noqa: PLC0415 - only this command needs the SIPp helpers

    name = phones.call(load(), args.exten, args.caller, args.hold_s, keys=args.keys)
    print(f"pbx-lab: calling {args.exten}@lab-inbound from {args.caller} ({name})")
    return 0


def _cmd_dial(args: argparse.Namespace) -> int:
    from lab import phones  # noqa: PLC0415 - only this command needs the SIPp helpers

    name = phones.dial(load(), args.agent, args.number, keys=args.keys, hold_s=args.hold_s)
    print(f"pbx-lab: agent {args.agent} calling {args.number}@agents ({name})")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pbx-lab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the lab (idempotent); no service = all")
    up.add_argument("services", nargs="*", help=" | ".join(services.NAMES))
    up.set_defaults(run=_cmd_up)
    down = commands.add_parser("down", help="stop the lab, leaving no process or mount behind")
    down.add_argument("services", nargs="*", help=" | ".join(services.NAMES))
    down.set_defaults(run=_cmd_down)
    commands.add_parser("status", help="show each service; exit 3 unless all are up").set_defaults(
        run=_cmd_status
    )
    env = commands.add_parser("env", help="print the lab's endpoints and conventions")
    env.add_argument("--json", action="store_true")
    env.set_defaults(run=_cmd_env)
    cli = commands.add_parser("cli", help="run an Asterisk CLI command (none: an interactive console)")
    cli.add_argument("command", nargs="*")
    cli.set_defaults(run=_cmd_cli)
    phone = commands.add_parser("phone", help="set how an agent phone behaves")
    phone.add_argument("agent")
    phone.add_argument("behaviour", choices=["answer", "reject", "busy", "noanswer", "offline"])
    phone.add_argument("--ring-s", type=int, default=0, help="answer: ring this many seconds first")
    phone.add_argument(
        "--keys", default="", help=f"answer: then press these keys on every call ({KEYS_HELP})"
    )
    phone.add_argument(
        "--hangup-after", type=int, default=0, metavar="S", help="answer: hang up S seconds after the answer"
    )
    phone.set_defaults(run=_cmd_phone)
    call = commands.add_parser("call", help="place an inbound SIPp call to lab-inbound (e.g. support)")
    call.add_argument("exten", help="support | failover (the queues) | an agent extension")
    call.add_argument("--caller", default="0600000000", help="caller number (P-Asserted-Identity)")
    call.add_argument("--hold-s", type=float, default=30, help="hang up this long after the answer")
    call.add_argument("--keys", default="", help=f"press these keys after the answer ({KEYS_HELP})")
    call.set_defaults(run=_cmd_call)
    dial = commands.add_parser(
        "dial", help="an agent's phone calls a number (context agents), in the background"
    )
    dial.add_argument("agent", help="the calling endpoint (an agent or desk phone)")
    dial.add_argument("number", help="e.g. a contact number (see `env` conventions) or another agent")
    dial.add_argument("--keys", default="", help=f"press these keys after the answer ({KEYS_HELP})")
    dial.add_argument("--hold-s", type=float, default=30, help="hang up this long after the answer")
    dial.set_defaults(run=_cmd_dial)
    return parser


@contextlib.contextmanager
def _lab_lock() -> Iterator[None]:
    """One pbx-lab at a time per lab directory: concurrent test sessions both running `up` (or one
    running `down`) would otherwise race on pid files and ports."""
    run_dir = load().run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "pbx-lab.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.run in (_cmd_env, _cmd_status, _cmd_cli):  # read-only: no need to wait for the lock
        return int(args.run(args))
    with _lab_lock():
        return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
