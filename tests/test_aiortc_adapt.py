"""The aiortc adaptations refuse to run on internals they were not written for."""

from __future__ import annotations

import subprocess
import sys

import aioice
import aioice.ice
import aiortc
import aiortc.jitterbuffer
import aiortc.rtcrtpreceiver
import pytest
from aiortc import RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import RtpPacket

from appliance.engine import aiortc_adapt
from appliance.engine.aiortc_adapt import AiortcMismatch


def test_the_installed_versions_pass():
    aiortc_adapt.check()

@pytest.mark.parametrize(
    ("target", "name", "replacement", "says"),
    [
        (aiortc, "__version__", "1.17.0", "untested aiortc version"),
        (aioice, "__version__", "0.14.0", "untested aioice version"),
        (RTCRtpSender, "_send_keyframe", lambda self, ssrc: None, "_send_keyframe"),
        (RTCDtlsTransport, "_set_role", lambda self, role, extra: None, "_set_role"),
        (aioice.ice, "get_host_addresses", lambda use_ipv4: [], "get_host_addresses"),
        (aiortc.jitterbuffer.JitterBuffer, "_remove_frame", lambda self: None, "_remove_frame"),
        (aiortc.rtcrtpreceiver, "decoder_worker", lambda loop, input_q, output_q: None, "decoder_worker"),
        (aiortc.rtcrtpreceiver.RTCRtpReceiver, "__init__", lambda self, kind, transport: None, "prefetch=4"),
        (aiortc.rtcpeerconnection, "RemoteStreamTrack", object, "asyncio.Queue _queue"),
    ],
)
def test_a_changed_internal_fails_with_one_line(monkeypatch, target, name, replacement, says):
    monkeypatch.setattr(target, name, replacement)
    with pytest.raises(AiortcMismatch) as caught:
        aiortc_adapt.check()
    message = str(caught.value)
    assert says in message and "\n" not in message and "aiortc==1.16.*" in message

