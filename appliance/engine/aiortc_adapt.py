"""Every place the engine reaches into aiortc's or aioice's internals.

aiortc has no public API for these things an appliance needs:

- **Keyframe requests on the pass-through path.** A receiver's PLI/FIR reaches
  ``RTCRtpSender._send_keyframe``, which only sets a flag for aiortc's own
  encoder; camera H.264 is sent as is, so the request must reach the camera.
- **The DTLS role of an answer.** aiortc answers as the DTLS client and sends
  its ClientHello as soon as ICE connects, which can be before Janus has read
  the answer; Janus drops it and the handshake waits for OpenSSL's 1 s
  retransmission. Answering as the server (``a=setup:passive``) lets Janus
  start the handshake once it is ready.
- **A video frame released when it is complete.** aiortc's jitter buffer
  hands a frame to the decoder only when the *next* frame's first packet
  arrives, ignoring the RTP marker bit that ends every frame: every remote
  picture waits a frame interval (33 ms at 30 fps). Video receivers get a
  buffer that also completes a frame on its marker bit.
- **Audio played as it arrives.** aiortc's audio jitter buffer holds four
  packets (``prefetch=4``) and releases each only when a later one arrives:
  80-100 ms before anything is played. Every audio packet is a whole frame,
  and the speaker's buffer already absorbs jitter (``latency_ms``), so audio
  receivers get a buffer that releases each packet as it arrives, in order;
  a packet later than one already released is dropped.
- **Log records that keep a decoder alive.** A frame that fails to decode is
  logged with the exception as an argument; its traceback holds the decoder
  (its FFmpeg threads and frames) for as long as any handler keeps the record
  (a buffer, a test's log capture). The receiver's records carry the text.
- **When a remote video frame is complete and decoded.** For measuring the
  way to the screen stage by stage (``make bench``): the video buffer and the
  decoders the receivers' decoder thread makes report each frame to a clock,
  when one is set (:func:`time_video_frames`).
- **Only the newest decoded picture waits, handed over cheaply.** aiortc's
  decoder thread hands every decoded frame to the event loop, one pending
  call per frame, into an unbounded queue: after a busy moment of the loop
  (a join, a collection) the reader gets the whole backlog, each picture
  later than the last, and each waiting picture holds a buffer of its
  decoder's frame pool, which FFmpeg never shrinks. Remote tracks instead
  keep at most one decoded picture between the decoder thread and the
  reader; a newer one replaces it. Audio and the end of a track queue as
  before. And each hand-over was ``run_coroutine_threadsafe``: a thread-safe
  future, a task on the loop and its steps for every audio packet and
  picture. The receivers' decoder thread is aiortc's own loop, handing each
  frame over with one ``call_soon_threadsafe`` (:class:`NewestPictureQueue`).
- **ICE host interfaces.** aioice gathers host candidates on every interface;
  an appliance with a LAN, a VPN and Wi-Fi often must use only one.
- **A connection that fails while connecting.** aiortc starts ICE, DTLS and
  the RTP senders and receivers in a task nobody awaits; an exception there
  (a DTLS stack refused write+execute memory by a sandbox, say) is only
  "never retrieved", and the connection stays "connecting" for ever. The task
  is wrapped so that its failure is emitted as ``"connectfailure"`` with one
  line saying why, for the link to tear down and retry.

Each adaptation is checked when this module is imported: if the aiortc or
aioice internals it touches are not as read from the tested versions, the
import fails with one line naming what changed (``pyproject.toml`` pins both to
the tested minor version).

>>> import aiortc
>>> aiortc.__version__.startswith(TESTED_AIORTC)
True
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable

import aioice
import aioice.ice
import aiortc
import aiortc.codecs
import aiortc.rtcpeerconnection
import aiortc.rtcrtpreceiver
import av
import ifaddr
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

TESTED_AIORTC = "1.16."
TESTED_AIOICE = "0.13."


class AiortcMismatch(ImportError):
    """aiortc or aioice is not the version whose internals the engine adapts."""


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise AiortcMismatch(
            f"aiortc {aiortc.__version__} / aioice {aioice.__version__}: {what}; "
            f"the engine is tested with aiortc {TESTED_AIORTC}x and aioice {TESTED_AIOICE}x "
            f"(pip install 'aiortc=={TESTED_AIORTC}*' 'aioice=={TESTED_AIOICE}*')"
        )


def _source(obj: object) -> str:
    """A function's source; for a class, its whole module's: inspect finds a
    class's own lines by tokenizing all of them, which made :func:`check`
    63-89 ms of every start here instead of 7."""
    try:
        return inspect.getsource(inspect.getmodule(obj) if inspect.isclass(obj) else obj)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return ""


def _parameters(function: object) -> list[str]:
    try:
        return list(inspect.signature(function).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []


def check() -> None:
    """Raises :class:`AiortcMismatch` unless every internal used is as expected."""
    _require(aiortc.__version__.startswith(TESTED_AIORTC), "untested aiortc version")
    _require(aioice.__version__.startswith(TESTED_AIOICE), "untested aioice version")
    _require(
        _parameters(getattr(RTCRtpSender, "_send_keyframe", None)) == ["self"]
        and "self._send_keyframe()" in _source(RTCRtpSender),
        "RTCRtpSender no longer handles PLI/FIR through _send_keyframe()",
    )
    _require(
        _parameters(getattr(RTCDtlsTransport, "_set_role", None)) == ["self", "role"]
        and 'self._role == "server"' in _source(RTCDtlsTransport),
        "RTCDtlsTransport no longer takes its role from _set_role()",
    )
    connect = getattr(RTCPeerConnection, "_RTCPeerConnection__connect", None)
    _require(
        (connect is _connect_reporting_failure or
         (inspect.iscoroutinefunction(connect) and _parameters(connect) == ["self"]))
        and "asyncio.ensure_future(self.__connect())" in _source(RTCPeerConnection)
        and callable(getattr(RTCPeerConnection, "emit", None)),
        "RTCPeerConnection no longer connects its transports in a __connect() task",
    )
    _require(
        isinstance(getattr(aiortc.rtcrtpreceiver, "logger", None), logging.Logger),
        "aiortc's receiver no longer logs through its module's logger",
    )
    _require(
        "JitterBuffer(capacity=16, prefetch=4)" in _source(RTCRtpReceiver.__init__)
        and "pli_flag, encoded_frame = self.__jitter_buffer.add(packet)" in _source(RTCRtpReceiver._handle_rtp_packet)
        and _parameters(JitterFrame) == ["data", "timestamp"] and "self._origin" in _source(JitterBuffer.__init__),
        "aiortc's receiver no longer buffers audio in JitterBuffer(capacity=16, prefetch=4).add()",
    )
    _require(
        aiortc.rtcrtpreceiver.JitterBuffer in (JitterBuffer, _jitter_buffer)
        and "JitterBuffer(capacity=512, is_video=True)" in _source(RTCRtpReceiver.__init__)
        and _parameters(JitterBuffer._remove_frame) == ["self", "sequence_number"]
        and "self._remove_frame(packet.sequence_number)" in _source(JitterBuffer.add)
        and _parameters(JitterBuffer.add) == ["self", "packet"]
        and _parameters(JitterFrame) == ["data", "timestamp"]
        and all(f"self.{name}" in _source(JitterBuffer.__init__) for name in ("_packets", "_origin", "_capacity")),
        "aiortc's receiver no longer reassembles video in JitterBuffer._remove_frame()",
    )
    worker = aiortc.rtcrtpreceiver.decoder_worker
    code = _source(worker)
    _require(
        (worker is _decoder_worker or (
            _parameters(worker) == ["loop", "input_q", "output_q", "decode_error"]
            and all(line in code for line in (
                "task = input_q.get()", "codec, encoded_frame = task", "decoder = get_decoder(codec)",
                "frames = decoder.decode(encoded_frame)", "except av.FFmpegError as exc:", "decode_error.set()",
                "asyncio.run_coroutine_threadsafe(output_q.put(None), loop)",
                "asyncio.run_coroutine_threadsafe(output_q.put(frame), loop)"))))
        and "target=decoder_worker," in _source(RTCRtpReceiver)
        and "self._track._queue," in _source(RTCRtpReceiver)
        and "self.__decoder_queue.put((codec, encoded_frame))" in _source(RTCRtpReceiver),
        "aiortc's receiver no longer decodes in decoder_worker(loop, input_q, output_q, decode_error) "
        "handing frames over with run_coroutine_threadsafe(output_q.put())",
    )
    _require(
        issubclass(aiortc.rtcpeerconnection.RemoteStreamTrack, aiortc.rtcrtpreceiver.RemoteStreamTrack)
        and "self._queue: asyncio.Queue = asyncio.Queue()" in _source(aiortc.rtcrtpreceiver.RemoteStreamTrack.__init__)
        and "await self._queue.get()" in _source(aiortc.rtcrtpreceiver.RemoteStreamTrack.recv),
        "aiortc's remote tracks no longer read frames from their asyncio.Queue _queue",
    )
    _require(
        _parameters(getattr(aioice.ice, "get_host_addresses", None)) == ["use_ipv4", "use_ipv6"]
        and "get_host_addresses(" in _source(aioice.ice.Connection.gather_candidates),
        "aioice no longer gathers host addresses through ice.get_host_addresses()",
    )


async def _connect_reporting_failure(pc: RTCPeerConnection) -> None:
    try:
        await _original_connect(pc)
    except Exception as exc:  # CancelledError is not an Exception: a close still cancels it
        pc.emit("connectfailure", f"{type(exc).__name__}: {exc}")


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, which also completes a frame on its marker bit.

    >>> from aiortc.rtp import RtpPacket
    >>> buffer = MarkerJitterBuffer(capacity=16, is_video=True)
    >>> def packet(seq, marker):
    ...     p = RtpPacket(sequence_number=seq, timestamp=3000, marker=marker)
    ...     p._data = bytes([seq])
    ...     return p
    >>> buffer.add(packet(1, 0))[1] is None
    True
    >>> buffer.add(packet(2, 1))[1].data  # the frame's last packet: out at once
    b'\\x01\\x02'
    """

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        packets = []
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]  # type: ignore[operator]
            if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                break
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=packet.timestamp)  # type: ignore[attr-defined]
        return super()._remove_frame(sequence_number)  # no marker: complete when the next frame starts

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        if frame is not None and _frame_clock is not None:
            _frame_clock("complete", frame.timestamp, time.monotonic())
        return pli, frame


