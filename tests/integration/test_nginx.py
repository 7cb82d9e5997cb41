"""docs/deploy/nginx.conf, run for real: two nodes on one Redis behind nginx, reached by
websocket and by long-polling (which needs the config's stickiness)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from callbox.certs import ensure_server_cert
from tests.conftest import RunningServer, StartServer, free_port
from tests.integration.sio_client import ANSWER, OFFER, Clients, cand
from tests.nginx import Nginx

DOC = Path(__file__).parents[2] / "docs" / "deploy" / "nginx.conf"


@pytest.fixture
def backend() -> str:
    return "redis"


def render(doc: str, listen: int, nodes: list[int], cert: Path, key: Path) -> str:
    """The documented config with this test's ports and certificate (nothing else)."""
    text = doc.replace("listen 443 ssl;", f"listen 127.0.0.1:{listen} ssl;")
    text = text.replace("server 127.0.0.1:8001;", f"server 127.0.0.1:{nodes[0]};")
    text = text.replace("server 127.0.0.1:8002;", f"server 127.0.0.1:{nodes[1]};")
    text = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", text)
    return re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", text)


@pytest.fixture
def behind_nginx(
    start_server: StartServer, shared_data_dir: Path, tmp_path: Path
) -> Iterator[tuple[RunningServer, list[RunningServer]]]:
    proxied = ("--http", "--trusted-proxy", "127.0.0.1")
    nodes = [start_server(*proxied), start_server(*proxied)]
    served = ensure_server_cert(shared_data_dir)
    port = free_port()
    config = render(
        DOC.read_text(), port, [n.port for n in nodes], served.cert_path, served.key_path
    )
    nginx = Nginx(tmp_path, config, [port]).start()
    front = replace(nodes[0], url=f"https://127.0.0.1:{port}", port=port, http=False)
    yield front, nodes
    nginx.stop()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_call_through_the_documented_nginx_config(
    behind_nginx: tuple[RunningServer, list[RunningServer]], transport: str
) -> None:
    front, _ = behind_nginx
    clients = Clients(front, transports=[transport])
    try:
        alice = await clients(userName="alice")
        bob = await clients(userName="bob")
        ack = await alice.call("newOffer", OFFER)
        await alice.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(1)})
        buffered = await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
        assert buffered == [cand(1)]
        await alice.wait_for("answerResponse")
        await bob.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(2)})
        assert await alice.wait_for("receivedIceCandidateFromServer") == cand(2)
        await bob.call("hangup", None)
        assert (await alice.wait_for("callEnded"))["reason"] == "hangup"
    finally:
        await clients.close()
