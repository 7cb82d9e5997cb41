"""The built-in STUN server's answer to one datagram (server/stun.py), without sockets."""

from __future__ import annotations

from aioice import stun

from callbox.server.stun import Address, binding_response


def request() -> stun.Message:
    return stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)


def test_ipv4_ipv6_and_ipv4_mapped_senders() -> None:
    cases: list[tuple[Address, tuple[str, int]]] = [
        (("192.0.2.7", 40000), ("192.0.2.7", 40000)),
        (("2001:db8::7", 40001, 0, 0), ("2001:db8::7", 40001)),
        (("::ffff:192.0.2.8", 40002, 0, 0), ("192.0.2.8", 40002)),  # a dual-stack socket
        (("fe80::1%eth0", 40003, 0, 2), ("fe80::1", 40003)),
    ]
    for addr, mapped in cases:
        sent = request()
        raw = binding_response(bytes(sent), addr)
        assert raw is not None
        answer = stun.parse_message(raw)
        assert answer.transaction_id == sent.transaction_id
        assert answer.attributes["XOR-MAPPED-ADDRESS"] == mapped


def test_a_request_with_attributes_is_answered_too() -> None:
    sent = request()
    sent.attributes["SOFTWARE"] = "test"
    sent.add_fingerprint()
    assert binding_response(bytes(sent), ("192.0.2.7", 1)) is not None
    broken = bytearray(bytes(sent))
    broken[-1] ^= 1  # a wrong FINGERPRINT
    assert binding_response(bytes(broken), ("192.0.2.7", 1)) is None
