"""A remote participant run inside the container: joins a room, publishes a
test pattern and a tone, plays the appliance's stream and prints, as one JSON
line, what it received. With ``--until-gone`` it waits for the appliance's
stream to leave the room instead of for frames."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import numpy as np

from appliance.engine import Engine, EngineProfile, UpdateType, User
from appliance.media import EncoderSettings
from appliance.testing import TestPatternSource, ToneSource, dominant_frequency
from appliance.testing.tone import frame_samples


async def main(args: argparse.Namespace) -> dict[str, object]:
    engine = Engine.create(EngineProfile(server=args.server))
    video: list[float] = []
    audio: list[object] = []
    gone = asyncio.Event()
    present = asyncio.Event()

    async def streams(room: str, update: UpdateType, found: list) -> None:  # type: ignore[type-arg]
        for stream in found:
            if stream.stream_id != args.stream:
                continue
            if update is UpdateType.ADD:
                present.set()
                await engine.start_playing_stream(args.stream, lambda f: video.append(time.monotonic()),
                                                  audio.append)
            else:
                gone.set()

    engine.on("room_stream_update", streams)
    await engine.login_room(args.room, User(args.user, "Remote"))
    camera, tone = TestPatternSource(EncoderSettings(320, 180, fps=15)), ToneSource(660)
    await engine.start_publishing_stream(f"{args.user}-main", video=camera, audio=tone)
    started = time.monotonic()
    try:
        if args.until_gone:
            await asyncio.wait_for(present.wait(), args.seconds)
            print(json.dumps({"present": True}), flush=True)
            await asyncio.wait_for(gone.wait(), args.seconds)
        else:
            while time.monotonic() - started < args.seconds and (len(video) < args.frames or len(audio) < 50):
                await asyncio.sleep(0.1)
    except asyncio.TimeoutError:
        pass
    samples = np.concatenate([frame_samples(f) for f in audio[-50:]]) if len(audio) >= 50 else np.zeros(1)
    result = {"video_frames": len(video), "audio_frames": len(audio), "gone": gone.is_set(),
              "first_frame_s": round(video[0] - started, 2) if video else None,
              "tone_hz": round(dominant_frequency(samples)) if len(audio) >= 50 else None}
    await engine.destroy()
    camera.close()
    tone.close()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", default="ws://127.0.0.1:8289/")
    parser.add_argument("--room", required=True)
    parser.add_argument("--user", default="remote")
    parser.add_argument("--stream", default="room-pi-main")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--until-gone", action="store_true")
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
