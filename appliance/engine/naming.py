"""How the room model's users, logins and streams map onto VideoRoom participants.

A Janus server gives rooms and participants string ids (``string_ids =
true``) or, by its default, positive integers below 2^53; the engine speaks
both (:class:`IdType`). A logged-in user is a participant that never
publishes (its *presence*); each published stream is a participant of its
own. Every participant of ours shows the user's plain name as its
``display``, which is what other clients show. The engine's own identity
travels beside it:

============  ===============================  ============================================
participant   string ids                       numeric ids (a 12-bit tag, then 41 bits)
============  ===============================  ============================================
presence      ``u:<user_id>:<login>.<n>``      0xA55·2^41 + (crc32(user_id) mod 2^21)·2^20
                                               + login·2^5 + n mod 32;
                                               display ``<name> (<user_id>)``
stream        ``s:<stream_id>``                0xA56·2^41 + (the stream id's SHA-256 mod 2^41)
============  ===============================  ============================================

``login`` is 15 random bits (four hex digits) per login; ``n`` counts its
rejoins. Janus draws the ids of other clients at random below 2^53, so one in
2048 of them carries one of our tags: one that looks like a presence is
checked and taken as foreign, but one with the stream tag that has not
published is not listed until it does (one foreign participant in 4096). A stream's tracks each carry the description
``{"user_id": …, "login": …, "stream_id": …}`` (JSON): it ties the stream to
its user on both kinds of server and, on a numeric one, names it. On a
numeric server a presence has nowhere but its display to carry its user id,
so it shows ``Name (user_id)``; clients show publishers, and those (the
streams) show the plain name. What is read back is checked against the id
(the crc, the hash), so a foreign participant that looks like ours is taken
as foreign.

A participant that does not follow this (a plain Janus client) is a user
whose id is its participant id and whose name is its display; once it
publishes, it is also a stream of that same id.

>>> user = User("room-42", "Room 42")
>>> presence_id(user, "0a1b", 1, IdType.STRING), presence_id(user, "0a1b", 1, IdType.NUMBER) < 2**53
('u:room-42:0a1b.1', True)
>>> p = parse_participant({"id": presence_id(user, "0a1b", 1, IdType.NUMBER),
...                        "display": presence_display(user, IdType.NUMBER)})
>>> p.user, p.login, p.is_presence
(User(user_id='room-42', user_name='Room 42'), '0a1b', True)
>>> odd = User("pi(2)", "Room (east)")
>>> parse_participant({"id": presence_id(odd, "0001", 1, IdType.NUMBER),
...                    "display": presence_display(odd, IdType.NUMBER)}).user == odd
True
>>> parse_participant({"id": 7, "display": "alice"}).user
User(user_id='7', user_name='alice')
"""

from __future__ import annotations

import enum
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

from .errors import EngineError, ErrorCode, one_line
from .ids import STREAM_ID_MAX, USER_ID_MAX, USER_NAME_MAX
from .profile import User


class IdType(enum.Enum):
    """The kind of room and participant ids a server uses."""

    STRING = "string"
    NUMBER = "number"


ID_LIMIT = 1 << 53  # numeric ids are below it (JavaScript's exact integers)
PAYLOAD_BITS = 41
PRESENCE_BASE = 0xA55 << PAYLOAD_BITS
STREAM_BASE = 0xA56 << PAYLOAD_BITS
LOGIN_BITS = 15
_CRC_BITS = PAYLOAD_BITS - LOGIN_BITS - 5


def wire_room(room_id: str, ids: IdType) -> str | int:
    """The room id as the server wants it; a numeric server takes 1 ... 2^53-1.

    >>> wire_room("1234", IdType.NUMBER), wire_room("1234", IdType.STRING)
    (1234, '1234')
    """
    if ids is IdType.STRING:
        return room_id
    if room_id.isdigit() and room_id[0] != "0" and int(room_id) < ID_LIMIT:
        return int(room_id)
    raise EngineError(
        ErrorCode.INVALID_ROOM_ID,
        f"room id {room_id!r} must be a whole number from 1 to 2^53-1: this server uses numeric room ids",
    )


def _crc(user_id: str) -> int:
    return zlib.crc32(user_id.encode()) % (1 << _CRC_BITS)


def _stream_hash(stream_id: str) -> int:
    digest = int.from_bytes(hashlib.sha256(stream_id.encode()).digest()[:8], "big")
    return STREAM_BASE + digest % (1 << PAYLOAD_BITS)


