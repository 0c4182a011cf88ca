"""USB camera source through PyAV: the encode path and the H.264 pass-through.

No camera is attached here, so PyAV's own inputs stand in for V4L2: a lavfi
test source paced in real time (raw frames, like a YUYV/MJPEG camera) and a raw
H.264 stream (like a camera that encodes H.264 itself).
"""

from __future__ import annotations

import asyncio
import logging

import av

from appliance.engine import PublisherState, User
from appliance.media import EncoderSettings, H264Encoder
from appliance.media.usbcamera import UsbCameraSource
from appliance.testing.testpattern import Stamp, TestPattern

from .conftest import profile_for


async def test_raw_camera_is_scaled_encoded_and_played(janus, room_id, engines):
    camera = UsbCameraSource(
        EncoderSettings(width=640, height=360, fps=30, gop=300),
        device="testsrc2=size=320x240:rate=30,realtime", container_format="lavfi",
    )
    a, rec_a = engines(profile_for(janus))
    b, rec_b = engines(profile_for(janus))
    await a.login_room(room_id, User("room-pi"))
    await a.start_publishing_stream("usb-cam", video=camera)
    await rec_a.wait_for(lambda: a.publisher_state("usb-cam") is PublisherState.PUBLISHING)
    await asyncio.sleep(1)
    requests = camera.keyframe_requests
    await b.login_room(room_id, User("remote"))
    frames: list[av.VideoFrame] = []
    await b.start_playing_stream("usb-cam", video_sink=frames.append)
    await rec_b.wait_for(lambda: len(frames) >= 30, what="30 frames")
    assert camera.passthrough is False
    assert {(f.width, f.height) for f in frames} == {(640, 360)}
    assert camera.keyframe_requests > requests, "keyframe requests reach the encoder"
    camera.close()


async def test_h264_camera_is_passed_through_untouched(tmp_path):
    encoder = H264Encoder(EncoderSettings(width=320, height=180, gop=5))
    pattern = TestPattern(320, 180)
    sent = []
    for n in range(12):
        frame = pattern.render(Stamp(n, 0))
        frame.pts = n * 3000
        sent += [bytes(p) for p in encoder.encode(frame)]
    path = tmp_path / "camera.h264"
    path.write_bytes(b"".join(sent))

    camera = UsbCameraSource(EncoderSettings(width=320, height=180), device=str(path), container_format="h264", queue_packets=64)
    try:
        received = [bytes(await camera.recv()) for _ in range(12)]
        camera.request_keyframe()  # a camera that encodes cannot honour it; nothing breaks
    finally:
        camera.close()
    assert camera.passthrough is True
    assert received == sent, "the camera's H.264 reaches the network byte for byte"


async def test_missing_camera_is_reported_once(caplog):
    camera = UsbCameraSource(device="/dev/video99", reopen_interval=0.05)
    camera.start()
    await asyncio.sleep(0.4)
    camera.close()
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING and "/dev/video99" in r.getMessage()]
    assert len(lines) == 1 and "cannot be opened" in lines[0].getMessage()
    assert not camera.available
