"""Configuration files: defaults, drop-ins, the token, and a corpus of broken ones."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from appliance.app.config import Config, ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "appliance.toml"


def test_the_example_documents_every_key_with_its_default():
    documented = tomllib.loads(EXAMPLE.read_text())
    defaults = Config()
    for section in fields(Config):
        if section.name in ("token", "files"):
            continue
        values = getattr(defaults, section.name)
        keys = {f.name for f in fields(values)}
        assert set(documented[section.name]) == keys, f"[{section.name}] documents every key"
        for key in keys:
            value = documented[section.name][key]
            assert (tuple(value) if isinstance(value, list) else value) == getattr(values, key), f"{section.name}.{key}"


def test_drop_ins_merge_in_name_order_key_by_key(tmp_path):
    main = tmp_path / "appliance.toml"
    main.write_text('[room]\nid = "main-room"\nuser_id = "pi"\n[speaker]\nvolume = 0.5\n')
    (tmp_path / "appliance.d").mkdir()
    (tmp_path / "appliance.d" / "20-later.toml").write_text('[room]\nid = "later"\n')
    (tmp_path / "appliance.d" / "10-first.toml").write_text('[room]\nid = "first"\nuser_name = "Board room"\n')
    config = load_config(main)
    assert (config.room.id, config.room.user_id, config.room.user_name) == ("later", "pi", "Board room")
    assert config.speaker.volume == 0.5
    assert config.files[1:] == (str(tmp_path / "appliance.d" / "10-first.toml"), str(tmp_path / "appliance.d" / "20-later.toml"))


def test_token_from_a_private_file_or_a_systemd_credential(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("1790000000,janus,janus.plugin.videoroom:c2lnbmF0dXJl\n")
    token.chmod(0o640)
    main = tmp_path / "appliance.toml"
    main.write_text(f'[server]\ntoken_file = "{token}"\n')
    assert load_config(main).token == "1790000000,janus,janus.plugin.videoroom:c2lnbmF0dXJl"
    assert "c2lnbmF0dXJl" not in repr(load_config(main)), "the token never shows in repr"
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "token").write_text("from-systemd")
    (credentials / "token").chmod(0o400)  # as systemd makes it
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert load_config(main).token == "from-systemd"


@pytest.mark.parametrize(("content", "mode", "says"), [
    ("", 0o400, "is empty"),
    ("  \n", 0o400, "is empty"),
    ("token", 0o444, "readable by others"),
    ("two\nlines", 0o400, "more than one line"),
])
def test_a_bad_token_credential_is_refused_not_ignored(tmp_path, monkeypatch, content, mode, says):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "token").write_text(content)
    (credentials / "token").chmod(mode)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    main = tmp_path / "appliance.toml"
    main.write_text("")
    with pytest.raises(ConfigError) as caught:
        load_config(main)
    assert says in str(caught.value) and "credential" in str(caught.value)


BROKEN = [
    ("wrong type", "[room]\nauto_join = \"yes\"\n", "room.auto_join", "true or false"),
    ("wrong type number", "[camera]\nfps = \"30\"\n", "camera.fps", "whole number"),
    ("negative", "[room]\njoin_delay = -1\n", "room.join_delay", "from 0 to 3600"),
    ("unknown key", "[room]\nroom_id = \"x\"\n", "room.room_id", "unknown key"),
    ("unknown section", "[rooms]\nid = \"x\"\n", "rooms", "unknown section"),
    ("bad pin", "[buttons]\njoin = \"PIN17\"\n", "buttons.join", "not a GPIO pin name"),
    ("pin twice", "[buttons]\njoin = \"GPIO5\"\nmute = \"GPIO5\"\n", "buttons.mute", "is also buttons.join"),
    ("bad choice", "[screen]\noutput = \"hdmi\"\n", "screen.output", "must be one of"),
    ("bad room id", "[room]\nid = \"has space\"\n", "room.id", "not allowed"),
    ("bad url", "[server]\nurl = \"http://janus\"\n", "server.url", "ws://"),
    ("missing token file", "[server]\ntoken_file = \"/nonexistent/token\"\n", "server.token_file", "cannot read"),
    ("bad TOML", "[room\nid = 1\n", "", "not valid TOML"),
    ("list of strings", "[server]\nice_interfaces = \"eth0\"\n", "server.ice_interfaces", "list of strings"),
]


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", "check-config", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize(("case", "text", "key", "problem"), BROKEN, ids=[case for case, *_ in BROKEN])
def test_broken_configs_give_one_line_naming_file_and_key(tmp_path, case, text, key, problem):
    main = tmp_path / "appliance.toml"
    main.write_text(text)
    result = check_config(main)
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(main) in lines[0] and key in lines[0] and problem in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_world_readable_token_file_is_refused(tmp_path):
    token = tmp_path / "token"
    token.write_text("secret-token")
    token.chmod(0o644)
    main = tmp_path / "appliance.toml"
    main.write_text(f'[server]\ntoken_file = "{token}"\n')
    result = check_config(main)
    assert result.returncode == 78 and "readable by others" in result.stderr and "server.token_file" in result.stderr
    assert "secret-token" not in result.stderr + result.stdout


def test_an_error_in_a_drop_in_names_the_drop_in(tmp_path):
    main = tmp_path / "appliance.toml"
    main.write_text('[room]\nid = "ok"\n')
    (tmp_path / "appliance.d").mkdir()
    drop_in = tmp_path / "appliance.d" / "50-bad.toml"
    drop_in.write_text("[speaker]\nvolume = true\n")
    result = check_config(main)
    assert result.returncode == 78 and str(drop_in) in result.stderr and "speaker.volume" in result.stderr


def test_missing_main_file(tmp_path):
    result = check_config(tmp_path / "nope.toml")
    assert result.returncode == 78 and "no such file" in result.stderr and len(result.stderr.splitlines()) == 1


def test_the_example_is_valid():
    result = check_config(EXAMPLE)
    assert result.returncode == 0 and "OK" in result.stdout


def test_the_docs_list_every_key_with_its_default_and_limits():
    """docs/configuration.md's table agrees with the rules in the code."""
    from appliance.app.config import SECTIONS

    docs = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): line for line in docs.splitlines() if line.startswith("| `")}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            row = rows.get(f"{section}.{f.name}")
            assert row is not None, f"{section}.{f.name} is not in docs/configuration.md"
            default = f.default
            shown = ("[]" if default == () else str(default).lower() if isinstance(default, bool)
                     else f'"{default}"' if isinstance(default, str) else str(default))
            assert f"`{shown}`" in row, f"{section}.{f.name}: default {shown} not in {row}"
            rule = f.metadata
            expected = [f"{rule['range'][0]} to {rule['range'][1]}"] if "range" in rule else []
            expected += [f"at most {rule['max_len']} bytes"] if "max_len" in rule and "items" not in rule else []
            expected += [f"at most {rule['items']}"] if "items" in rule else []
            expected += [f"`{choice}`" for choice in rule.get("choices", ())]
            for text in expected:
                assert text in row, f"{section}.{f.name}: {text!r} not in {row}"