def presence_id(user: User, login: str, n: int, ids: IdType) -> str | int:
    """The participant id of one login's presence (its ``n``-th join)."""
    if ids is IdType.STRING:
        return f"u:{user.user_id}:{login}.{n}"
    return PRESENCE_BASE + (_crc(user.user_id) << 20) + (int(login, 16) << 5) + n % 32


def presence_display(user: User, ids: IdType) -> str:
    if ids is IdType.STRING:
        return user.user_name
    return f"{user.user_name} ({user.user_id})".lstrip()


def stream_participant_id(stream_id: str, ids: IdType) -> str | int:
    """The participant id of a stream: unique per stream id, so the server refuses a second publisher of it."""
    return f"s:{stream_id}" if ids is IdType.STRING else _stream_hash(stream_id)


def stream_description(user: User, login: str, stream_id: str) -> str:
    return json.dumps({"user_id": user.user_id, "login": login, "stream_id": stream_id}, separators=(",", ":"))


@dataclass(frozen=True)
class Participant:
    """A VideoRoom participant seen through the room model's naming.

    ``feed_id`` is the id as the server sent it (to subscribe with); ``key``
    its text. ``stream_id`` is set for a stream (and for a foreign
    participant, once it publishes); ``login`` for ours.
    """

    feed_id: str | int
    user: User
    login: str | None
    stream_id: str | None
    is_presence: bool

    @property
    def key(self) -> str:
        return str(self.feed_id)


def _text(value: object, limit: int) -> str:
    return one_line(value, limit) if isinstance(value, str) else ""


def feed_key(value: object) -> str | None:
    """The text of a participant id in a server's message (``leaving``, ``unpublished``, ...), if it is one."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value in ("", "ok"):
        return None
    return str(value)


def _described(entry: dict[str, Any]) -> dict[str, str]:
    """Our description of a stream participant's tracks, if one of them carries it."""
    streams = entry.get("streams")
    for track in streams if isinstance(streams, list) else []:
        description = track.get("description") if isinstance(track, dict) else None
        if isinstance(description, str) and len(description) <= 1024:
            try:
                info = json.loads(description)
            except (ValueError, RecursionError):
                continue
            if isinstance(info, dict) and all(isinstance(info.get(k), str) for k in ("user_id", "login", "stream_id")):
                return info
    return {}


def parse_participant(entry: dict[str, Any]) -> Participant | None:
    """A participant as the server describes it; every text in it one printable line, capped.

    Ids and names come from other clients through the server; what reaches the
    application (screens, logs, status) is cleaned here. The raw id is kept
    for subscribing. A stream of ours that has not published yet is None.
    """
    feed = entry.get("id")
    key = feed_key(feed)
    if key is None:
        return None
    raw_display = entry.get("display") if isinstance(entry.get("display"), str) else ""
    display = _text(raw_display, USER_NAME_MAX)
    if isinstance(feed, str) and feed.startswith("u:"):
        user_id, _, login = feed[2:].partition(":")
        return Participant(feed, User(_text(user_id, USER_ID_MAX), display), login.split(".")[0], None, True)
    if isinstance(feed, int) and feed >> PAYLOAD_BITS == PRESENCE_BASE >> PAYLOAD_BITS and raw_display.endswith(")"):
        # "<name> (<user_id>)": names and user ids may hold brackets too; the crc says where the id starts.
        starts = [i for i, c in enumerate(raw_display) if c == "("]
        for start in starts:
            user_id = raw_display[start + 1 : -1]
            if user_id and _crc(user_id) == (feed - PRESENCE_BASE) >> 20:
                login = f"{(feed >> 5) & ((1 << LOGIN_BITS) - 1):04x}"
                user = User(_text(user_id, USER_ID_MAX), _text(raw_display[:start].rstrip(), USER_NAME_MAX))
                return Participant(feed, user, login, None, True)
    ours_string = isinstance(feed, str) and feed.startswith("s:")
    ours_numeric = isinstance(feed, int) and feed >> PAYLOAD_BITS == STREAM_BASE >> PAYLOAD_BITS
    if ours_string or ours_numeric:
        info = _described(entry)
        stream_id = info.get("stream_id", "")
        if info and (feed == f"s:{stream_id}" or feed == _stream_hash(stream_id)):
            user = User(_text(info["user_id"], USER_ID_MAX), display)
            return Participant(feed, user, _text(info["login"], 8), _text(stream_id, STREAM_ID_MAX), False)
        if ours_string or "streams" not in entry:
            return None  # ours by its id, but not published yet (or not telling whose it is)
    name = _text(key, STREAM_ID_MAX)
    return Participant(feed, User(name, display), None, name, True)
