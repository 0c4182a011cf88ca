"""The Pi camera source with picamera2's real Output and encoder classes."""

from __future__ import annotations

import asyncio
import threading
import time

import av
import pytest
from picamera2.encoders.h264_encoder import H264Encoder as HardwareH264Encoder
from picamera2.outputs import Output

from appliance.engine import PublisherState, User
from appliance.media import EncoderSettings
from appliance.media.board import choose_encoder
from appliance.media.capture import CameraStream
from appliance.media.picamera import PacketOutput, PiCameraSource
from appliance.testing import read_stamp

from .conftest import profile_for
from .fakecamera import FakePicamera2


@pytest.mark.parametrize("mode", ["hardware", "software"])
async def test_camera_plays_through_janus_and_honours_keyframe_requests(mode, janus, room_id, engines):
    camera = FakePicamera2()
    source = PiCameraSource(EncoderSettings(width=1280, height=720, fps=30, gop=300), encoder=mode, camera=camera)
    a, rec_a = engines(profile_for(janus))
    b, rec_b = engines(profile_for(janus))
    await a.login_room(room_id, User("room-pi"))
    await a.start_publishing_stream("room-pi-cam", video=source)
    await rec_a.wait_for(lambda: a.publisher_state("room-pi-cam") is PublisherState.PUBLISHING)
    await rec_a.wait_for(lambda: camera.frame_number >= 60, what="2 s into the 10 s GOP")
    if mode == "hardware":
        assert isinstance(source._hardware, HardwareH264Encoder)
        assert isinstance(PacketOutput(source.stream), Output)

    await b.login_room(room_id, User("remote"))
    requests_before = source.keyframe_requests
    frames: list[av.VideoFrame] = []
    started, joined_at_frame = time.monotonic(), camera.frame_number
    await b.start_playing_stream("room-pi-cam", video_sink=frames.append)
    await rec_b.wait_for(lambda: len(frames) >= 30, what="30 decoded frames")

    assert source.keyframe_requests > requests_before, "the subscriber's PLI reached the camera"
    if mode == "hardware":
        assert camera.forced_keyframes, "force_key_frame() was honoured by the encoder"
    first = read_stamp(frames[0])
    assert first is not None and first.frame_number < 300, "not the next scheduled keyframe"
    waited = first.frame_number - joined_at_frame
    print(f"{mode}: first frame {waited} camera frames after the join ({(time.monotonic() - started):.2f} s for 30)")
    assert waited < 30, "the first picture came from an IDR made on request, well under a second"
    numbers = [read_stamp(f).frame_number for f in frames]
    assert numbers == sorted(numbers) and {(f.width, f.height) for f in frames} == {(1280, 720)}
    await a.destroy()
    assert not camera.closed, "the engine does not close a camera it was lent"
    source.close()
    assert camera.closed


async def test_overflow_drops_until_the_next_keyframe_and_asks_for_one():
    """The encoder's thread is never blocked: a full queue drops, then waits for an IDR."""
    camera = FakePicamera2()
    source = PiCameraSource(EncoderSettings(width=320, height=180, gop=1000), encoder="hardware", camera=camera, queue_packets=4)
    try:
        source.start()
        await asyncio.sleep(1.0)  # nobody reads: the queue overflows many times
        assert source.dropped > 0 and source.keyframe_requests > 0
        assert camera.forced_keyframes, "the drop asked the encoder for an IDR"
        packet = await source.recv()
        assert packet.is_keyframe, "after a drop the first packet handed over is a keyframe"
    finally:
        source.close()


def test_encoder_mode_follows_the_board():
    assert choose_encoder("auto", "Raspberry Pi 4 Model B Rev 1.4") == "hardware"
    assert choose_encoder("auto", "Raspberry Pi 3 Model B Plus Rev 1.3") == "hardware"
    assert choose_encoder("auto", "Raspberry Pi 5 Model B Rev 1.0") == "software"
    assert choose_encoder("auto", "") == "software"
    assert choose_encoder("hardware", "") == "hardware"
    with pytest.raises(ValueError, match="auto, hardware, software"):
        choose_encoder("gpu", "")


def test_output_hands_over_from_the_encoder_thread_without_blocking():
    loop = asyncio.new_event_loop()
    stream = CameraStream(queue_packets=2)
    stream.start(loop)
    output = PacketOutput(stream)
    thread = threading.Thread(target=lambda: [output.outputframe(b"\0\0\0\1\x65", True, 1000 * i) for i in range(50)])
    thread.start()
    thread.join(timeout=1)
    assert not thread.is_alive(), "outputframe never blocks"
    loop.run_until_complete(asyncio.sleep(0))
    packet = loop.run_until_complete(stream.get())
    assert packet.time_base.denominator == 1_000_000 and packet.is_keyframe and packet.pts % 1000 == 0
    loop.close()
