"""The admin socket: a Unix socket in the runtime directory, one JSON line each way.

Requests are ``{"command": "status" | "join" | "hangup" | "mute" | "screenshot"}``;
answers are JSON objects (``{"error": "..."}`` on failure). The socket is
``0660``: the service's group may use it, nobody else. ``appliance status``,
``join``, ``hangup``, ``mute`` and ``screenshot`` are its clients.

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
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Handler = Callable[[str], Awaitable[dict[str, Any]]]
MAX_REQUEST = 4096


class ControlServer:
    """Serves ``handler(command)`` on a Unix socket; owns its server."""

    def __init__(self, path: str, handler: Handler) -> None:
        self.path = Path(path)
        self._handler = handler
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        old_umask = os.umask(0o117)  # created 0660 from the start, never briefly world-writable
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_REQUEST)
        finally:
            os.umask(old_umask)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            try:
                request = json.loads(line)
                command = request["command"]
                if not isinstance(command, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                answer: dict[str, Any] = {"error": "send one JSON line: {\"command\": \"status\"}"}
            else:
                answer = await self._handler(command)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.LimitOverrunError, ValueError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.path.unlink(missing_ok=True)


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
