"""appliance: a Raspberry Pi meeting-room video endpoint on Janus VideoRoom.

The engine implements the room model of the seed documents (rooms, users,
streams, publish and play, five events) on a Janus VideoRoom.
"""

from .encoder import EncoderSettings, H264Encoder
from .engine import Engine
from .errors import EngineError, ErrorCode
from .profile import EngineProfile, RoomConfig, Stream, User
from .quality import StreamQuality
from .states import PlayerState, PublisherState, RoomState, RoomStateReason, UpdateType
from .testpattern import Stamp, TestPatternSource, read_stamp
from .tone import ToneSource, dominant_frequency

__all__ = [
    "EncoderSettings",
    "Engine",
    "EngineError",
    "EngineProfile",
    "ErrorCode",
    "H264Encoder",
    "PlayerState",
    "PublisherState",
    "RoomConfig",
    "RoomState",
    "RoomStateReason",
    "Stamp",
    "Stream",
    "StreamQuality",
    "TestPatternSource",
    "ToneSource",
    "UpdateType",
    "User",
    "dominant_frequency",
    "read_stamp",
]
