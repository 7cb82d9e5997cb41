"""Limits, offer expiry, JWT checks and the new settings, with injected clocks, no sockets."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from callbox.config import ServerSettings, add_serve_arguments, serve_settings_from
from callbox.errors import ConfigError
from callbox.server.app import sweep_interval
from callbox.server.auth import Authenticator
from callbox.server.http import same_origin
from callbox.server.routing import estimate, weigh
from callbox.signaling import Auth, ErrorCode, Limits, MemoryStore, SignalingError, Switchboard
from callbox.signaling.limits import ConnectGuard, ConnectionCounter, RateLimiter, address_key
from callbox.signaling.model import parse_auth
from tests.unit.boards import BySid

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}
SECRET = "a-test-secret-that-is-long-enough-for-hs256"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _refused(error: pytest.ExceptionInfo[SignalingError]) -> tuple[ErrorCode, str | None]:
    return error.value.code, error.value.limit


# --- token bucket and connection counter -------------------------------------------------


def test_token_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    rates = RateLimiter(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        rates.take("a")
    with pytest.raises(SignalingError) as info:
        rates.take("a")
    assert _refused(info) == (ErrorCode.RATE_LIMITED, "event_rate")
    rates.take("b")  # another session has its own bucket
    clock.now += 0.5  # one token back
    rates.take("a")
    with pytest.raises(SignalingError):
        rates.take("a")
    clock.now += 100  # never more than the burst
    for _ in range(3):
        rates.take("a")
    with pytest.raises(SignalingError):
        rates.take("a")
    rates.forget("a")
    rates.forget("b")
    assert len(rates) == 0


def test_connection_counter_limits_each_address() -> None:
    conns = ConnectionCounter(2)
    conns.acquire("s1", "10.0.0.1")
    conns.acquire("s2", "10.0.0.1")
    conns.acquire("s2", "10.0.0.1")  # the same sid twice counts once
    with pytest.raises(SignalingError) as info:
        conns.acquire("s3", "10.0.0.1")
    assert _refused(info) == (ErrorCode.RATE_LIMITED, "connections_per_ip")
    conns.acquire("s4", "10.0.0.2")
    conns.release("s1")
    conns.release("s1")  # idempotent
    conns.acquire("s3", "10.0.0.1")
    for sid in ("s2", "s3", "s4"):
        conns.release(sid)
    assert len(conns) == 0


def test_weigh_is_the_json_size_and_estimate_close_to_it() -> None:
    import json

    values = ({"a": "é" * 100, "b": [1, 2, {"c": None}]}, ["x" * 5000], "s", 3, None)
    for value in values:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        assert weigh(value) == len(text.encode())
        assert len(text) <= estimate(value) <= len(text) + 32
    assert weigh({"n": 1 << 70}) == estimate({"n": 1 << 70})  # past orjson: the estimate


# --- waiting offers per room, offer expiry ------------------------------------------------


async def _board(clock: FakeClock, **limits: int) -> tuple[BySid, MemoryStore]:
    store = MemoryStore()
    ids = (f"offer{n}" for n in itertools.count(1))
    board = BySid(
        Switchboard(store, limits=Limits(**limits), clock=clock, new_id=lambda: next(ids))
    )
    return board, store


async def _join(board: BySid, sid: str, room: str = "lobby") -> None:
    await board.join(sid, Auth(user_name=sid, password=None, room=room))


async def test_waiting_offers_per_room_are_limited_with_busy() -> None:
    board, _ = await _board(FakeClock(), max_waiting_offers=2)
    for sid in ("a", "b", "c", "d"):
        await _join(board, sid)
    await _join(board, "x", room="other")
    await board.new_offer("a", OFFER)
    await board.new_offer("b", OFFER)
    with pytest.raises(SignalingError) as info:
        await board.new_offer("c", OFFER)
    assert _refused(info) == (ErrorCode.BUSY, "waiting_offers")
    await board.new_offer("x", OFFER)  # other rooms are not affected
    await board.answer("d", {"offerId": "offer1", "answer": ANSWER})  # answered: not waiting
    await board.new_offer("c", OFFER)


async def test_offers_expire_after_the_ttl_by_the_injected_clock() -> None:
    clock = FakeClock()
    board, store = await _board(clock)
    for sid in ("a", "b", "c"):
        await _join(board, sid)
    await board.new_offer("a", OFFER)  # offer1 at t=1000
    clock.now += 100
    await board.new_offer("b", OFFER)  # offer2 at t=1100
    await board.answer("c", {"offerId": "offer2", "answer": ANSWER})
    clock.now = 1000 + 599
    assert await board.expire_offers(600) == []
    clock.now = 1000 + 601
    [removed] = await board.expire_offers(600)
    assert (removed.event, removed.to_room, removed.skip_sid) == ("offerRemoved", "lobby", None)
    assert removed.payload == {"offerId": "offer1", "reason": "expired"}
    clock.now += 10_000
    assert await board.expire_offers(600) == []  # an answered call never expires
    assert store.counts()["offers"] == 1
    # the offerer is free to offer again, and the expired offer cannot be answered
    await board.new_offer("a", OFFER)
    await _join(board, "d")
    with pytest.raises(SignalingError) as info:
        await board.answer("d", {"offerId": "offer1", "answer": ANSWER})
    assert info.value.code is ErrorCode.NOT_FOUND


def test_sweep_interval_follows_the_ttl_within_bounds() -> None:
    assert sweep_interval(1) == 0.25
    assert sweep_interval(600) == 10
    assert sweep_interval(0.1) == 0.05


# --- JWT ---------------------------------------------------------------------------------


def _auth(token: str | None, room: str | None = None, user: str | None = "ignored") -> Auth:
    data: dict[str, object] = {"userName": user}
    if token is not None:
        data["token"] = token
    if room is not None:
        data["room"] = room
    return parse_auth(data)


def _token(key: object, algorithm: str = "HS256", **claims: object) -> str:
    payload: dict[str, object] = {"sub": "alice", "exp": int(time.time()) + 60, **claims}
    return jwt.encode(payload, key, algorithm=algorithm)  # type: ignore[arg-type]


def _hs256_by_hand(key: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": "alice", "exp": int(time.time()) + 60}).encode())
    signature = hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


def _code(checker: Authenticator, auth: Auth) -> ErrorCode:
    with pytest.raises(SignalingError) as info:
        checker.check(auth)
    return info.value.code


def test_jwt_hs256_sub_becomes_the_name_and_bad_tokens_are_unauthorized() -> None:
    checker = Authenticator(ServerSettings(jwt_secret=SECRET))
    ok = checker.check(_auth(_token(SECRET)))
    assert (ok.user_name, ok.room, ok.token) == ("alice", "lobby", None)
    assert _code(checker, _auth(None)) is ErrorCode.UNAUTHORIZED
    assert _code(checker, _auth("not-a-token")) is ErrorCode.UNAUTHORIZED
    expired = _token(SECRET, exp=int(time.time()) - 60)
    assert _code(checker, _auth(expired)) is ErrorCode.UNAUTHORIZED
    assert _code(checker, _auth(_token(SECRET + "x"))) is ErrorCode.UNAUTHORIZED
    no_exp = jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    assert _code(checker, _auth(no_exp)) is ErrorCode.UNAUTHORIZED
    bad_sub = _token(SECRET, sub="\x00")
    assert _code(checker, _auth(bad_sub)) is ErrorCode.UNAUTHORIZED
    # "none" and other algorithms are refused
    unsigned = jwt.encode(
        {"sub": "a", "exp": int(time.time()) + 60},
        None,  # type: ignore[arg-type]
        algorithm="none",
    )
    assert _code(checker, _auth(unsigned)) is ErrorCode.UNAUTHORIZED


def test_jwt_room_claim_restricts_the_room() -> None:
    checker = Authenticator(ServerSettings(jwt_secret=SECRET))
    token = _token(SECRET, room="red")
    assert checker.check(_auth(token)).room == "red"  # no room asked: the claim's
    assert checker.check(_auth(token, room="red")).room == "red"
    assert _code(checker, _auth(token, room="blue")) is ErrorCode.FORBIDDEN
    assert _code(checker, _auth(_token(SECRET, room="no spaces"))) is ErrorCode.UNAUTHORIZED


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_jwt_public_keys_verify_rs256_and_es256(kind: str) -> None:
    def make() -> tuple[object, str]:
        if kind == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
        return ec.generate_private_key(ec.SECP256R1()), "ES256"

    (private, algorithm), (other, _) = make(), make()
    pem = private.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    checker = Authenticator(ServerSettings(jwt_public_key=pem.decode()))
    assert checker.mode == "jwt"
    assert checker.check(_auth(_token(private, algorithm))).user_name == "alice"
    assert _code(checker, _auth(_token(other, algorithm))) is ErrorCode.UNAUTHORIZED
    # an HS256 token "signed" with the public key itself (algorithm confusion) is refused
    assert _code(checker, _auth(_hs256_by_hand(pem))) is ErrorCode.UNAUTHORIZED


def test_password_mode_still_compares() -> None:
    checker = Authenticator(ServerSettings(password="s3cret"))
    assert checker.mode == "password"
    assert checker.check(parse_auth({"password": "s3cret"})).room == "lobby"
    assert _code(checker, parse_auth({"password": "nope"})) is ErrorCode.UNAUTHORIZED
    assert Authenticator(ServerSettings()).mode == "open"


# --- settings and origins ----------------------------------------------------------------


def _settings(*argv: str, env: dict[str, str] | None = None) -> ServerSettings:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return serve_settings_from(parser.parse_args(list(argv)), env or {})


def test_limit_flags_and_defaults() -> None:
    default = _settings()
    assert (default.offer_ttl, default.max_message_bytes) == (600.0, 128 * 1024)
    assert (default.event_rate, default.event_burst) == (20.0, 100)
    assert (default.max_waiting_offers, default.max_connections_per_ip) == (100, 50)
    s = _settings(
        "--offer-ttl", "1", "--max-message-bytes", "4096", "--max-waiting-offers", "3",
        "--event-rate", "5", "--event-burst", "7", "--max-connections-per-ip", "9",
        "--allowed-origin", "https://App.example:8443/", "--allowed-origin", "http://x.test",
    )  # fmt: skip
    assert (s.offer_ttl, s.max_message_bytes, s.max_waiting_offers) == (1.0, 4096, 3)
    assert (s.event_rate, s.event_burst, s.max_connections_per_ip) == (5.0, 7, 9)
    assert s.allowed_origins == ("https://app.example:8443", "http://x.test")
    env = _settings(env={"CALLBOX_JWT_SECRET": SECRET, "CALLBOX_EVENT_BURST": "11"})
    assert (env.jwt_secret, env.event_burst) == (SECRET, 11)


@pytest.mark.parametrize(
    "argv",
    [
        ["--allowed-origin", "app.example"],
        ["--allowed-origin", "https://app.example/path"],
        ["--offer-ttl", "0"],
        ["--event-rate", "nan"],
        ["--max-connections-per-ip", "0"],
        ["--password", "x", "--jwt-secret", SECRET],
        ["--jwt-public-key", "/nonexistent/key.pem"],
    ],
)
def test_bad_limit_settings_are_refused(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        _settings(*argv)


def test_jwt_public_key_must_be_a_pem_public_key(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("not a key")
    with pytest.raises(ConfigError, match="PEM"):
        _settings("--jwt-public-key", str(path))


def test_same_origin_is_extended_by_allowed_origins() -> None:
    refused: list[str] = []
    settings = ServerSettings(allowed_origins=("https://app.example",))
    allowed = same_origin(settings, refused.append)

    def environ() -> dict[str, object]:
        return {"HTTP_HOST": "127.0.0.1:8443"}

    assert allowed("https://127.0.0.1:8443", environ())
    assert allowed("https://app.example", environ())
    assert not allowed("https://evil.example", environ())
    refusing = environ()
    assert not allowed("http://127.0.0.1:8443", refusing)  # wrong scheme
    assert not allowed("http://127.0.0.1:8443", refusing)  # asked twice for one request
    assert refused == ["https://evil.example", "http://127.0.0.1:8443"]


# --- limits keyed by what a client cannot reset --------------------------------------------


def test_addresses_count_by_ipv4_or_ipv6_prefix() -> None:
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("2001:db8:1:2:3:4:5:6") == address_key("2001:db8:1:2:ffff::1")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("unknown") == "unknown"


def test_a_rate_bucket_carried_over_a_resume_does_not_refill() -> None:
    clock = FakeClock()
    rates = RateLimiter(1, 3, clock=clock)
    assert rates.snapshot("s") is None
    for _ in range(3):
        rates.take("s")
    tokens = rates.snapshot("s")
    assert tokens is not None and tokens < 1
    rates.forget("s")
    elsewhere = RateLimiter(1, 3, clock=FakeClock())
    elsewhere.restore("s", tokens, elapsed=0.5)  # half a second later, on another node
    with pytest.raises(SignalingError):
        elsewhere.take("s")
    elsewhere.restore("s", tokens, elapsed=100)  # refilled only up to the burst
    for _ in range(3):
        elsewhere.take("s")
    with pytest.raises(SignalingError):
        elsewhere.take("s")


def test_held_sessions_count_against_the_address() -> None:
    conns = ConnectionCounter(3)
    conns.acquire("a", "ip", held=1)
    conns.acquire("b", "ip", held=1)
    with pytest.raises(SignalingError) as info:
        conns.acquire("c", "ip", held=1)
    assert info.value.limit == "connections_per_ip"
    assert conns.count("ip") == 2 and conns.count("other") == 0


def test_failed_connects_back_off_exponentially_per_address() -> None:
    clock = FakeClock()
    guard = ConnectGuard(free=2, window=60, max_block=8, clock=clock)
    for _ in range(2):
        guard.check("ip")
        guard.failed("ip")
    guard.check("ip")  # two free failures
    blocks = []
    for _ in range(5):
        guard.failed("ip")
        with pytest.raises(SignalingError) as info:
            guard.check("ip")
        assert (info.value.code, info.value.limit) == (ErrorCode.RATE_LIMITED, "connect_failures")
        start = clock.now
        while True:
            clock.now += 0.25
            try:
                guard.check("ip")
                break
            except SignalingError:
                pass
        blocks.append(clock.now - start)
    assert blocks == [1.0, 2.0, 4.0, 8.0, 8.0]
    guard.check("other")  # other addresses are not affected
    clock.now += 120  # a quiet window: free failures again
    guard.failed("ip")
    guard.check("ip")


def test_the_connect_guard_forgets_the_oldest_addresses_beyond_its_capacity() -> None:
    guard = ConnectGuard(free=0, capacity=2, clock=FakeClock())
    for address in ("a", "b", "c"):
        guard.failed(address)
    assert len(guard) == 2
    guard.check("a")  # forgotten
    with pytest.raises(SignalingError):
        guard.check("c")
