"""The built-in STUN server of a real `callbox serve --stun-port`: raw binding requests over
UDP, what it ignores, and its stun: URL in the ICE servers."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import urllib.request

from aioice import stun

from tests.conftest import StartServer, free_port
from tests.coturn import free_udp_tcp_port


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def exchange(sock: socket.socket, data: bytes, port: int) -> bytes | None:
    """Send one datagram to the STUN port; the answer, or None if none came within 1 s."""
    sock.sendto(data, ("127.0.0.1", port))
    try:
        answer, _ = sock.recvfrom(2048)
    except TimeoutError:
        return None
    return answer


def binding_request() -> stun.Message:
    return stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)


def test_binding_request_gets_the_senders_address_and_port(start_server: StartServer) -> None:
    port = free_udp_port()
    start_server("--stun-port", str(port))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        sock.bind(("127.0.0.1", 0))
        mine = sock.getsockname()
        request = binding_request()
        raw = exchange(sock, bytes(request), port)
        assert raw is not None
        response = stun.parse_message(raw)  # checks the FINGERPRINT too
        assert response.message_method == stun.Method.BINDING
        assert response.message_class == stun.Class.RESPONSE
        assert response.transaction_id == request.transaction_id
        assert response.attributes["XOR-MAPPED-ADDRESS"] == mine
        assert "FINGERPRINT" in response.attributes
        # the address is XORed on the wire (RFC 5389 15.2), not in the clear
        assert struct.pack("!H", mine[1]) not in raw[20:]


def test_anything_but_a_binding_request_gets_no_answer(start_server: StartServer) -> None:
    port = free_udp_port()
    start_server("--stun-port", str(port))
    cookie = struct.pack("!I", stun.COOKIE)
    allocate = stun.Message(message_method=stun.Method.ALLOCATE, message_class=stun.Class.REQUEST)
    indication = stun.Message(
        message_method=stun.Method.BINDING, message_class=stun.Class.INDICATION
    )
    response = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.RESPONSE)
    no_cookie = bytearray(bytes(binding_request()))
    no_cookie[4:8] = b"\0\0\0\0"  # an RFC 3489 request: not answered
    garbage = [
        b"",
        b"hello",
        os.urandom(19),
        b"\x00\x01\x00\x08" + cookie + os.urandom(12),  # says 8 bytes of attributes, has none
        b"\x00\x01\x00\x04" + cookie + os.urandom(12) + b"\x00\x0d\x00\x02",  # short LIFETIME
        bytes(allocate),
        bytes(indication),
        bytes(response),
        bytes(no_cookie),
        b"\x80" + bytes(binding_request())[1:],  # first bits not zero: RTP, not STUN
    ]
    # all of it first, then one good request: its answer must be the only one that comes
    good = binding_request()
    answers = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for data in [*garbage, bytes(good)]:
            sock.sendto(data, ("127.0.0.1", port))
        while True:
            raw, _ = sock.recvfrom(2048)
            answers.append(stun.parse_message(raw))
            if answers[-1].transaction_id == good.transaction_id:
                break
    assert [a.transaction_id for a in answers] == [good.transaction_id]


def test_its_url_names_the_host_the_client_used(start_server: StartServer) -> None:
    port = free_udp_port()
    server = start_server("--stun-port", str(port))
    cases = [(None, "127.0.0.1"), ("callbox.example:8443", "callbox.example"), ("[::1]:1", "[::1]")]
    for host, named in cases:
        request = urllib.request.Request(server.url + "/config")
        if host is not None:
            request.add_header("Host", host)
        with urllib.request.urlopen(request, context=server.ssl_context(), timeout=5) as r:
            config = json.loads(r.read())
        assert config["iceServers"] == [{"urls": f"stun:{named}:{port}"}], host
    other = start_server("--stun-port", str(free_udp_port()), "--stun-host", "stun.example")
    _, body, _ = other.get("/config")
    assert json.loads(body)["iceServers"][0]["urls"].startswith("stun:stun.example:")


def test_a_busy_stun_port_is_one_error_line(start_server: StartServer) -> None:
    port = free_udp_tcp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", port))
        done = subprocess.run(
            [sys.executable, "-m", "callbox", "serve", "--host", "127.0.0.1"]
            + ["--port", str(free_port()), "--http", "--stun-port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"cannot listen for STUN on UDP 127.0.0.1:{port}" in lines[0]