class ArrivalJitterBuffer(JitterBuffer):
    """Audio: each packet is released as it arrives; one older than what was released is dropped.

    >>> from aiortc.rtp import RtpPacket
    >>> buffer = ArrivalJitterBuffer(capacity=16, prefetch=4)
    >>> def packet(seq):
    ...     p = RtpPacket(sequence_number=seq, timestamp=960 * seq)
    ...     p._data = bytes([seq % 256])
    ...     return p
    >>> [buffer.add(packet(seq))[1].timestamp // 960 for seq in (65535, 0, 2)]  # at once, across the wrap, past a loss
    [65535, 0, 2]
    >>> buffer.add(packet(1))  # late: its place in the stream has been played
    (False, None)
    """

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self._origin is not None and uint16_add(packet.sequence_number, -self._origin) >= 0x8000:
            return False, None
        self._origin = uint16_add(packet.sequence_number, 1)
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]


FrameClock = Callable[[str, int, float], None]
_frame_clock: FrameClock | None = None


def time_video_frames(clock: FrameClock | None) -> None:
    """Reports each remote video frame to ``clock(stage, rtp_timestamp, time.monotonic())``.

    ``stage`` is ``"complete"`` (its last packet is in, on the event loop) or
    ``"decoded"`` (in aiortc's decoder thread; a decoded frame's ``pts`` is its
    RTP timestamp). Process-wide, for decoders made after the call; ``None``
    stops it. The clock must be quick: it runs on the media path.
    """
    global _frame_clock
    _frame_clock = clock