def test_the_command_says_it_in_one_line_at_import():
    """`appliance check-config` on a mismatched aiortc: one line and exit 69, no traceback."""
    code = (
        "import sys, aiortc; aiortc.__version__ = '1.17.0'\n"
        "from appliance.app.cli import main\n"
        "sys.exit(main(['check-config', '/nonexistent.toml']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 69, result.stderr
    assert result.stderr.count("\n") == 1 and "untested aiortc version" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_connection_that_fails_while_connecting_reaches_the_link(janus, room_id, engines, monkeypatch,
                                                                        caplog):
    """What a sandbox without write+execute memory did to the DTLS handshake:
    the failure must reach the publisher's state, which retries, not die in a
    task nobody awaits."""
    import gc

    from appliance.engine import PublisherState, User
    from appliance.media import EncoderSettings
    from appliance.testing import TestPatternSource

    from .conftest import profile_for

    real_start = RTCDtlsTransport.start

    async def refused(self, remote_parameters):  # type: ignore[no-untyped-def]
        raise MemoryError("Cannot allocate write+execute memory for ffi.callback()")

    monkeypatch.setattr(RTCDtlsTransport, "start", refused)
    engine, rec = engines(profile_for(janus, reconnect_min_delay=0.2, reconnect_max_delay=0.5))
    await engine.login_room(room_id, User("alice"))
    source = TestPatternSource(EncoderSettings(160, 90, fps=10))
    await engine.start_publishing_stream("cam", video=source)

    def failed_with_memory_error() -> bool:
        return any("MemoryError: Cannot allocate write+execute memory" in args[3]["detail"]
                   for args in rec.of("publisher_state_update") if args[1] is PublisherState.REQUESTING)

    await rec.wait_for(failed_with_memory_error, timeout=5, what="the failure in a REQUESTING detail")
    monkeypatch.setattr(RTCDtlsTransport, "start", real_start)
    await rec.wait_for(lambda: engine.publisher_state("cam") is PublisherState.PUBLISHING, timeout=10,
                       what="publishing once the handshake works again")
    gc.collect()
    assert "Task exception was never retrieved" not in caplog.text
    source.close()


async def test_a_video_frame_is_decoded_without_waiting_for_the_next(janus, room_id, engines):
    """aiortc's own jitter buffer holds each frame until the next one starts
    (one frame interval of delay); with the marker bit honoured, the last frame
    a camera sent is shown even though no other follows it."""
    import asyncio

    import av

    from appliance.engine import User
    from appliance.media import EncoderSettings
    from appliance.testing import TestPatternSource
    from appliance.testing.testpattern import read_stamp

    from .conftest import profile_for

    class Pausable:
        """A test pattern that stops sending (for good) when asked to."""

        def __init__(self) -> None:
            self.source = TestPatternSource(EncoderSettings(320, 180, 15))
            self.paused = False

        async def recv(self) -> av.Packet:
            if self.paused:
                await asyncio.Event().wait()
            return await self.source.recv()

        def request_keyframe(self) -> None:
            self.source.request_keyframe()

        def close(self) -> None:
            self.source.close()

    alice, _ = engines(profile_for(janus))
    bob, rec = engines(profile_for(janus))
    await alice.login_room(room_id, User("alice"))
    await bob.login_room(room_id, User("bob"))
    source = Pausable()
    await alice.start_publishing_stream("alice-main", video=source)
    decoded: list[av.VideoFrame] = []
    await rec.wait_for(lambda: bool(bob.streams), what="alice's stream")
    await bob.start_playing_stream("alice-main", video_sink=decoded.append)
    await rec.wait_for(lambda: len(decoded) >= 10, what="frames at bob")
    source.paused = True
    await asyncio.sleep(0.5)  # the frame being read when paused is sent; nothing after it
    last_sent = source.source.frame_number - 1

    def last_decoded() -> int | None:
        stamp = read_stamp(decoded[-1])
        return stamp.frame_number if stamp else None

    await rec.wait_for(lambda: last_decoded() == last_sent, timeout=3, what=f"frame {last_sent}, the last sent")
    source.close()


async def test_a_burst_of_decoded_pictures_leaves_only_the_newest_waiting(janus, room_id, engines):
    """Pictures the decoder thread finishes while the loop is busy wait for it,
    each holding a buffer of the decoder's pool, which never shrinks. Here the
    decoder is held for a second (30 frames pile up before it), then let go
    while the loop is stalled: the player must get the newest picture, not
    all 30."""
    import asyncio
    import subprocess
    import sys
    import threading
    import time

    import av

    from appliance.engine import User
    from appliance.testing.testpattern import read_stamp

    from .conftest import profile_for

    held, go = threading.Event(), threading.Event()

    def clock(stage: str, _timestamp: int, _now: float) -> None:
        if stage == "decoded" and held.is_set():  # in the decoder thread
            go.wait(10)

    # The remote publishes from a process of its own: its camera must not stall with our loop.
    remote = subprocess.Popen([sys.executable, "-m", "appliance.testing.publishers", janus.url, room_id, "1", "600",
                               "320", "180", "30"])
    aiortc_adapt.time_video_frames(clock)
    try:
        bob, rec = engines(profile_for(janus))
        await bob.login_room(room_id, User("bob"))
        shown: list[int] = []

        def sink(frame: av.VideoFrame) -> None:
            stamp = read_stamp(frame)
            assert stamp is not None
            shown.append(stamp.frame_number)

        await rec.wait_for(lambda: any(s.stream_id == "remote-0-main" for s in bob.streams), timeout=30,
                           what="the remote's stream")
        await bob.start_playing_stream("remote-0-main", video_sink=sink)
        await rec.wait_for(lambda: len(shown) >= 10, timeout=10, what="frames at bob")
        held.set()
        await asyncio.sleep(1)
        before = len(shown)
        go.set()
        time.sleep(1)  # the loop stalls while the decoder works through its backlog
        await rec.wait_for(lambda: len(shown) >= before + 3, what="frames after the burst")
    finally:
        aiortc_adapt.time_video_frames(None)
        go.set()
        remote.kill()
        remote.wait()
    after = shown[before - 1 : before + 3]
    # Measured: aiortc's own queue hands over all of the backlog, one after another.
    assert after[1] - after[0] >= 10, f"frames around the burst: {after}"


def test_the_receivers_buffer_hands_a_frame_to_the_decoder_on_its_marker_bit():
    """Packets fed by hand, as aiortc's receiver feeds them, to the buffer it
    makes: a frame is handed to the decoder with its own last packet (marker
    bit), before the next frame's first packet; aiortc's own buffer holds it
    until that packet comes."""
    from aiortc.codecs import depayload
    from aiortc.codecs.h264 import H264Encoder as Packetizer
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters
    from aiortc.rtp import RtpPacket

    from appliance.media import EncoderSettings
    from appliance.media.encoder import VIDEO_TIME_BASE, H264Encoder
    from appliance.testing.testpattern import Stamp, TestPattern, read_stamp

    codec = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
    settings = EncoderSettings(640, 360, 30)
    encoder, pattern, packetizer = H264Encoder(settings), TestPattern(640, 360), Packetizer()
    sequence = 0

    def rtp_packets(number: int) -> list[RtpPacket]:
        nonlocal sequence
        frame = pattern.render(Stamp(number, 1000 + number))
        frame.pts, frame.time_base = number * 3000, VIDEO_TIME_BASE
        (encoded,) = encoder.encode(frame, keyframe=number == 0)
        payloads, timestamp = packetizer.pack(encoded)
        packets = []
        for i, payload in enumerate(payloads):
            packet = RtpPacket(payload_type=102, sequence_number=sequence, timestamp=timestamp,
                               marker=int(i == len(payloads) - 1), payload=payload)
            packet._data = depayload(codec, payload)
            packets.append(packet)
            sequence += 1
        return packets

    first, second = rtp_packets(0), rtp_packets(1)
    assert len(first) > 1 and first[-1].marker
    ours = aiortc.rtcrtpreceiver.JitterBuffer(capacity=512, is_video=True)  # as RTCRtpReceiver makes it
    aiortcs = aiortc.jitterbuffer.JitterBuffer(capacity=512, is_video=True)
    out = [ours.add(packet)[1] for packet in first]
    assert out[:-1] == [None] * (len(first) - 1) and out[-1] is not None
    assert [aiortcs.add(packet)[1] for packet in first] == [None] * len(first)
    assert aiortcs.add(second[0])[1].timestamp == out[-1].timestamp  # one frame interval later
    (picture,) = aiortc.rtcrtpreceiver.get_decoder(codec).decode(out[-1])
    assert read_stamp(picture) == Stamp(0, 1000)
    assert [ours.add(packet)[1] for packet in second][-1].timestamp == second[-1].timestamp


def test_the_audio_buffer_plays_each_packet_as_it_arrives():
    """aiortc's own would hold four packets: the first comes out when the
    fifth arrives (80 ms later). Ours: each at once, in order; a late one is dropped."""
    from aiortc.rtcrtpreceiver import JitterBuffer as made_by_receiver

    def packet(seq: int) -> RtpPacket:
        p = RtpPacket(sequence_number=seq, timestamp=960 * seq, payload_type=111)
        p._data = bytes([seq % 256]) * 40
        return p

    aiortc_own = aiortc.jitterbuffer.JitterBuffer(capacity=16, prefetch=4)
    assert [aiortc_own.add(packet(seq))[1] is not None for seq in range(1, 7)] == [False] * 4 + [True] * 2
    ours = made_by_receiver(capacity=16, prefetch=4)  # what RTCRtpReceiver("audio") makes
    assert [ours.add(packet(seq))[1].timestamp for seq in (1, 2, 4)] == [960, 1920, 3840]
    assert ours.add(packet(3)) == (False, None), "later than one already played"
    assert ours.add(packet(5))[1].data == bytes([5]) * 40
