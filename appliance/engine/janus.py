"""Janus WebSocket API client: one socket, one session, many plugin handles.

Requests carry a transaction; synchronous ones are answered by ``success`` or
``error``, asynchronous plugin messages by ``ack`` then an ``event`` with the
same transaction. Everything else the server sends (plugin events without a
transaction, ``webrtcup``, ``hangup``, ...) goes to the ``on_event`` callback
with the handle id it concerns. A lost socket or session sets :attr:`lost`.

Example, with a Janus at ``janus_url``:

>>> import asyncio
>>> async def exists(url, room):
...     conn = JanusConnection(url, on_event=lambda handle, message: None)
...     await conn.open()
...     handle = await conn.attach("janus.plugin.videoroom")
...     data, jsep = await conn.message(handle, {"request": "exists", "room": room})
...     await conn.close()
...     return data["exists"]
>>> asyncio.run(exists(janus_url, "no-such-room"))
False
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from .errors import EngineError, ErrorCode

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"

# Janus core and VideoRoom error codes the engine gives a name to.
UNAUTHORIZED = 403
UNAUTHORIZED_PLUGIN = 405
SESSION_NOT_FOUND = 458
HANDLE_NOT_FOUND = 459
VIDEOROOM_ROOM_EXISTS = 427
VIDEOROOM_NO_SUCH_FEED = 428
VIDEOROOM_MISSING_ELEMENT = 429
VIDEOROOM_INVALID_ELEMENT = 430
VIDEOROOM_PUBLISHERS_FULL = 432
VIDEOROOM_UNAUTHORIZED = 433
VIDEOROOM_ID_EXISTS = 436

_NAMED = {
    UNAUTHORIZED: ErrorCode.AUTH_FAILED,
    UNAUTHORIZED_PLUGIN: ErrorCode.AUTH_FAILED,
    VIDEOROOM_UNAUTHORIZED: ErrorCode.AUTH_FAILED,
    SESSION_NOT_FOUND: ErrorCode.SESSION_LOST,
    HANDLE_NOT_FOUND: ErrorCode.SESSION_LOST,
    VIDEOROOM_PUBLISHERS_FULL: ErrorCode.ROOM_FULL,
    VIDEOROOM_NO_SUCH_FEED: ErrorCode.STREAM_NOT_FOUND,
}


class JanusError(EngineError):
    """An error answer from Janus, with Janus's own code and an engine code."""

    def __init__(self, janus_code: int, reason: str) -> None:
        code = _NAMED.get(janus_code, ErrorCode.SERVER_ERROR)
        if janus_code == VIDEOROOM_MISSING_ELEMENT and "(pin)" in reason:
            code = ErrorCode.AUTH_FAILED  # a room with a PIN, joined without one
        super().__init__(code, f"janus error {janus_code}: {reason}")
        self.janus_code = janus_code


EventCallback = Callable[[int, dict[str, Any]], None]