class _TimedDecoder(Decoder):
    def __init__(self, decoder: Decoder, clock: FrameClock) -> None:
        self.decoder, self.clock = decoder, clock

    def decode(self, encoded_frame: JitterFrame) -> list:  # type: ignore[type-arg]
        frames = self.decoder.decode(encoded_frame)
        now = time.monotonic()
        for frame in frames:
            self.clock("decoded", frame.pts, now)
        return frames


def _get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
    decoder = aiortc.codecs.get_decoder(codec)
    clock = _frame_clock
    return _TimedDecoder(decoder, clock) if clock is not None and codec.mimeType.startswith("video/") else decoder


class NewestPictureQueue(asyncio.Queue):  # type: ignore[type-arg]
    """A remote track's queue in which a decoded picture nobody has taken yet
    is replaced by the next one; other items queue as usual.

    The decoder thread calls :meth:`hand_over`: the picture waits in one
    slot, not in a pending call.

    >>> import asyncio, av
    >>> def picture(pts):
    ...     frame = av.VideoFrame(16, 16, "yuv420p")
    ...     frame.pts = pts
    ...     return frame
    >>> async def three_pictures_then_the_end():
    ...     queue, loop = NewestPictureQueue(), asyncio.get_running_loop()
    ...     # as the decoder thread does while the loop is busy: three pictures, then the end
    ...     for item in (picture(0), picture(1), picture(2), None):
    ...         queue.hand_over(loop, item)
    ...     return [(await queue.get()).pts, await queue.get(), queue.qsize()]
    >>> asyncio.run(three_pictures_then_the_end())
    [2, None, 0]
    >>> async def two_handed_over_before_the_reader_runs():
    ...     queue, loop = NewestPictureQueue(), asyncio.get_running_loop()
    ...     queue.hand_over(loop, picture(0))
    ...     await asyncio.sleep(0)  # the loop takes it into the queue
    ...     queue.hand_over(loop, picture(1))  # the first is still unread: replaced
    ...     await asyncio.sleep(0)
    ...     return [queue.qsize(), (await queue.get()).pts]
    >>> asyncio.run(two_handed_over_before_the_reader_runs())
    [1, 1]
    """

    def __init__(self) -> None:
        super().__init__()
        # No lock: a decoder thread switched out while holding one would stall
        # the loop. The slot drops the older picture by itself; only the
        # decoder thread sets the flag, only the loop clears it, and the loop
        # clears it before it empties the slot, so no picture is left behind.
        self._slot: collections.deque[av.VideoFrame] = collections.deque(maxlen=1)
        self._called = False

    def hand_over(self, loop: asyncio.AbstractEventLoop, item: object) -> None:
        """From another thread: ``item`` (a frame, or ``None`` for the end) to the loop's reader."""
        if not isinstance(item, av.VideoFrame):
            loop.call_soon_threadsafe(self.put_nowait, item)
            return
        self._slot.append(item)
        if not self._called:
            self._called = True
            loop.call_soon_threadsafe(self._take)

    def _take(self) -> None:
        self._called = False
        if self._slot:
            self.put_nowait(self._slot.popleft())

    def _put(self, item: object) -> None:
        if isinstance(item, av.VideoFrame):
            while self._queue and isinstance(self._queue[-1], av.VideoFrame):  # type: ignore[attr-defined]
                self._queue.pop()  # type: ignore[attr-defined]
        super()._put(item)  # type: ignore[misc]


