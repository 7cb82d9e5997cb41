"""docs/deploy.md says what it does: coturn started with its turnserver.conf lines relays
with callbox's credentials and refuses peers in private ranges; its systemd unit's
ExecStart and TOML are valid `callbox serve` settings."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from callbox.cli import _build_parser
from callbox.config import add_serve_arguments, serve_settings_from
from callbox.server.ice import rest_credentials
from tests.coturn import create_permission, open_relay, running_coturn

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def block_after(marker: str, language: str) -> str:
    """The first fenced block of ``language`` after the line containing ``marker``."""
    text = DEPLOY.read_text()
    start = text.index(marker)
    found = re.search(rf"```{language}\n(.*?)```", text[start:], re.DOTALL)
    assert found is not None, f"no {language} block after {marker!r} in {DEPLOY}"
    return found.group(1)


# One address in each range the doc denies, and addresses a relay may reach.
DENIED = ["10.1.2.3", "172.20.0.1", "192.168.1.10", "127.0.0.1", "169.254.1.1", "100.64.0.1"]
ALLOWED = ["198.51.100.7", "203.0.113.9", "8.8.8.8"]


async def test_coturn_with_the_documented_config_relays_but_not_into_a_lan(
    tmp_path: Path,
) -> None:
    config = block_after("turnserver.conf:", "ini").splitlines()
    assert "use-auth-secret" in config and any(
        line.startswith("denied-peer-ip=10.") for line in config
    )
    with running_coturn(config=config, allow_loopback_peers=False) as coturn:
        username, password = rest_credentials(coturn.secret, "session1", 2**31 - 1)
        async with open_relay(coturn.host, coturn.port, username, password) as (relay, _):
            for peer in DENIED:
                assert await create_permission(relay, peer) == 403, peer
            for peer in ALLOWED:
                assert await create_permission(relay, peer) is None, peer
        log = coturn.log()
    # every range was understood (IPv6 ones too, which an IPv4 relay never meets)
    ranges = [line.split("=", 1)[1] for line in config if line.startswith("denied-peer-ip=")]
    assert len(ranges) >= 10
    for denied in ranges:
        assert f"Black listing: {denied}" in log, denied


def test_the_systemd_unit_starts_serve_with_valid_settings(tmp_path: Path) -> None:
    unit = block_after("callbox.service:", "ini")
    lines = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0] != "#")
    assert lines["KillSignal"] == "SIGTERM"
    assert int(lines["TimeoutStopSec"]) > 10  # above callbox's drain bound
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "turn-secret").write_text("from-systemd-credentials\n")
    toml = tmp_path / "callbox.toml"
    toml.write_text(block_after("/etc/callbox/callbox.toml", "toml"))
    command = lines["ExecStart"].replace("${CREDENTIALS_DIRECTORY}", str(credentials))
    command = command.replace("/etc/callbox/callbox.toml", str(toml))
    command = command.replace("/var/lib/callbox", str(tmp_path / "data"))
    argv = shlex.split(command)
    assert argv[0].endswith("/callbox")
    args = _build_parser().parse_args(argv[1:])
    assert (args.command, args.log_format) == ("serve", "json")
    settings = serve_settings_from(args, env={})
    assert settings.turn_secret == "from-systemd-credentials"
    assert settings.turn_urls[0] == "turn:turn.example.org:3478?transport=udp"
    assert len(settings.turn_urls) == 3 and settings.turn_ttl == 86400


@pytest.mark.parametrize("flag", ["--turn-url", "--turn-secret-file", "--turn-ttl", "--stun-port"])
def test_the_flags_the_doc_names_exist(flag: str) -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    assert flag in DEPLOY.read_text() and flag in parser.format_help()
