"""A browser call whose two sides are on two callbox nodes (one Redis), through nginx.

nginx proxies as docs/deploy/nginx.conf does; here it listens on two ports, each pinned to
one node, so that the caller's page is served by node A and the answerer's by node B (both
browsers share one client address, which the documented config would send to one node)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from callbox.certs import ensure_server_cert
from tests.conftest import StartServer, free_port
from tests.nginx import Nginx
from tests.redis_server import RedisServer

from .browser import assert_connected, assert_decodes_video, place_call
from .conftest import make_people

DOC = Path(__file__).parents[2] / "docs" / "deploy" / "nginx.conf"


@dataclass
class Front:
    url: str


@pytest.fixture
def backend() -> str:
    return "redis"


def _location(doc: str) -> str:
    """The documented ``location / { ... }`` block, as it is."""
    found = re.search(r"(    location / \{.*?\n    \})", doc, re.DOTALL)
    assert found is not None
    return found.group(1)


@pytest.fixture
def fronts(
    start_server: StartServer, redis_server: RedisServer, shared_data_dir: Path, tmp_path: Path
) -> Iterator[tuple[Front, Front]]:
    proxied = ("--http", "--trusted-proxy", "127.0.0.1")
    nodes = [start_server(*proxied), start_server(*proxied)]
    served = ensure_server_cert(shared_data_dir)
    doc = DOC.read_text()
    head = doc[: doc.index("upstream callbox")]  # the map for Upgrade
    location = _location(doc)
    ports = [free_port(), free_port()]
    blocks = [head]
    for port, node in zip(ports, nodes, strict=True):
        blocks.append(
            f"upstream node{port} {{ server 127.0.0.1:{node.port}; }}\n"
            f"server {{\n    listen 127.0.0.1:{port} ssl;\n"
            f"    ssl_certificate {served.cert_path};\n"
            f"    ssl_certificate_key {served.key_path};\n"
            + location.replace("http://callbox", f"http://node{port}")
            + "\n}\n"
        )
    nginx = Nginx(tmp_path, "\n".join(blocks), ports).start()
    yield Front(f"https://127.0.0.1:{ports[0]}"), Front(f"https://127.0.0.1:{ports[1]}")
    nginx.stop()


def test_a_browser_call_across_two_nodes_through_nginx_connects_and_decodes_video(
    browser: Browser, fronts: tuple[Front, Front], room: str
) -> None:
    a, b = fronts
    factory = make_people(browser, a, room)
    people = next(factory)
    try:
        alice = people("alice", server=a)
        bob = people("bob", server=b)
        place_call(alice)
        bob.page.locator("#offers button", has_text="Answer alice").click()
        for who in (alice, bob):
            assert_connected(who)
        for who in (alice, bob):
            assert_decodes_video(who)
    finally:
        factory.close()
