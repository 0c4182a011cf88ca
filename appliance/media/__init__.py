"""The appliance's media devices: cameras, the H.264 encoder, microphone, speaker.

Cameras are :class:`~appliance.engine.EncodedVideoSource`s that emit H.264
as the encoder made it (the Pi camera through picamera2 in
:mod:`~appliance.media.picamera`, a V4L2 or USB camera in
:mod:`~appliance.media.usbcamera`); the microphone is an
:class:`~appliance.engine.AudioSource` on ALSA; the speaker mixes played
streams onto an ALSA device. Whoever opens a device closes it.
"""

from .encoder import EncoderSettings, H264Encoder
from .microphone import MicrophoneSettings, MicrophoneSource
from .speaker import Speaker, SpeakerSettings

__all__ = ["EncoderSettings", "H264Encoder", "MicrophoneSettings", "MicrophoneSource", "Speaker", "SpeakerSettings"]
