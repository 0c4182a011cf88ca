"""A published stream: local sources sent to Janus as one VideoRoom publisher.

Video goes out as H.264 exactly as the source encoded it (aiortc only
packetizes); receivers' keyframe requests reach the source.
"""

from __future__ import annotations

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.exceptions import InvalidStateError, OperationError

from .aiortc_adapt import route_keyframe_requests
from .errors import EngineError, ErrorCode, one_line
from .events import EventEmitter
from .janus import VIDEOROOM_ID_EXISTS, VIDEOROOM_PUBLISHERS_FULL, JanusConnection, JanusError
from .link import FatalLinkError, Link
from .naming import stream_description, stream_participant_id
from .room import Room
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
        description = stream_description(room.user, room.login_id, self.stream_id)
        try:
            _, jsep = await connection.message(
                handle,
                {
                    "request": "joinandconfigure",
                    "ptype": "publisher",
                    **room.join_fields(),
                    "id": stream_participant_id(self.stream_id, room.ids),
                    "display": room.user.user_name,
                    "descriptions": [{"mid": t.mid, "description": description} for t in pc.getTransceivers()],
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
            if exc.janus_code == VIDEOROOM_PUBLISHERS_FULL:  # retried: someone may leave
                raise EngineError(ErrorCode.ROOM_FULL, f"room full: room {room.room_id!r} takes no more publishers") from None
            raise
        if jsep is None or jsep.get("type") != "answer" or not isinstance(jsep.get("sdp"), str):
            raise EngineError(ErrorCode.PROTOCOL_ERROR, "janus accepted the publish without an SDP answer")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], "answer"))
        except (OperationError, InvalidStateError, ValueError) as exc:
            video = _codecs(jsep["sdp"], "video")
            if self.video is not None and "h264" not in video:
                codecs = await _room_video_codecs(connection, handle, room)
                message = f"room {room.room_id!r} does not take H.264 video (its codecs: {codecs})"
            else:
                message = f"room {room.room_id!r} refused the stream's media (it must allow H.264 and Opus): {exc}"
            raise FatalLinkError(ErrorCode.CODEC_NOT_SUPPORTED, one_line(message)) from None
        self._published_once = True


async def _room_video_codecs(connection: JanusConnection, handle: int, room: Room) -> str:
    """The room's video codecs as the server lists them ("not listed" for a private room)."""
    try:
        data, _ = await connection.message(handle, {"request": "list"})
    except EngineError:
        return "not listed"
    rooms = data.get("list") if isinstance(data.get("list"), list) else []
    for entry in rooms:
        if isinstance(entry, dict) and entry.get("room") == room.wire_id and isinstance(entry.get("videocodec"), str):
            return one_line(entry["videocodec"], 60)
    return "not listed"


def _codecs(sdp: str, kind: str) -> list[str]:
    """The codec names of the ``kind`` section of an SDP, lower case, in order, without rtx."""
    names: list[str] = []
    section = ""
    for line in sdp.splitlines():
        if line.startswith("m="):
            section = line[2:].split(" ", 1)[0]
        elif section == kind and line.startswith("a=rtpmap:"):
            name = line.split(" ", 1)[-1].split("/", 1)[0]
            if name.lower() not in ("rtx", "red", "ulpfec") and name.lower() not in names:
                names.append(name.lower())
    return names
