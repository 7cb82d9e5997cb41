"""TURN credentials (server/ice.py) and the TURN/STUN settings, without sockets."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from callbox.config import ServerSettings, add_serve_arguments, serve_settings_from
from callbox.errors import ConfigError
from callbox.server.ice import IceServers, request_host, rest_credentials, turn_user


def settings(argv: list[str], env: dict[str, str] | None = None) -> ServerSettings:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return serve_settings_from(parser.parse_args(argv), env or {})


def test_rest_credentials_match_coturns_scheme() -> None:
    # echo -n "1700000000:alice" | openssl dgst -sha1 -hmac north-wind -binary | base64
    assert rest_credentials("north-wind", "alice", 1700000000) == (
        "1700000000:alice",
        "Oko4dt8u/EbTRjRUJWQDFm/zTCc=",
    )


def test_turn_user_is_the_session_id_or_a_hash_of_an_odd_one() -> None:
    assert turn_user("Zx8_-a1B2c3D4e5F") == "Zx8_-a1B2c3D4e5F"
    for odd in ("a:b", "ünïcode", "", "x" * 65):
        user = turn_user(odd)
        assert len(user) == 16 and user.isalnum() and ":" not in user
    assert turn_user("a:b") != turn_user("a:c")


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("example.org:8443", "example.org"),
        ("Example.ORG", "example.org"),
        ("192.0.2.7:1", "192.0.2.7"),
        ("[2001:db8::1]:8443", "[2001:db8::1]"),
        ("[::1]", "[::1]"),
        (None, None),
        ("", None),
        ("evil.example/x", None),
        ("a b", None),
        ("[::1", None),
        ("host:1:2", None),
    ],
)
def test_request_host(header: str | None, host: str | None) -> None:
    assert request_host(header) == host


def test_offers_with_a_fixed_clock() -> None:
    issued: list[int] = []
    ice = IceServers(
        settings(
            ["--turn-url", "turn:t.example:3478", "--turn-secret", "north-wind"]
            + ["--turn-ttl", "600", "--ice-server", "stun:s.example", "--stun-port", "3479"]
        ),
        lambda: issued.append(1),
        clock=lambda: 1699999400.25,
    )
    offer = ice.for_session("alice", "callbox.example:8443")
    assert offer.servers == [
        {"urls": "stun:callbox.example:3479"},
        {"urls": "stun:s.example"},
        {
            "urls": ["turn:t.example:3478"],
            "username": "1700000000:alice",
            "credential": "Oko4dt8u/EbTRjRUJWQDFm/zTCc=",
        },
    ]
    assert offer.ttl == 599  # whole seconds left, rounded down
    assert offer.to_wire() == {"iceServers": offer.servers, "ttl": 599}
    assert ice.anonymous("callbox.example").servers == offer.servers[:2]
    assert ice.for_session("alice").servers[0] == {"urls": "stun:s.example"}  # no Host: no URL
    minted = ice.for_request()
    assert minted.servers[-1]["username"].startswith("1700000000:http-")
    assert len(issued) == 3  # minted three times; anonymous() mints nothing


def test_no_turn_means_nothing_expires() -> None:
    ice = IceServers(settings(["--ice-server", "turn:u:p@t.example"]))
    offer = ice.for_session("s1")
    assert offer.ttl is None
    assert offer.servers == [{"urls": "turn:t.example", "username": "u", "credential": "p"}]
    assert ice.anonymous().servers == []


def test_secret_layers_and_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\nsecond line ignored\n")
    url = ["--turn-url", "turn:t.example"]
    env = {"CALLBOX_TURN_SECRET": "from-env", "CALLBOX_TURN_URLS": "turn:a turns:b:5349"}
    assert settings([], env).turn_secret == "from-env"
    assert settings([], env).turn_urls == ("turn:a", "turns:b:5349")
    # a secret given as a flag replaces the environment's, whichever kind
    assert settings([*url, "--turn-secret-file", str(secret)], env).turn_secret == "from-a-file"
    assert settings([*url, "--turn-secret", "flag"], env).turn_secret == "flag"
    toml = tmp_path / "c.toml"
    toml.write_text(f'[serve]\nturn_urls = ["turn:t:1"]\nturn_secret_file = "{secret}"\n')
    assert settings(["--config", str(toml)]).turn_secret == "from-a-file"
    with pytest.raises(ConfigError, match="contradict"):
        settings(["--config", str(toml)], {"CALLBOX_TURN_SECRET": "x"})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        settings([*url, "--turn-secret-file", str(tmp_path / "empty")])


def test_the_secret_stays_out_of_the_settings_repr() -> None:
    s = settings(["--turn-url", "turn:t.example", "--turn-secret", "north-wind"])
    assert "north-wind" not in repr(s) and "turn:t.example" in repr(s)


@pytest.mark.parametrize(
    "url",
    [
        "turn:t.example",
        "turn:t.example:3478?transport=udp",
        "turn:192.0.2.1:3478?transport=tcp",
        "turns:t.example:5349",
        "turns:t.example:443?transport=tcp",
        "turn:[2001:db8::1]:3478",
    ],
)
def test_good_turn_urls(url: str) -> None:
    assert settings(["--turn-url", url, "--turn-secret", "s"]).turn_urls == (url,)


@pytest.mark.parametrize(
    "url",
    ["turn:", "turn:h:0", "turn:h:99999", "turn:h?transport=sctp", "stun:h", "turn:-h", "turn:h/x"],
)
def test_bad_turn_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="--turn-url"):
        settings(["--turn-url", url, "--turn-secret", "s"])