class JanusConnection:
    """A WebSocket to Janus with one session, keepalives and request matching.

    The token, when given, goes into every request and nowhere else.
    """

    def __init__(
        self,
        url: str,
        *,
        on_event: EventCallback,
        token: str | None = None,
        request_timeout: float = 10.0,
        keepalive_interval: float = 25.0,
        ping_interval: float = 5.0,
        ping_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.session_id: int | None = None
        self.lost = asyncio.Event()
        self.lost_reason: EngineError | None = None
        self._on_event = on_event
        self._token = token
        self._request_timeout = request_timeout
        self._keepalive_interval = keepalive_interval
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._ws: ClientConnection | None = None
        self._pending: dict[str, tuple[asyncio.Future[dict[str, Any]], bool]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        """Connects and creates the session; raises :class:`EngineError`."""
        try:
            self._ws = await connect(
                self.url,
                subprotocols=["janus-protocol"],  # type: ignore[list-item]
                open_timeout=self._request_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                close_timeout=1.0,
                max_size=1 << 20,
            )
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            raise EngineError(ErrorCode.SERVER_UNREACHABLE, f"cannot reach {self.url}: {exc}") from None
        self._tasks.append(asyncio.create_task(self._read(), name="janus-reader"))
        try:
            answer = await self._request({"janus": "create"})
            self.session_id = int(answer["data"]["id"])
        except (KeyError, TypeError, ValueError):
            await self.close()
            raise EngineError(ErrorCode.PROTOCOL_ERROR, "janus answered 'create' without a session id") from None
        except BaseException:
            await self.close()
            raise
        self._tasks.append(asyncio.create_task(self._keepalive(), name="janus-keepalive"))

    async def attach(self, plugin: str) -> int:
        """Attaches to ``plugin`` and returns the new handle id."""
        answer = await self._request({"janus": "attach", "plugin": plugin})
        try:
            return int(answer["data"]["id"])
        except (KeyError, TypeError, ValueError):
            raise EngineError(ErrorCode.PROTOCOL_ERROR, "janus answered 'attach' without a handle id") from None

    async def detach(self, handle_id: int) -> None:
        """Detaches a handle; quietly does nothing once the session is gone."""
        if self.lost.is_set():
            return
        try:
            await self._request({"janus": "detach", "handle_id": handle_id})
        except EngineError as exc:
            log.debug("detach of handle %s: %s", handle_id, exc)

    async def message(
        self, handle_id: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Sends a plugin message; returns the plugin's data and any JSEP.

        A plugin-level error (``error_code`` in the data) raises
        :class:`JanusError` like a core error does.
        """
        request: dict[str, Any] = {"janus": "message", "handle_id": handle_id, "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        answer = await self._request(request, expect_event=True)
        plugindata = answer.get("plugindata")
        data = plugindata.get("data") if isinstance(plugindata, dict) else None
        if not isinstance(data, dict):
            raise EngineError(ErrorCode.PROTOCOL_ERROR, f"janus answered {body.get('request')!r} without plugin data")
        if "error_code" in data:
            raise JanusError(_as_int(data["error_code"]), str(data.get("error", "")))
        answer_jsep = answer.get("jsep")
        return data, answer_jsep if isinstance(answer_jsep, dict) else None

    async def close(self) -> None:
        """Destroys the session (best effort), closes the socket, stops the tasks."""
        if self._ws is not None and self.session_id is not None and not self.lost.is_set():
            try:
                async with asyncio.timeout(1.0):
                    await self._request({"janus": "destroy"})
            except (EngineError, asyncio.TimeoutError):
                pass
        self._mark_lost(EngineError(ErrorCode.SUCCESS, "closed"))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._ws is not None:
            await self._ws.close()

    async def _request(self, request: dict[str, Any], expect_event: bool = False) -> dict[str, Any]:
        if self._ws is None or self.lost.is_set():
            raise self.lost_reason or EngineError(ErrorCode.NETWORK_INTERRUPTED, "not connected to janus")
        transaction = secrets.token_hex(8)
        request["transaction"] = transaction
        if self.session_id is not None and request["janus"] != "create":
            request["session_id"] = self.session_id
        if self._token:
            request["token"] = self._token
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = (future, expect_event)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
            # cancellation that arrives together with the answer.
            async with asyncio.timeout(self._request_timeout):
                await self._ws.send(json.dumps(request))
                return await future
        except asyncio.TimeoutError:
            raise EngineError(
                ErrorCode.REQUEST_TIMEOUT,
                f"janus did not answer {request['janus']!r} within {self._request_timeout:g} s",
            ) from None
        except websockets.ConnectionClosed:
            raise self.lost_reason or EngineError(ErrorCode.NETWORK_INTERRUPTED, "connection to janus lost") from None
        finally:
            self._pending.pop(transaction, None)

    async def _read(self) -> None:
        assert self._ws is not None
        reason = EngineError(ErrorCode.NETWORK_INTERRUPTED, f"connection to {self.url} lost")
        try:
            async for raw in self._ws:
                self._dispatch(raw)
        except websockets.ConnectionClosed:
            pass
        except Exception:
            log.exception("janus reader failed")
        self._mark_lost(reason)

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            log.warning("ignored a message from janus that is not JSON (%d bytes)", len(raw))
            return
        if not isinstance(message, dict):
            log.warning("ignored a message from janus that is not a JSON object")
            return
        kind = message.get("janus")
        transaction = message.get("transaction")
        pending = self._pending.get(transaction) if isinstance(transaction, str) else None
        if pending is not None:
            future, expect_event = pending
            if future.done():
                return
            if kind == "error":
                error = message.get("error")
                error = error if isinstance(error, dict) else {}
                future.set_exception(JanusError(_as_int(error.get("code")), str(error.get("reason", ""))))
                return
            if kind == "ack" and expect_event:
                return  # the event with this transaction follows
            future.set_result(message)
            return
        if kind == "timeout":
            if self.session_id is not None and message.get("session_id") == self.session_id:  # ours only
                self._mark_lost(EngineError(ErrorCode.SESSION_LOST, "janus session timed out"))
            return
        sender = message.get("sender")
        if isinstance(sender, int) and kind in ("event", "webrtcup", "hangup", "media", "slowlink", "detached"):
            self._on_event(sender, message)
        elif kind not in ("ack", "success", "error", "event", "keepalive"):
            log.debug("ignored janus message %r", kind)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self._keepalive_interval)
            try:
                await self._request({"janus": "keepalive"})
            except JanusError as exc:
                self._mark_lost(EngineError(ErrorCode.SESSION_LOST, f"janus session lost: {exc.message}"))
                return
            except EngineError as exc:
                self._mark_lost(exc)
                return

    def _mark_lost(self, reason: EngineError) -> None:
        if self.lost.is_set():
            return
        self.lost_reason = reason
        self.lost.set()
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(reason)


def _as_int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return 0
