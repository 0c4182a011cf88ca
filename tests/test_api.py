"""docs/api.md against the code: every event's arguments, as emitted."""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path
from typing import Any

import pytest

import appliance.engine as engine_api
from appliance.engine import EVENTS, Engine, PlayerState, PublisherState, RoomConfig, User
from appliance.engine.events import EventEmitter
from appliance.media import EncoderSettings
from appliance.testing import TestPatternSource, ToneSource

from .conftest import Recorder, profile_for

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api.md"
HEADING = re.compile(r"^### `(\w+)\((.*)\)`$", re.M)


def documented() -> dict[str, list[tuple[str, Any]]]:
    """Each event's documented arguments as (name, type)."""
    namespace = {**vars(engine_api), "list": list, "dict": dict, "str": str}
    events = {}
    for name, args in HEADING.findall(API.read_text()):
        events[name] = [(arg.split(":")[0].strip(), eval(arg.split(":")[1].strip(), namespace))
                        for arg in args.split(", ")]
    return events


def documented_keys() -> dict[str, set[str]]:
    """Each event's documented ``extended_data`` keys."""
    text = API.read_text()
    keys = {}
    for match in HEADING.finditer(text):
        section = text[match.end():].split("\n### ")[0]
        found = re.search(r"`extended_data` keys: (.*?)\.\n\n", section + "\n\n", re.S)
        if found:
            keys[match.group(1)] = set(re.findall(r"`(\w+)`\s*\(", found.group(1)))
    return keys


def emit_calls() -> list[tuple[str, str, int]]:
    """(file, event, number of arguments) of every ``self._emitter.emit`` in the engine.

    ``self.STATE_EVENT``/``self.QUALITY_EVENT`` stand for every value that a
    class assigns to that attribute.
    """
    attributes: dict[str, set[str]] = {}
    trees = {p: ast.parse(p.read_text()) for p in (ROOT / "appliance" / "engine").glob("*.py")}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id.endswith("_EVENT"):
                    attributes.setdefault(target.id, set()).add(node.value.value)
    calls = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "emit"
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "_emitter"):
                first = node.args[0]
                names = ({first.value} if isinstance(first, ast.Constant)
                         else attributes[first.attr] if isinstance(first, ast.Attribute) else set())
                assert names, f"{path.name}:{node.lineno}: cannot tell which event this emits"
                calls += [(f"{path.name}:{node.lineno}", name, len(node.args) - 1) for name in names]
    return calls


def test_every_event_is_documented_once():
    assert sorted(documented()) == sorted(EVENTS)
    assert len(HEADING.findall(API.read_text())) == len(EVENTS)


def test_every_emit_passes_the_documented_number_of_arguments():
    docs = documented()
    calls = emit_calls()
    assert {event for _, event, _ in calls} == set(EVENTS), "every event is emitted somewhere"
    wrong = [(where, event, count) for where, event, count in calls if count != len(docs[event])]
    assert wrong == []


def matches(value: Any, kind: Any) -> bool:
    origin = typing.get_origin(kind)
    if origin is list:
        (item,) = typing.get_args(kind)
        return isinstance(value, list) and all(isinstance(v, item) for v in value)
    return isinstance(value, origin or kind)


async def test_events_of_a_real_call_carry_the_documented_types(janus, room_id, monkeypatch):
    docs, keys = documented(), documented_keys()
    seen: list[tuple[str, tuple[Any, ...]]] = []
    original = EventEmitter.emit

    def recording(self: EventEmitter, event: str, *args: Any) -> None:
        seen.append((event, args))
        original(self, event, *args)

    monkeypatch.setattr(EventEmitter, "emit", recording)
    a = Engine.create(profile_for(janus, quality_interval=0.5))
    b = Engine.create(profile_for(janus, quality_interval=0.5))
    rec_a, rec_b = Recorder(a), Recorder(b)
    try:
        await a.login_room(room_id, User("alice", "Alice"), RoomConfig(is_user_status_notify=True))
        await a.start_publishing_stream("cam", video=TestPatternSource(EncoderSettings(160, 90, fps=10)),
                                        audio=ToneSource())
        await b.login_room(room_id, User("bob", "Bob"), RoomConfig(is_user_status_notify=True))
        await b.start_playing_stream("cam", video_sink=lambda f: None)
        await rec_b.wait_for(lambda: bool(rec_b.of("player_quality_update")), what="a quality sample")
        await rec_a.wait_for(lambda: bool(rec_a.of("publisher_quality_update")), what="a quality sample")
        await a.stop_publishing_stream("cam")
        await rec_b.wait_for(lambda: b.player_state("cam") is PlayerState.REQUESTING
                             and len(rec_b.of("player_state_update")) >= 3, what="the stream gone")
        await b.logout_room()
    finally:
        await a.destroy()
        await b.destroy()
    assert {event for event, _ in seen} == set(EVENTS)
    for event, args in seen:
        names = [name for name, _ in docs[event]]
        assert len(args) == len(docs[event]), (event, args)
        for (name, kind), value in zip(docs[event], args):
            assert matches(value, kind), f"{event}: {name} = {value!r} is not {kind}"
        if "extended_data" in names:
            extended = args[names.index("extended_data")]
            assert set(extended) <= keys[event], (event, extended)
            detail = extended.get("detail", "")
            assert isinstance(detail, str) and "\n" not in detail and len(detail) <= 200
    # Publisher and player states say why, in one line, every time.
    for event in ("publisher_state_update", "player_state_update"):
        assert all(args[3].get("detail") for e, args in seen if e == event), event
    stopped = [args for e, args in seen if e == "publisher_state_update" and args[1] is PublisherState.NOT_PUBLISHING]
    assert stopped and stopped[-1][3]["detail"] == "stopped"


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_the_api_page_names_each_events_keys_or_none(name):
    docs = documented()
    if "extended_data" in [n for n, _ in docs[name]]:
        assert documented_keys().get(name), f"{name}: which keys extended_data holds is not documented"
