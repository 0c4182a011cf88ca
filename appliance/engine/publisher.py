"""A published stream: local sources sent to Janus as one VideoRoom publisher.

Video goes out as H.264 exactly as the source encoded it (aiortc only
packetizes); receivers' keyframe requests reach the source.
"""

from __future__ import annotations

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.exceptions import InvalidStateError, OperationError

from .aiortc_adapt import route_keyframe_requests
from .errors import EngineError, ErrorCode
from .events import EventEmitter
from .janus import VIDEOROOM_ID_EXISTS, JanusConnection, JanusError
from .link import FatalLinkError, Link
from .room import Room, stream_feed_id, user_display
from .states import PublisherState
from .tracks import AudioSource, EncodedVideoSource, SourceTrack


class Publisher(Link):
    IDLE = PublisherState.NOT_PUBLISHING
    REQUESTING = PublisherState.REQUESTING
    ACTIVE = PublisherState.PUBLISHING
    STATE_EVENT = "publisher_state_update"
    QUALITY_EVENT = "publisher_quality_update"

    def __init__(
        self,
        room: Room,
        emitter: EventEmitter,
        stream_id: str,
        video: EncodedVideoSource | None,
        audio: AudioSource | None,
    ) -> None:
        super().__init__(room, emitter, stream_id)
        self.video = video
        self.audio = audio
        self._video_track: SourceTrack | None = None
        self._published_once = False

    def _video_frames(self) -> int:
        return self._video_track.frames if self._video_track else 0

    async def _negotiate(self, connection: JanusConnection, handle: int, pc: RTCPeerConnection) -> None:
        self._video_track = None
        if self.video is not None:
            self._video_track = SourceTrack("video", self.video)
            transceiver = pc.addTransceiver(self._video_track, direction="sendonly")
            # The source's H.264 is sent as is, so H.264 is the only codec to offer.
            h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType in ("video/H264", "video/rtx")]
            transceiver.setCodecPreferences(h264)
            route_keyframe_requests(transceiver.sender, self.video.request_keyframe)
            self.video.request_keyframe()  # new subscribers start from this IDR
        if self.audio is not None:
            pc.addTransceiver(SourceTrack("audio", self.audio), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        room = self._room
        try:
            _, jsep = await connection.message(
                handle,
                {
                    "request": "joinandconfigure",
                    "ptype": "publisher",
                    "room": room.room_id,
                    "id": stream_feed_id(self.stream_id),
                    "display": user_display(room.user, room.login_id),
                },
                {"type": "offer", "sdp": pc.localDescription.sdp},
            )
        except JanusError as exc:
            if exc.janus_code == VIDEOROOM_ID_EXISTS:
                message = f"stream id {self.stream_id!r} is already published in room {room.room_id!r}"
                if self._published_once:
                    # Most likely our own feed from before the reconnect, which
                    # Janus drops when it notices the old session is gone.
                    raise EngineError(ErrorCode.STREAM_ID_IN_USE, message) from None
                raise FatalLinkError(ErrorCode.STREAM_ID_IN_USE, message) from None
            raise
        if jsep is None or jsep.get("type") != "answer" or not isinstance(jsep.get("sdp"), str):
            raise EngineError(ErrorCode.PROTOCOL_ERROR, "janus accepted the publish without an SDP answer")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], "answer"))
        except (OperationError, InvalidStateError, ValueError) as exc:
            raise FatalLinkError(
                ErrorCode.CODEC_NOT_SUPPORTED,
                f"room {room.room_id!r} refused the stream's media (it must allow H.264 and Opus): {exc}",
            ) from None
        self._published_once = True
