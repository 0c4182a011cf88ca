"""Malformed and hostile Janus messages from a fake WebSocket server: the engine
never crashes, never raises, and reports a clear room state."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.engine import Engine, EngineProfile, ErrorCode, RoomState, User

from .conftest import JanusSocket

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Messages shaped like Janus's, with fields of the wrong types or missing.
JANUS_LIKE = st.fixed_dictionaries(
    {"janus": st.sampled_from(["success", "error", "ack", "event", "webrtcup", "hangup", "timeout", "media", "x"])},
    optional={
        "transaction": st.text(max_size=16) | st.integers(),
        "session_id": JSON,
        "sender": st.integers() | st.text(max_size=5),
        "data": JSON,
        "plugindata": st.dictionaries(st.sampled_from(["plugin", "data"]), JSON, max_size=2) | JSON,
        "error": st.dictionaries(st.sampled_from(["code", "reason"]), JSON, max_size=2) | JSON,
        "jsep": JSON,
    },
)


class FakeJanus(JanusSocket):
    """Answers each request with ``answers(request)``: a list of raw texts to send."""

    def __init__(self, answers: Any) -> None:
        self.answers = answers

    async def serve(self, ws: Any) -> None:
        try:
            async for raw in ws:
                for text in self.answers(json.loads(raw)):
                    await ws.send(text)
        except websockets.ConnectionClosed:
            pass


async def login_against(answers: Any, timeout: float = 1.0) -> tuple[ErrorCode, list[tuple[Any, ...]]]:
    async with FakeJanus(answers) as fake:
        engine = Engine.create(EngineProfile(server=fake.url, request_timeout=timeout, ping_interval=1, ping_timeout=1))
        states: list[tuple[Any, ...]] = []
        engine.on("room_state_update", lambda *args: states.append(args))
        code = await engine.login_room("room", User("alice"))
        await engine.destroy()
        return code, states


def check_clear_state(code: ErrorCode, states: list[tuple[Any, ...]]) -> None:
    assert isinstance(code, ErrorCode)
    assert states[0][1] is RoomState.CONNECTING
    if code is not ErrorCode.SUCCESS:
        assert states[-1][1] is RoomState.DISCONNECTED and states[-1][2] is code
        assert isinstance(states[-1][3].get("detail"), str) and states[-1][3]["detail"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reply=st.one_of(JSON, JANUS_LIKE), same_transaction=st.booleans())
def test_any_answer_to_create_session_gives_a_clear_state(reply, same_transaction):
    def answers(request: dict[str, Any]) -> list[str]:
        message = dict(reply) if isinstance(reply, dict) else reply
        if same_transaction and isinstance(message, dict):
            message["transaction"] = request["transaction"]
        return [json.dumps(message)]

    code, states = asyncio.run(login_against(answers, timeout=0.3))
    check_clear_state(code, states)
    assert code is not ErrorCode.SUCCESS


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noise=st.lists(st.one_of(JSON, JANUS_LIKE), min_size=1, max_size=5), seed=st.integers(0, 1000))
def test_noise_around_correct_answers_does_not_break_login(noise, seed):
    """A server that answers correctly but also sends junk: unknown transactions,
    wrong types, events for handles that do not exist, non-JSON text."""
    rng = random.Random(seed)

    def answers(request: dict[str, Any]) -> list[str]:
        kind, tx = request["janus"], request["transaction"]
        good: dict[str, Any]
        if kind in ("create", "attach"):
            good = {"janus": "success", "transaction": tx, "data": {"id": rng.randint(1, 2**52)}}
        elif kind == "message" and request["body"]["request"] == "exists":
            good = {"janus": "success", "transaction": tx, "plugindata": {"plugin": "janus.plugin.videoroom",
                                                                          "data": {"videoroom": "success", "exists": False}}}
        elif kind == "message" and request["body"]["request"] == "create":
            good = {"janus": "success", "transaction": tx, "plugindata": {"plugin": "janus.plugin.videoroom",
                                                                          "data": {"videoroom": "created"}}}
        elif kind == "message":
            data = {"videoroom": "joined", "room": "room", "id": request["body"]["id"], "publishers": [], "attendees": []}
            good = {"janus": "event", "transaction": tx, "sender": request["handle_id"],
                    "plugindata": {"plugin": "janus.plugin.videoroom", "data": data}}
        else:
            good = {"janus": "ack", "transaction": tx}
        junk = [json.dumps(n) for n in noise] + ["not json {", json.dumps({"janus": "event", "sender": 7, "plugindata": 5})]
        rng.shuffle(junk)
        return junk + [json.dumps(good)]

    code, states = asyncio.run(login_against(answers))
    check_clear_state(code, states)
    assert code is ErrorCode.SUCCESS, "junk around correct answers does not stop a login"


def test_huge_payload_is_a_lost_connection_not_a_crash():
    def answers(request: dict[str, Any]) -> list[str]:
        return [json.dumps({"janus": "success", "transaction": request["transaction"], "data": {"id": 1, "x": "x" * (2 << 20)}})]

    code, states = asyncio.run(login_against(answers))
    check_clear_state(code, states)
    assert code in (ErrorCode.NETWORK_INTERRUPTED, ErrorCode.SESSION_LOST)


OK_STREAM = json.dumps({"user_id": "carol", "login": "0001", "stream_id": "ok"})


def test_hostile_events_in_a_call_leave_the_engine_working():
    """After a good login, the server sends junk events to the presence handle."""
    handles: dict[str, int] = {}

    def answers(request: dict[str, Any]) -> list[str]:
        kind, tx = request["janus"], request["transaction"]
        if kind == "create":
            return [json.dumps({"janus": "success", "transaction": tx, "data": {"id": 1}})]
        if kind == "attach":
            handles["presence"] = 2
            return [json.dumps({"janus": "success", "transaction": tx, "data": {"id": 2}})]
        if kind == "message" and request["body"]["request"] == "create":
            return [json.dumps({"janus": "success", "transaction": tx, "plugindata": {"data": {"videoroom": "created"}}})]
        if kind == "message":
            joined = {"videoroom": "joined", "publishers": [{"id": 5}, "x", {"id": "s:ok", "display": "{bad json",
                                                                          "streams": [{"description": OK_STREAM}]},
                                   {"id": "s:no", "streams": [{"description": "{bad json"}]}], "attendees": {"a": 1}}
            junk_events = [
                {"janus": "event", "sender": 2, "plugindata": {"data": {"joining": "not a dict"}}},
                {"janus": "event", "sender": 2, "plugindata": {"data": {"publishers": [{"id": None}, 7]}}},
                {"janus": "event", "sender": 2, "plugindata": {"data": {"leaving": {"x": 1}, "unpublished": 12}}},
                {"janus": "event", "sender": 2, "plugindata": {"data": {"joining": {"id": "u:bob:z.1", "display": 5}}}},
            ]
            return [json.dumps({"janus": "event", "transaction": tx, "sender": 2,
                                "plugindata": {"data": joined}})] + [json.dumps(e) for e in junk_events]
        return [json.dumps({"janus": "ack", "transaction": tx})]

    async def scenario() -> None:
        async with FakeJanus(answers) as fake:
            engine = Engine.create(EngineProfile(server=fake.url, request_timeout=1))
            assert await engine.login_room("room", User("alice")) is ErrorCode.SUCCESS
            await asyncio.sleep(0.3)
            assert engine.room_state is RoomState.CONNECTED
            assert [s.stream_id for s in engine.streams] == ["ok"]
            assert {u.user_id for u in engine.users} >= {"bob"}
            await engine.destroy()

    asyncio.run(scenario())


@pytest.mark.parametrize("display", [
    '{"user_id": "a\\nb", "user_name": "Eve\\nWATCHDOG=trigger\\u001b[2J' + "x" * 5000 + '"}',
    "[" * 3000 + "]" * 3000,
    "Plain\nName\x07" + "y" * 5000,
    "Eve\n (" + "x" * 5000 + ")",
])
def test_other_participants_texts_are_one_capped_line(display):
    """Names and ids from other clients reach screens, logs and status: cleaned at the door."""
    from appliance.engine.ids import STREAM_ID_MAX, USER_NAME_MAX
    from appliance.engine.naming import PRESENCE_BASE, STREAM_BASE, parse_participant

    description = '{"user_id": "e\\nve", "login": "\\u001b[2J' + "l" * 500 + '", "stream_id": "cam\\nX"}'
    for feed in ("s:cam\nX", "u:eve:login.1", "foreign\x1b[31m" + "f" * 400, PRESENCE_BASE + 5, STREAM_BASE + 9, 12):
        participant = parse_participant({"id": feed, "display": display,
                                         "streams": [{"mid": "0", "description": description}]})
        assert participant is not None
        for value, limit in ((participant.user.user_name, USER_NAME_MAX), (participant.user.user_id, STREAM_ID_MAX),
                             (participant.stream_id or "", STREAM_ID_MAX), (participant.login or "", 8)):
            assert value.isprintable() and len(value) <= limit, repr(value[:80])
