"""What coturn itself accepts: TURN REST credentials valid now, never expired or signed with
another secret (the fixture's contract; callbox-minted credentials: test_turn.py)."""

from __future__ import annotations

from tests.coturn import Coturn, allocate, coturn, stun_binding

__all__ = ["coturn"]


def test_coturn_answers_stun_with_the_clients_address(coturn: Coturn) -> None:
    mapped = stun_binding(coturn.host, coturn.port)
    assert mapped is not None and mapped[0] == "127.0.0.1"


async def test_valid_credentials_get_a_relay_over_udp_and_tcp(coturn: Coturn) -> None:
    username, password = coturn.credentials("alice", ttl=60)
    for transport in ("udp", "tcp"):
        result = await allocate(coturn.host, coturn.port, username, password, transport=transport)
        assert result.relayed is not None, result
        low, high = coturn.relay_ports
        assert result.relayed[0] == "127.0.0.1" and low <= result.relayed[1] <= high


async def test_expired_credentials_are_refused(coturn: Coturn) -> None:
    username, password = coturn.credentials("alice", ttl=-5)
    result = await allocate(coturn.host, coturn.port, username, password)
    assert result.relayed is None and result.code == 401, result


async def test_another_secret_is_refused(coturn: Coturn) -> None:
    username, password = coturn.credentials("alice", ttl=60, secret="not-the-secret")
    result = await allocate(coturn.host, coturn.port, username, password)
    assert result.relayed is None and result.code == 401, result