def _decoder_worker(loop: asyncio.AbstractEventLoop, input_q: queue.Queue,  # type: ignore[type-arg]
                    output_q: NewestPictureQueue, decode_error: threading.Event) -> None:
    """aiortc's decoder thread, as in 1.16, but each frame handed over with
    one ``call_soon_threadsafe`` (:meth:`NewestPictureQueue.hand_over`)."""
    codec_name, decoder = None, None
    while True:
        task = input_q.get()
        if task is None:
            output_q.hand_over(loop, None)  # the track ends
            break
        codec, encoded_frame = task
        if codec.name != codec_name:
            decoder, codec_name = _get_decoder(codec), codec.name
        try:
            frames = decoder.decode(encoded_frame)  # type: ignore[union-attr]
        except av.FFmpegError as exc:
            # As aiortc: the decoder's state is kept (a new one would fail
            # every frame until the next keyframe) and the receiver asks for one.
            aiortc.rtcrtpreceiver.logger.warning("RTCRtpReceiver(%s) failed to decode %s frame: %s",
                                                 codec.mimeType.split("/")[0], codec.name, exc)
            decode_error.set()
            continue
        for frame in frames:
            output_q.hand_over(loop, frame)


class _NewestPictureTrack(aiortc.rtcrtpreceiver.RemoteStreamTrack):
    def __init__(self, kind: str, id: str | None = None) -> None:
        super().__init__(kind, id)
        self._queue = NewestPictureQueue()


