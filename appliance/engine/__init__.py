"""The room model on a Janus VideoRoom: a library any application can use.

An application creates an :class:`Engine`, registers handlers for the events
in :data:`EVENTS`, logs in to a room, publishes its own sources and plays
other users' streams into its sinks. A video source implements
:class:`EncodedVideoSource`, an audio source :class:`AudioSource`; sinks are
plain callables (:data:`VideoSink`, :data:`AudioSink`). See ``docs/api.md``.

>>> from appliance.engine import Engine, EngineProfile, User
>>> engine = Engine.create(EngineProfile(server="ws://127.0.0.1:8188/"))
>>> engine.room_state
<RoomState.DISCONNECTED: 'disconnected'>
"""

from .engine import Engine
from .errors import EngineError, ErrorCode
from .events import EVENTS
from .profile import SHARE_SUFFIX, EngineProfile, RoomConfig, Stream, User
from .quality import StreamQuality
from .states import PlayerState, PublisherState, RoomState, RoomStateReason, UpdateType
from .tracks import AudioSink, AudioSource, EncodedVideoSource, VideoSink

__all__ = [
    "EVENTS",
    "AudioSink",
    "AudioSource",
    "EncodedVideoSource",
    "Engine",
    "EngineError",
    "EngineProfile",
    "ErrorCode",
    "PlayerState",
    "PublisherState",
    "RoomConfig",
    "RoomState",
    "RoomStateReason",
    "SHARE_SUFFIX",
    "Stream",
    "StreamQuality",
    "UpdateType",
    "User",
    "VideoSink",
]
