"""The admin socket: a Unix socket in the runtime directory, one JSON line each way.

Requests are ``{"command": "status" | "join" | "hangup" | "mute" | "screenshot"}``;
answers are JSON objects (``{"error": "..."}`` on failure). The socket is
``0660`` with the admin group (``control.group``) as its group: its members
and the service may use it, nobody else. Without that group it is ``0600``.
``appliance status``, ``join``, ``hangup``, ``mute`` and ``screenshot`` are
its clients.

What a client sends is bounded: a request is one line of at most
``MAX_REQUEST`` bytes, read within ``REQUEST_TIMEOUT`` seconds, a JSON object
nested at most ``MAX_DEPTH`` deep; at most ``MAX_CLIENTS`` connections are
served at once and further ones are closed at once, so a flood can neither
exhaust the process's descriptors nor starve the event loop.

Example, a server answering what it was asked, and its client:

>>> import asyncio
>>> async def ask(path):
...     async def handler(command):
...         return {"you said": command}
...     server = ControlServer(path, handler)
...     await server.start()
...     try:
...         return await request(path, "status")
...     finally:
...         await server.close()
>>> asyncio.run(ask(str(tmp / "control.sock")))
{'you said': 'status'}
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .config import ConfigError, check_socket_path

log = logging.getLogger(__name__)

Handler = Callable[[str], Awaitable[dict[str, Any]]]
MAX_REQUEST = 4096
MAX_DEPTH = 4
MAX_CLIENTS = 64
REQUEST_TIMEOUT = 5.0
USAGE = 'send one JSON line: {"command": "status"}'


class ControlServer:
    """Serves ``handler(command)`` on a Unix socket; owns its server and the socket file."""

    def __init__(self, path: str, handler: Handler, group: str = "") -> None:
        self.path = Path(path)
        self.refused = 0  # connections closed at once because MAX_CLIENTS were being served
        self._handler = handler
        self._group = group
        self._server: asyncio.AbstractServer | None = None
        self._clients = 0

    async def start(self) -> None:
        """Listens; raises :class:`ConfigError` if the path is taken or unusable."""
        check_socket_path("control", str(self.path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_socket(self.path)
        gid = _group_id(self._group)
        # Created with its final mode from the start, never briefly open to others.
        old_umask = os.umask(0o117 if gid is not None else 0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_REQUEST)
        except OSError as exc:
            raise ConfigError("control", "control.socket", f"cannot listen on {self.path}: {exc.strerror}") from None
        finally:
            os.umask(old_umask)
        if gid is not None and self.path.stat().st_gid != gid:
            try:
                os.chown(self.path, -1, gid)
            except PermissionError:  # the service is not a member of that group
                log.warning("cannot give the admin socket to group %r: it is for the service's user only",
                            self._group)
                self.path.chmod(0o600)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._clients >= MAX_CLIENTS:
            self.refused += 1
            writer.close()
            return
        self._clients += 1
        try:
            line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
            command = _parse(line)
            answer = await self._handler(command) if command is not None else {"error": USAGE}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.LimitOverrunError, ValueError, ConnectionError):
            pass  # a slow, oversized or vanished client: nothing to answer
        finally:
            self._clients -= 1
            writer.close()
            # Awaited so that a client gone mid-answer (a broken pipe) is retrieved
            # here, not logged as "Future exception was never retrieved" at exit.
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            self.path.unlink(missing_ok=True)


def _parse(line: bytes) -> str | None:
    """The command of one request line, or None if it is not a well-formed request."""
    if not line.endswith(b"\n") or line.count(b"[") + line.count(b"{") > MAX_DEPTH:
        return None
    try:
        request = json.loads(line)
    except (ValueError, RecursionError):
        return None
    command = request.get("command") if isinstance(request, dict) else None
    return command if isinstance(command, str) and len(command) <= 32 else None


def _remove_stale_socket(path: Path) -> None:
    """Removes ``path`` only if it is a socket nobody answers on (left by a crash)."""
    if not os.path.lexists(path):
        return
    if not stat.S_ISSOCK(os.lstat(path).st_mode):
        raise ConfigError("control", "control.socket", f"{path} exists and is not a socket; it is left as it is")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()
            return
        except OSError as exc:
            raise ConfigError("control", "control.socket", f"cannot check {path}: {exc.strerror}") from None
    raise ConfigError("control", "control.socket", f"another daemon answers on {path}")


def _group_id(name: str) -> int | None:
    if not name:
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        log.warning("control.group %r does not exist: the admin socket is for the service's user only", name)
        return None


async def request(path: str, command: str, timeout: float = 10.0) -> dict[str, Any]:
    """Sends one command to a running daemon and returns its answer."""
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path, limit=64 << 20), timeout)
    try:
        writer.write(json.dumps({"command": command}).encode() + b"\n")
        await writer.drain()
        answer = json.loads(await asyncio.wait_for(reader.readline(), timeout))
    finally:
        writer.close()
    return answer if isinstance(answer, dict) else {"error": "bad answer"}
