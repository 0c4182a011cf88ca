"""A played stream: one VideoRoom subscription, decoded frames to sinks.

The player waits for its stream to be in the room, subscribes, and hands each
decoded video and audio frame to the sinks. When the stream goes away it drops
the subscription and reports ``requesting`` until the stream is back or
``stop_playing_stream`` is called.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from .aiortc_adapt import answer_as_dtls_server
from .errors import EngineError, ErrorCode
from .events import EventEmitter
from .janus import JanusConnection
from .link import Link
from .room import Room
from .states import PlayerState
from .tracks import AudioSink, VideoSink

log = logging.getLogger(__name__)


class Player(Link):
    IDLE = PlayerState.NOT_PLAYING
    REQUESTING = PlayerState.REQUESTING
    ACTIVE = PlayerState.PLAYING
    STATE_EVENT = "player_state_update"
    QUALITY_EVENT = "player_quality_update"

    def __init__(
        self,
        room: Room,
        emitter: EventEmitter,
        stream_id: str,
        video_sink: VideoSink | None,
        audio_sink: AudioSink | None,
    ) -> None:
        super().__init__(room, emitter, stream_id)
        self.video_sink = video_sink
        self.audio_sink = audio_sink
        self.video_frames = 0
        # Monotonic time of the first decoded video frame of the current subscription.
        self.first_frame_time: float | None = None
        self._feed: str | int | None = None

    def _video_frames(self) -> int:
        return self.video_frames

    def _can_start(self) -> bool:
        return self._room.feed_of(self.stream_id) is not None

    def _waiting_for(self) -> str:
        return "connecting" if self._can_start() else f"waiting for stream {self.stream_id!r} in the room"

    def _watchers(self) -> list[Awaitable[Any]]:
        return [self._stream_gone()]

    async def _stream_gone(self) -> None:
        feed = self._feed
        await self._room.wait_until(lambda: self._room.feed_of(self.stream_id) != feed)
        self.error, self.detail = ErrorCode.STREAM_DELETED, f"stream {self.stream_id!r} left the room"

    async def _negotiate(self, connection: JanusConnection, handle: int, pc: RTCPeerConnection) -> None:
        self._feed = self._room.feed_of(self.stream_id)
        self.first_frame_time = None
        if self._feed is None:
            raise EngineError(ErrorCode.STREAM_NOT_FOUND, f"stream {self.stream_id!r} is not in room {self._room.room_id!r}")

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._side_tasks.append(asyncio.create_task(self._read(track)))

        _, offer = await connection.message(
            handle,
            {"request": "join", "ptype": "subscriber", **self._room.join_fields(), "streams": [{"feed": self._feed}],
             **({"private_id": self._room.private_id} if self._room.private_id is not None else {})},
        )
        if offer is None or offer.get("type") != "offer" or not isinstance(offer.get("sdp"), str):
            raise EngineError(ErrorCode.PROTOCOL_ERROR, "janus subscribed without an SDP offer")
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        answer_as_dtls_server(pc)  # Janus starts the handshake once it has the answer
        await pc.setLocalDescription(await pc.createAnswer())
        await connection.message(handle, {"request": "start"}, {"type": "answer", "sdp": pc.localDescription.sdp})

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, av.VideoFrame):
                if self.first_frame_time is None:
                    self.first_frame_time = time.monotonic()
                self.video_frames += 1
                sink: VideoSink | AudioSink | None = self.video_sink
            else:
                sink = self.audio_sink
            if sink is not None:
                try:
                    sink(frame)
                except Exception:
                    log.exception("sink of stream %r failed", self.stream_id)
