"""Metrics: scraped over HTTP during a real call and parsed with
prometheus_client's own parser; the textfile; label cardinality."""

from __future__ import annotations

import asyncio
import json
import os
import random
import stat
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import websockets
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from appliance.app.call import CallState
from appliance.app.config import ConfigError, load_config
from appliance.app.metrics import MAX_LABEL, MAX_STREAMS, Metrics, MetricsExport, Snapshot, StreamFigures
from appliance.engine import PlayerState, User
from appliance.media import EncoderSettings
from appliance.media.speaker import Speaker, SpeakerSettings
from appliance.testing import TestPatternSource, ToneSource
from appliance.testing.janus_server import free_port

from .conftest import profile_for
from .daemonkit import NotifySocket, running_daemon, until, write_config

pytestmark = pytest.mark.timeout(240)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint: (name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


# Every family docs/configuration.md lists (those with labels appear once they have a sample).
FAMILIES = {"appliance_info", "appliance_call_state", "appliance_call_duration_seconds", "appliance_call_seconds",
            "appliance_participants", "appliance_muted", "appliance_streams", "appliance_stream_fps",
            "appliance_stream_kbps", "appliance_stream_packet_loss_ratio", "appliance_stream_rtt_seconds",
            "appliance_stream_jitter_seconds", "appliance_stream_audio_level", "appliance_reconnects",
            "appliance_join_failures", "appliance_watchdog_pings", "appliance_speaker_underruns",
            "process_cpu_seconds", "process_resident_memory_bytes"}


def stat_figures() -> tuple[int, float]:
    """This process's resident bytes and CPU seconds by /proc/self/stat."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[21]) * os.sysconf("SC_PAGE_SIZE"), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def family_names(port: int) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return {family.name for family in text_string_to_metric_families(response.read().decode())}


def value(samples, name: str, **labels: str) -> float | None:  # type: ignore[no-untyped-def]
    return samples.get((name, tuple(sorted(labels.items()))))


def metrics_config(tmp_path, janus, room_id, port: int, textfile: str = "", interval: float = 15):  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, janus.url, room_id)
    (tmp_path / "appliance.d").mkdir()
    (tmp_path / "appliance.d" / "metrics.toml").write_text(
        f'[speaker]\nenabled = true\ndevice = "null"\n'
        f'[metrics]\nhttp_port = {port}\ntextfile = "{textfile}"\ntextfile_interval = {interval}\n')
    return path


async def test_a_scrape_during_a_real_call_follows_the_streams(janus, room_id, tmp_path, engines, monkeypatch):
    port = free_port()
    notify = NotifySocket(tmp_path / "notify")  # systemd's side, with a watchdog: pings every 0.5 s
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    monkeypatch.setenv("WATCHDOG_USEC", "1500000")
    async with running_daemon(metrics_config(tmp_path, janus, room_id, port)) as daemon:
        at_rest = await asyncio.to_thread(scrape, port)
        assert value(at_rest, "appliance_call_state", state="idle") == 1
        assert value(at_rest, "appliance_participants") == 0
        rss, cpu = stat_figures()
        if rss:  # qemu-user's /proc/self/stat has 0 there (make test-arm64), and so has the process collector
            assert value(at_rest, "process_resident_memory_bytes") == pytest.approx(rss, rel=0.2) and rss > 20e6
            assert 0 < value(at_rest, "process_cpu_seconds_total") <= cpu + 0.5

        remote, rec = engines(profile_for(janus))
        await remote.login_room(room_id, User("remote", "Remote"))
        await remote.start_publishing_stream("remote-main", video=TestPatternSource(EncoderSettings(320, 180, fps=15)),
                                             audio=ToneSource(440, level=0.3))
        daemon.call.join()
        stream = dict(stream="remote-main", direction="receive")
        own = dict(stream="room-pi-main", direction="send")

        async def flowing() -> bool:
            samples = await asyncio.to_thread(scrape, port)
            return (value(samples, "appliance_stream_fps", **stream) or 0) > 0 and \
                (value(samples, "appliance_stream_fps", **own) or 0) > 0 and \
                (value(samples, "appliance_stream_audio_level", **stream) or 0) > 0

        await until(flowing, "the streams' figures in a scrape", timeout=60)
        samples = await asyncio.to_thread(scrape, port)
        assert value(samples, "appliance_call_state", state="in_call") == 1
        assert value(samples, "appliance_call_state", state="idle") == 0
        assert value(samples, "appliance_participants") == 2
        assert value(samples, "appliance_streams") == 2
        assert value(samples, "appliance_call_duration_seconds") > 0
        assert value(samples, "appliance_call_seconds_total") >= value(samples, "appliance_call_duration_seconds")
        for figures in (stream, own):
            assert 0 < value(samples, "appliance_stream_fps", **figures) < 40  # 15 and 15 sent; fewer under emulation
            assert 10 < value(samples, "appliance_stream_kbps", **figures) < 10_000
            assert 0 <= value(samples, "appliance_stream_packet_loss_ratio", **figures) <= 0.05
            assert 0 <= value(samples, "appliance_stream_jitter_seconds", **figures) < 0.1
        assert 0 <= value(samples, "appliance_stream_rtt_seconds", **own) < 0.5, "RTT from the receiver reports"
        # What the speaker mixes (a 0.3 sine: RMS 0.21 while it flows; under emulation
        # late audio leaves gaps, and the level says so), a snapshot at most 1 s old.
        mixed = daemon.speaker.levels()["remote-main"]
        exported = value(await asyncio.to_thread(scrape, port), "appliance_stream_audio_level", **stream)
        assert 0 < exported < 0.25 and abs(exported - mixed) < 0.08, (exported, mixed)
        assert FAMILIES <= await asyncio.to_thread(family_names, port)
        pings, exported = len(notify.lines("WATCHDOG=1")), value(await asyncio.to_thread(scrape, port),
                                                                 "appliance_watchdog_pings_total")
        assert pings >= 4 and abs(exported - pings) <= 3, "the pings sent (a snapshot is at most 1 s old)"
        assert value(samples, "appliance_muted") == 0 and value(samples, "appliance_speaker_underruns_total") == 0
        assert value(samples, "appliance_info", version=__import__("appliance").__version__, room=room_id,
                     user="room-pi") == 1

        await remote.stop_publishing_stream("remote-main")
        await rec.wait_for(lambda: daemon.engine.player_state("remote-main") is not PlayerState.PLAYING,
                           what="the daemon sees the stream go")

        async def gone() -> bool:
            samples = await asyncio.to_thread(scrape, port)
            return not any(labels and dict(labels).get("stream") == "remote-main" for _, labels in samples)

        await until(gone, "the stream's series gone with it", timeout=5)
        assert value(await asyncio.to_thread(scrape, port), "appliance_streams") == 1

        await daemon.call.hangup()
        await until(lambda: daemon.call.state is CallState.IDLE, "idle")
        await until(lambda: value(scrape(port), "appliance_call_state", state="idle") == 1, "idle in a scrape")
        samples = await asyncio.to_thread(scrape, port)
        assert value(samples, "appliance_call_duration_seconds") == 0
        assert value(samples, "appliance_call_seconds_total") > 0, "time in calls stays counted"
    notify.close()
    with pytest.raises(OSError):
        scrape(port)  # the listener went with the daemon


async def test_join_failures_are_counted_by_cause(janus, room_id, tmp_path):
    port = free_port()
    path = metrics_config(tmp_path, janus, room_id, port)
    (tmp_path / "appliance.d" / "server.toml").write_text(f'[server]\nurl = "ws://127.0.0.1:{free_port()}/"\n')
    async with running_daemon(path) as daemon:  # a server that is not there
        daemon.call.join()
        await until(lambda: sum(daemon.join_failures.values()) >= 2, "two failed joins", timeout=30)
        await asyncio.sleep(1.5)  # the next snapshot
        samples = await asyncio.to_thread(scrape, port)
    causes = {dict(labels)["cause"]: v for (name, labels), v in samples.items()
              if name == "appliance_join_failures_total"}
    assert sum(causes.values()) >= 2 and set(causes) == {"server_unreachable"}, causes
    assert value(samples, "appliance_call_state", state="joining") == 1


async def test_a_reconnection_is_counted_by_cause(own_janus, room_id, tmp_path):
    port = free_port()
    async with running_daemon(metrics_config(tmp_path, own_janus, room_id, port)) as daemon:
        daemon.call.join()
        await until(lambda: daemon.call.state is CallState.IN_CALL, "in call")
        own_janus.kill()  # the server dies mid-call
        await until(lambda: daemon.call.state is CallState.RECONNECTING, "reconnecting")
        await asyncio.to_thread(own_janus.start)
        await until(lambda: daemon.call.state is CallState.IN_CALL, "back in the call", timeout=30)
        await asyncio.sleep(1.5)  # the next snapshot
        samples = await asyncio.to_thread(scrape, port)
    causes = {dict(labels)["cause"]: v for (name, labels), v in samples.items() if name == "appliance_reconnects_total"}
    assert sum(causes.values()) >= 1 and set(causes) <= {"server_unreachable", "network_interrupted",
                                                         "request_timeout", "session_lost"}, causes
    assert value(samples, "appliance_call_state", state="in_call") == 1


async def test_the_textfile_is_valid_readable_by_node_exporter_and_replaced_atomically(janus, room_id, tmp_path):
    textfile = tmp_path / "collector" / "appliance.prom"
    textfile.parent.mkdir()
    path = metrics_config(tmp_path, janus, room_id, 0, str(textfile), interval=1)
    reads: list[str] = []
    stop = threading.Event()

    def read() -> None:  # a reader as node_exporter is: it opens the file whenever it likes
        while not stop.is_set():
            try:
                reads.append(textfile.read_text())
            except FileNotFoundError:
                pass
            time.sleep(0.01)

    old_umask = os.umask(0o077)  # the unit's
    try:
        async with running_daemon(path):
            reader = threading.Thread(target=read)
            reader.start()
            inodes = set()
            for _ in range(4):
                await until(lambda: textfile.exists(), "the textfile")
                inodes.add(textfile.stat().st_ino)
                await asyncio.sleep(1.0)
            stop.set()
            await asyncio.to_thread(reader.join)
    finally:
        os.umask(old_umask)
    assert len(inodes) >= 3, "replaced, not rewritten in place"
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644, "readable by node_exporter's own user"
    assert [p.name for p in textfile.parent.iterdir()] == ["appliance.prom"], "no temporary file left"
    assert len(reads) > 10
    for text in reads:  # every read a whole file
        names = {family.name for family in text_string_to_metric_families(text)}
        assert {"appliance_call_state", "appliance_participants", "process_resident_memory_bytes"} <= names


async def test_a_thousand_participants_with_random_names_leave_the_series_bounded(janus, room_id, tmp_path):
    port = free_port()
    rng = random.Random(16)
    alphabet = "abcXYZ019 _-.'\"<>{}\\\n\u00e9\u4e2d\U0001f600"
    names = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(1000)]
    async with running_daemon(metrics_config(tmp_path, janus, room_id, port)) as daemon:
        daemon.call.join()
        await until(lambda: value(scrape(port), "appliance_stream_fps", stream="room-pi-main", direction="send"),
                    "the call's own figures", timeout=15)
        before = await asyncio.to_thread(scrape, port)
        most = len(before)

        async def visit(index: int, name: str) -> None:  # joins as a participant, then leaves
            async with websockets.connect(janus.url, subprotocols=["janus-protocol"]) as ws:
                async def call(message: dict, handle: int | None = None) -> dict:
                    message = {**message, "transaction": f"t{index}-{rng.random()}"}
                    if session:
                        message["session_id"] = session
                    if handle:
                        message["handle_id"] = handle
                    await ws.send(json.dumps(message))
                    while True:
                        reply = json.loads(await ws.recv())
                        if reply.get("transaction") == message["transaction"] and reply["janus"] != "ack":
                            return reply

                session = None
                session = (await call({"janus": "create"}))["data"]["id"]
                handle = (await call({"janus": "attach", "plugin": "janus.plugin.videoroom"}))["data"]["id"]
                joined = await call({"janus": "message", "body": {"request": "join", "ptype": "publisher",
                                                                  "room": room_id, "id": f"visitor-{index}",
                                                                  "display": name}}, handle)
                assert joined["plugindata"]["data"].get("videoroom") == "joined", joined
                await call({"janus": "destroy"})

        for batch in range(0, len(names), 25):
            await asyncio.gather(*(visit(i, n) for i, n in enumerate(names[batch:batch + 25], batch)))
            if batch % 200 == 0:
                await asyncio.sleep(1.1)
                text = await asyncio.to_thread(lambda: urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
                most = max(most, len(scrape(port)))
                assert not any(name in text for name in names if len(name) > 12), "a name became text of a metric"
        await asyncio.sleep(1.1)
        after = await asyncio.to_thread(scrape, port)
        assert daemon.call.state is CallState.IN_CALL
    churned = {key for key in after if key[0].startswith("appliance_")} - {k for k in before}
    assert not churned, f"series the visitors left behind: {sorted(churned)[:5]}"
    assert most <= len(before) + 2, "visitors add no series of their own (at most the participant count moves)"


def test_a_streams_level_is_its_rms_as_mixed():
    speaker = Speaker(SpeakerSettings(device="null"))
    sink = speaker.audio_sink("a")
    speaker.close()  # mix by hand
    tone = ToneSource(440, level=0.3, channels=2)  # as decoded Opus arrives
    for _ in range(100):  # 2 s, well past the 300 ms smoothing
        sink(asyncio.run(tone.recv()))
        speaker.mix()
    assert speaker.levels()["a"] == pytest.approx(0.3 / 2 ** 0.5, abs=0.01)
    for _ in range(50):  # then silence: the level falls with it
        speaker.mix()
    assert speaker.levels()["a"] < 0.01


def test_streams_beyond_the_bound_carry_no_series_and_labels_are_safe():
    metrics = Metrics()
    rng = random.Random(7)
    seen: set[str] = set()
    for _ in range(50):  # 1,000 streams come and go, up to 100 at a time
        ids = ["".join(rng.choice("ab<>\"'\\\n{}é中 ") for _ in range(rng.randint(1, 300))) for _ in range(100)]
        metrics.update(Snapshot(state="in_call", streams=[StreamFigures(i, "receive", fps=30.0) for i in ids]))
        families = list(text_string_to_metric_families(generate_latest(metrics.registry).decode()))
        fps = [s for f in families for s in f.samples if s.name == "appliance_stream_fps"]
        assert len(fps) == MAX_STREAMS, "the first MAX_STREAMS streams, no more"
        labels = [s.labels["stream"] for s in fps]
        assert len(set(labels)) == len(labels), "streams that sanitise alike stay apart"
        assert all(len(label) <= MAX_LABEL and label.isascii() and '"' not in label and "\n" not in label
                   for label in labels)
        assert next(s.value for f in families for s in f.samples if s.name == "appliance_streams") == 100
        seen.update(labels)
    metrics.update(Snapshot())
    text = generate_latest(metrics.registry).decode()
    assert "appliance_stream_fps{" not in text, "a stream's series go with it"
    assert len(seen) > MAX_STREAMS  # the labels did churn, and none stayed


@pytest.mark.parametrize(("table", "problem"), [
    ("http_address = \"localhost\"", "metrics.http_address: must be an IP address"),
    ("http_port = 70000", "metrics.http_port: must be from 0 to 65535"),
    ("textfile = \"relative.prom\"", "metrics.textfile: must be an absolute path ending in .prom"),
    ("textfile = \"/tmp/appliance.txt\"", "metrics.textfile: must be an absolute path ending in .prom"),
    ("textfile = \"/nonexistent-dir/appliance.prom\"", "metrics.textfile: /nonexistent-dir is not a directory"),
    ("textfile_interval = 0", "metrics.textfile_interval: must be from 1 to 3600"),
])
def test_bad_metrics_settings_are_refused_with_one_line(tmp_path, table, problem):
    path = tmp_path / "appliance.toml"
    path.write_text(f"[metrics]\n{table}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert problem in str(refused.value) and "\n" not in str(refused.value)


async def test_a_port_in_use_leaves_the_appliance_running_without_the_listener(caplog):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        export = MetricsExport(Metrics(), "127.0.0.1", taken.getsockname()[1], "", 15)
        export.start()
        export.close()
    assert any("metrics: cannot listen on 127.0.0.1 port" in r.getMessage() for r in caplog.records)


def test_a_textfile_that_cannot_be_written_is_one_line_until_it_can(tmp_path, caplog):
    directory = tmp_path / "collector"
    export = MetricsExport(Metrics(), "127.0.0.1", 0, str(directory / "appliance.prom"), 15)
    for _ in range(3):  # the directory went away (or the unit may not write there)
        export.write_textfile()
    assert [r.getMessage() for r in caplog.records] == [
        f"metrics: cannot write {directory / 'appliance.prom'}: No such file or directory"]
    directory.mkdir()
    export.write_textfile()
    assert caplog.records[-1].getMessage() == f"metrics: writing {directory / 'appliance.prom'} again"
    assert "process_resident_memory_bytes" in (directory / "appliance.prom").read_text()
