"""Settings layers and validation; the start-up banner."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from callbox.config import IceServer, add_serve_arguments, parse_ice_server, serve_settings_from
from callbox.errors import ConfigError
from callbox.server.banner import format_banner, urls
from callbox.server.runner import Listening


def settings(argv: list[str], env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return serve_settings_from(parser.parse_args(argv), env or {})


def test_defaults() -> None:
    s = settings([])
    assert (s.host, s.port, s.password, s.ice_servers, s.http) == ("0.0.0.0", 8443, None, (), False)


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    toml = tmp_path / "callbox.toml"
    toml.write_text('[serve]\nport = 9000\nhost = "127.0.0.1"\npassword = "file"\n')
    s = settings(["--config", str(toml)], {"CALLBOX_PORT": "9100"})
    assert (s.port, s.host, s.password) == (9100, "127.0.0.1", "file")
    s = settings(["--config", str(toml), "--port", "9200"], {"CALLBOX_PORT": "9100"})
    assert s.port == 9200


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cert", "c.pem"], "--cert and --key go together"),
        (["--port", "70000"], "port must be 0-65535"),
        (["--ice-server", "http://x"], "must start with stun:"),
        (["--ice-server", "turn:host:3478"], "TURN needs credentials"),
        (["--ice-server", "stun:u:p@host"], "STUN servers take no credentials"),
        (["--ice-server", "stun://host"], "no //"),
    ],
)
def test_bad_settings_are_one_readable_error(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(argv)


def test_unknown_and_broken_config_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        settings(["--config", str(bad)])
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'")
    with pytest.raises(ConfigError, match="unknown setting"):
        settings(["--config", str(unknown)])
    with pytest.raises(ConfigError, match="cannot read config file"):
        settings(["--config", str(tmp_path / "missing.toml")])


def test_ice_server_urls() -> None:
    assert parse_ice_server("stun:127.0.0.1:3478") == IceServer("stun:127.0.0.1:3478")
    assert parse_ice_server("turn:al%40ice:p%3Ass@h:3478?transport=tcp") == IceServer(
        "turn:h:3478?transport=tcp", "al@ice", "p:ss"
    )
    s = settings([], {"CALLBOX_ICE_SERVERS": "stun:a:1 stun:b:2"})
    assert [i.urls for i in s.ice_servers] == ["stun:a:1", "stun:b:2"]


def test_banner_lists_lan_first_with_qr_and_ca() -> None:
    text = format_banner(
        Listening("https", "0.0.0.0", 8443),
        ["192.168.1.20", "fd00::2"],
        Path("/d/ca.pem"),
        password=False,
    )
    lines = text.splitlines()
    assert lines[1].strip().startswith("https://192.168.1.20:8443")
    assert "https://localhost:8443" in lines[2]
    assert "fd00::2" not in text  # IPv4 wildcard does not listen on IPv6
    assert "▀" in text or "█" in text  # a QR code drawn in the terminal
    assert "/d/ca.pem" in text and "No --password" in text


def test_banner_urls_for_specific_hosts() -> None:
    assert urls(Listening("https", "127.0.0.1", 443), ["10.0.0.2"]) == ([], ["https://127.0.0.1"])
    assert urls(Listening("http", "10.0.0.2", 80), []) == (["http://10.0.0.2"], [])
    assert urls(Listening("https", "::", 8443), ["fd00::2"]) == (
        ["https://[fd00::2]:8443"],
        ["https://localhost:8443"],
    )


def test_event_loop_is_uvloop_behind_a_proxy_unless_asked_otherwise() -> None:
    import uvloop

    from callbox.server.runner import loop_factory

    assert settings([]).event_loop == "auto"
    assert loop_factory("auto", tls=False) is uvloop.new_event_loop
    assert loop_factory("uvloop", tls=False) is uvloop.new_event_loop
    assert loop_factory("asyncio", tls=False) is None  # asyncio's own
    # with its own TLS, the send budget needs asyncio's TLS transport (server/sio.py)
    assert loop_factory("auto", tls=True) is None
    with pytest.raises(ConfigError, match="--event-loop uvloop needs --http"):
        loop_factory("uvloop", tls=True)
    assert settings([], {"CALLBOX_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(ConfigError, match="--event-loop 'trio': choose auto, uvloop or asyncio"):
        settings(["--event-loop", "trio"])
