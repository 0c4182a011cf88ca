"""Signed tokens against a Janus started with token_auth, and `appliance token`."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from appliance.engine import ErrorCode, RoomConfig, RoomState, RoomStateReason, User
from appliance.engine.tokens import mint_token
from appliance.testing.janus_server import LocalJanus

from .conftest import profile_for

SECRET = "test-secret-0123456789"


@pytest.fixture(scope="module")
def token_janus():
    with LocalJanus(token_secret=SECRET) as server:
        yield server


async def test_valid_token_is_accepted(token_janus, room_id, engines):
    engine, rec = engines(profile_for(token_janus))
    token = mint_token(SECRET, ttl=3600)
    assert await engine.login_room(room_id, User("alice"), RoomConfig(token=token)) == ErrorCode.SUCCESS
    assert engine.room_state is RoomState.CONNECTED


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (mint_token(SECRET, ttl=60, now=time.time() - 3600), "expired"),
        (mint_token("not-the-secret", ttl=3600), "forged"),
        (None, "missing"),
        ("garbage", "malformed"),
    ],
    ids=["expired", "forged", "missing", "malformed"],
)
async def test_refused_tokens_are_an_auth_error(token_janus, room_id, engines, token, why, caplog):
    engine, rec = engines(profile_for(token_janus))
    code = await engine.login_room(room_id, User("alice"), RoomConfig(token=token))
    assert code == ErrorCode.AUTH_FAILED, why
    _, state, error, extended = rec.of("room_state_update")[-1]
    assert (state, error, extended["reason"]) == (RoomState.DISCONNECTED, ErrorCode.AUTH_FAILED, RoomStateReason.LOGIN_FAILED)
    if why == "expired":
        assert "expired" in extended["detail"]
    if token:
        assert token not in caplog.text, "tokens never reach the logs"
        assert token.split(":")[-1] not in caplog.text


def test_token_command_mints_what_janus_accepts(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "token", "--secret-file", str(secret), "--ttl", "24h"],
        capture_output=True, text=True, check=True,
    )
    token = result.stdout.strip()
    expiry = int(token.split(",")[0])
    assert abs(expiry - (time.time() + 86400)) < 60
    now = expiry - 86400
    assert token == mint_token(SECRET, 86400, now=now)


@pytest.mark.parametrize(
    ("mode", "args", "code", "says"),
    [
        (0o644, ["--ttl", "24h"], 77, "readable by others"),
        (0o600, ["--ttl", "soon"], 64, "--ttl"),
        (None, ["--ttl", "1h"], 66, "secret file: cannot read"),
    ],
)
def test_token_command_errors_are_one_line(tmp_path, mode, args, code, says):
    secret = tmp_path / "secret"
    if mode is not None:
        secret.write_text(SECRET)
        secret.chmod(mode)
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "token", "--secret-file", str(secret), *args],
        capture_output=True, text=True,
    )
    assert result.returncode == code
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in result.stderr
