"""The ``appliance`` command.

Exit codes: 0 success, 64 bad usage, 66 a file cannot be read, 69 a needed
service or environment is missing (the daemon is not running; a dependency
missing, or not the aiortc version the engine adapts), 70 the daemon
refused a command, 77 a secret file others can read, 78 bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import NoReturn

from . import paths
from .logs import level_from_environment

# Nothing at the top imports the engine: a missing or mismatched aiortc is
# then one line (see main), not a traceback.

EX_USAGE, EX_NOINPUT, EX_UNAVAILABLE, EX_SOFTWARE, EX_NOPERM, EX_CONFIG = 64, 66, 69, 70, 77, 78


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _token(args: argparse.Namespace) -> int:
    from ..engine.janus import VIDEOROOM
    from ..engine.tokens import mint_token, parse_ttl
    from .secretfile import SecretFileError, read_secret_file

    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        raise CliError(f"--ttl: {exc}", EX_USAGE) from None
    try:
        secret = read_secret_file(args.secret_file)
    except SecretFileError as exc:
        raise CliError(f"secret file: {exc}", EX_NOPERM if exc.permissions else EX_NOINPUT) from None
    print(mint_token(secret, ttl, tuple(args.plugin or [VIDEOROOM])))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ..testing.demo import run_demo

    return asyncio.run(run_demo(args.seconds))


def _devices(args: argparse.Namespace) -> int:
    from .devices import report, survey

    print(report(survey()))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from .config import load_config

    config = load_config(args.path)
    print(f"{', '.join(config.files)}: OK (room {config.room.id!r}, "
          f"server{'s' if len(config.server.servers) > 1 else ''} {', '.join(config.server.servers)})")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .daemon import Daemon
    from .logs import REDACTOR, configure_logging
    from .memory import limit_malloc, no_huge_pages

    config = load_config(args.config)
    configure_logging()
    limit_malloc()  # both before any thread or picture buffer exists
    no_huge_pages()
    REDACTOR.add(config.token)
    return asyncio.run(Daemon(config, args.config).run())


def _control(args: argparse.Namespace) -> int:
    import base64
    import json

    from .control import request

    try:
        answer = asyncio.run(request(args.socket, args.command))
    except (OSError, asyncio.TimeoutError) as exc:
        raise CliError(f"cannot reach the daemon at {args.socket}: {exc}", EX_UNAVAILABLE) from None
    if "error" in answer:
        raise CliError(answer["error"], EX_SOFTWARE)
    if args.command == "screenshot":
        args.file.write_bytes(base64.b64decode(answer["png"]))
        print(f"screenshot written to {args.file}")
    elif args.command == "status" and not args.json:
        print(answer["status"])
        for stream in answer["streams"]:
            quality = stream["quality"] or {}
            print(f"  {stream['stream_id']} ({stream['user_id']}): {stream['state']}"
                  + (f", {quality['fps']:.0f} fps, {quality['kbps']:.0f} kbit/s" if quality else ""))
    else:
        print(json.dumps(answer, indent=2 if args.command == "status" else None))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description="Meeting-room video endpoint on Janus VideoRoom.")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="mint a signed Janus token (printed on stdout)")
    token.add_argument("--secret-file", type=Path, required=True, help="file holding Janus's token_auth_secret")
    token.add_argument("--ttl", default="24h", help="how long it is valid: 3600, 90m, 24h, 7d (default 24h)")
    token.add_argument("--plugin", action="append", help="plugin the token allows (default: the VideoRoom plugin); repeatable")
    token.set_defaults(run=_token)
    run = commands.add_parser("run", help="run the appliance (the systemd service)")
    run.add_argument("--config", type=Path, default=paths.CONFIG, help=f"main config file (default {paths.CONFIG})")
    run.set_defaults(run=_run)
    check = commands.add_parser("check-config", help="validate the configuration without starting anything")
    check.add_argument("path", type=Path, nargs="?", default=paths.CONFIG)
    check.set_defaults(run=_check_config)
    for verb, text in (("status", "show the call state, participants and stream quality"),
                       ("join", "join the room"), ("hangup", "leave the room"), ("mute", "toggle the microphone mute"),
                       ("screenshot", "save the screen as PNG")):
        sub = commands.add_parser(verb, help=text)
        sub.add_argument("--socket", default=paths.CONTROL_SOCKET,
                         help=f"the daemon's admin socket (default {paths.CONTROL_SOCKET})")
        if verb == "status":
            sub.add_argument("--json", action="store_true", help="print everything as JSON")
        if verb == "screenshot":
            sub.add_argument("file", type=Path)
        sub.set_defaults(run=_control, command=verb)
    devices = commands.add_parser("devices", help="list cameras, sound devices, GPIO and displays, with their config names")
    devices.set_defaults(run=_devices)
    demo = commands.add_parser("demo", help="a local Janus and two simulated participants (use `make demo`)")
    demo.add_argument("--seconds", type=float, default=20.0, help="how long to run; 0 runs until Ctrl-C (default 20)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=level_from_environment("WARNING"), format="%(levelname)s %(name)s: %(message)s")
    try:
        from .config import ConfigError  # brings the engine, and aiortc with it
    except ImportError as exc:  # a dependency missing, or not the version the engine adapts
        print(f"appliance {args.command}: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    try:
        return int(args.run(args))
    except CliError as exc:
        print(f"appliance {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except ConfigError as exc:
        print(f"appliance {args.command}: {exc}", file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130


def run() -> NoReturn:
    """The ``appliance`` command: :func:`main`, and the process ends with its status
    (:func:`~appliance.media.processing.end_process`: it may have loaded livekit)."""
    status = main()
    processing = sys.modules.get("appliance.media.processing")
    if processing is None:  # livekit comes with it only: not loaded
        sys.exit(status)
    processing.end_process(status)


if __name__ == "__main__":
    run()
