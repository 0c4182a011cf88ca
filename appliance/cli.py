"""The ``appliance`` command.

Exit codes: 0 success, 64 bad usage, 66 a file cannot be read, 69 a needed
service or environment is missing, 77 a secret file others can read, 78 bad
configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import stat
import sys
from pathlib import Path

from .tokens import VIDEOROOM, mint_token, parse_ttl

EX_USAGE, EX_NOINPUT, EX_UNAVAILABLE, EX_NOPERM = 64, 66, 69, 77


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def read_secret_file(path: Path) -> str:
    """The secret in ``path``, refused if others can read it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise CliError(f"cannot read secret file {path}: {exc.strerror}", EX_NOINPUT) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO) & ~stat.S_IRGRP:
        raise CliError(f"secret file {path} is readable by others; chmod 600 (or 640) it", EX_NOPERM)
    if not text:
        raise CliError(f"secret file {path} is empty", EX_NOINPUT)
    return text


def _token(args: argparse.Namespace) -> int:
    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        raise CliError(f"--ttl: {exc}", EX_USAGE) from None
    print(mint_token(read_secret_file(args.secret_file), ttl, tuple(args.plugin or [VIDEOROOM])))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return asyncio.run(run_demo(args.seconds))


def _devices(args: argparse.Namespace) -> int:
    from .devices import report, survey

    print(report(survey()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description="Meeting-room video endpoint on Janus VideoRoom.")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="mint a signed Janus token (printed on stdout)")
    token.add_argument("--secret-file", type=Path, required=True, help="file holding Janus's token_auth_secret")
    token.add_argument("--ttl", default="24h", help="how long it is valid: 3600, 90m, 24h, 7d (default 24h)")
    token.add_argument("--plugin", action="append", help=f"plugin the token allows (default {VIDEOROOM}); repeatable")
    token.set_defaults(run=_token)
    devices = commands.add_parser("devices", help="list cameras, sound devices, GPIO and displays, with their config names")
    devices.set_defaults(run=_devices)
    demo = commands.add_parser("demo", help="a local Janus and two simulated participants (use `make demo`)")
    demo.add_argument("--seconds", type=float, default=20.0, help="how long to run; 0 runs until Ctrl-C (default 20)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("APPLIANCE_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args))
    except CliError as exc:
        print(f"appliance {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