class _ExceptionsAsText(logging.Filter):
    """Turns exceptions among a record's arguments into their text.

    >>> record = logging.LogRecord("aiortc", logging.WARNING, "", 0, "failed: %s", (ValueError("bad"),), None)
    >>> _ExceptionsAsText().filter(record), record.args
    (True, ('bad',))
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, BaseException) for arg in record.args):
            record.args = tuple(str(arg) if isinstance(arg, BaseException) else arg for arg in record.args)
        return True


def _jitter_buffer(capacity: int, prefetch: int = 0, is_video: bool = False) -> JitterBuffer:
    return (MarkerJitterBuffer if is_video else ArrivalJitterBuffer)(capacity, prefetch, is_video)


_original_connect = getattr(RTCPeerConnection, "_RTCPeerConnection__connect", None)
check()
RTCPeerConnection._RTCPeerConnection__connect = _connect_reporting_failure  # type: ignore[attr-defined]
aiortc.rtcrtpreceiver.JitterBuffer = _jitter_buffer  # type: ignore[misc]
aiortc.rtcrtpreceiver.decoder_worker = _decoder_worker
aiortc.rtcpeerconnection.RemoteStreamTrack = _NewestPictureTrack  # type: ignore[misc]
aiortc.rtcrtpreceiver.logger.addFilter(_ExceptionsAsText())


def route_keyframe_requests(sender: RTCRtpSender, request_keyframe: Callable[[], None]) -> None:
    """Sends the receivers' PLI/FIR on ``sender`` to ``request_keyframe``."""
    sender._send_keyframe = request_keyframe  # type: ignore[method-assign]


def answer_as_dtls_server(pc: RTCPeerConnection) -> None:
    """Makes the next answer of ``pc`` say ``a=setup:passive`` (call before createAnswer)."""
    for transceiver in pc.getTransceivers():
        transceiver.receiver.transport._set_role("server")


_original_get_host_addresses = aioice.ice.get_host_addresses
_allowed: frozenset[str] = frozenset()


def _addresses_on_allowed_interfaces(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    found = set(_original_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6))
    on_allowed = {
        ip.ip if isinstance(ip.ip, str) else ip.ip[0]
        for adapter in ifaddr.get_adapters()
        if adapter.nice_name in _allowed
        for ip in adapter.ips
    }
    return [address for address in found if address in on_allowed]


def limit_host_interfaces(names: Iterable[str]) -> None:
    """Gathers ICE host candidates only on the interfaces ``names``; empty lifts the limit.

    This is process-wide: aioice looks its addresses up through one module
    function, which is replaced (the appliance runs one engine configuration).
    """
    global _allowed
    _allowed = frozenset(names)
    aioice.ice.get_host_addresses = _addresses_on_allowed_interfaces if _allowed else _original_get_host_addresses
