"""Property-based fuzzing of every client event against ONE real `callbox serve` process.

Hypothesis drives two connected fuzz clients with random and adversarial payloads (wrong
types, huge and odd unicode strings, binary, deep nesting, missing fields, extra arguments),
random event names (reserved ones too) and random orders, with and without acks, while an
honest caller and callee in the same room keep placing calls. The server must stay up, answer
every bad input with an error, leave the honest calls untouched (every candidate exactly once,
in order) and return to its baseline of asyncio tasks once everyone has left.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.conftest import RunningServer
from tests.integration.server_proc import launch, metric
from tests.integration.sio_client import ANSWER, OFFER, Client, cand

# Sized for CI on a busy 2-core machine, to finish well under half of pytest's 120 s timeout
# with the other core busy. The cost is CPU per example, in this process as much as in the
# server: hypothesis drawing the steps (~half of it) and the client sending them, both under
# coverage's tracer, which alone makes a run 2-5x slower. 150 examples took 3.4 s alone, 7 s
# with coverage, 29 s with coverage on a core shared with 3 busy loops, and 94 s in a whole
# suite with a CPU hog (78 % of the timeout). The examples are the same every run (below), so
# more of them in CI buy little: 80. Longer runs: CALLBOX_FUZZ_EXAMPLES=20000, and
# CALLBOX_FUZZ_RANDOM=1 for examples other than CI's (bench/README.md).
EXAMPLES = int(os.environ.get("CALLBOX_FUZZ_EXAMPLES", "80"))
# CI draws the same examples every run (derandomize): a failure reproduces, and nothing the
# data generation depends on changes between runs. Without a shrink phase hypothesis reports
# the failing example as found: replaying examples against a live server, whose state has
# moved on, would not fail the same way (hypothesis would call that flaky).
RANDOM = os.environ.get("CALLBOX_FUZZ_RANDOM") == "1"
ROOM = "fuzz"
CODES = {
    "unauthorized", "invalid_payload", "too_large", "not_found", "offer_taken", "busy",
    "not_in_call", "forbidden", "rate_limited", "unavailable",
}  # fmt: skip
CLIENT_EVENTS = (
    "newOffer",
    "sendIceCandidateToSignalingServer",
    "newAnswer",
    "hangup",
    "renegotiate",
)
KNOWN = object()  # stands for an offerId a fuzz client really got
T = TypeVar("T")


class LoopThread:
    """An event loop running in its own thread, so the honest calls progress while hypothesis
    generates examples in the test's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return self.submit(coro).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # rate limits out of the way so the payloads reach the parsers (they are tested elsewhere)
    server = launch(
        tmp_path_factory.mktemp("fuzz-data"),
        tmp_path_factory.mktemp("fuzz-log"),
        "--event-rate", "1000000", "--event-burst", "1000000",
    )  # fmt: skip
    yield server
    assert server.stop() == 0
    assert "Traceback" not in server.log(), server.log()[-5000:]


# --- strategies ----------------------------------------------------------------------------

big = st.sampled_from([1_100, 70_000, 140_000]).map(lambda n: "a" * n)
odd_text = st.text(max_size=40) | st.sampled_from(["\ud800", "\u202e", "\x00", "<img onerror>"])
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63),
    st.floats(),
    odd_text,
    big,
)
junk = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _nested(depth: int) -> object:
    value: object = []
    for _ in range(depth):
        value = [value]
    return value


deep = st.integers(min_value=50, max_value=300).map(_nested)  # the client recurses too
names: st.SearchStrategy[object] = st.one_of(
    st.sampled_from(["fuzz-a", "fuzz-b", "guest", ""]), odd_text, junk
)
offer_ids: st.SearchStrategy[object] = st.one_of(st.just(KNOWN), odd_text, junk)
sdp: st.SearchStrategy[object] = st.one_of(
    st.sampled_from([OFFER["sdp"], ANSWER["sdp"]]), odd_text.map(lambda t: "v=0" + t), big, junk
)


def description(kind: str) -> st.SearchStrategy[object]:
    types: st.SearchStrategy[object] = st.one_of(
        st.sampled_from([kind, "offer", "answer", "pranswer"]), junk
    )
    shaped = st.fixed_dictionaries({}, optional={"type": types, "sdp": sdp})
    return st.just({"type": kind, "sdp": OFFER["sdp"] if kind == "offer" else ANSWER["sdp"]}) | (
        shaped | junk
    )


candidate = st.fixed_dictionaries(
    {},
    optional={
        "candidate": st.sampled_from([cand(1)["candidate"], "", "candidate:x\r\ny"])
        | odd_text
        | big
        | junk,
        "sdpMid": st.sampled_from(["0", "1"]) | junk,
        "sdpMLineIndex": st.integers(-2, 2000) | junk,
        "usernameFragment": odd_text | junk,
    },
)
payloads: dict[str, st.SearchStrategy[object]] = {
    "newOffer": description("offer"),
    "sendIceCandidateToSignalingServer": st.fixed_dictionaries(
        {},
        optional={
            "iceCandidate": candidate | st.just(cand(7)) | junk,
            "iceUserName": names,
            "didIOffer": st.booleans() | junk,
            "offerId": offer_ids,
        },
    )
    | junk,
    "newAnswer": st.fixed_dictionaries(
        {},
        optional={
            "offerId": offer_ids,
            "offererUserName": names,
            "answer": description("answer"),
        },
    )
    | junk,
    "hangup": st.none() | st.fixed_dictionaries({}, optional={"offerId": offer_ids}) | junk,
    "renegotiate": st.fixed_dictionaries(
        {},
        optional={
            "offerId": offer_ids,
            "description": description("offer") | description("answer"),
        },
    )
    | junk,
}
other_events = st.sampled_from(
    ["connect", "disconnect", "connect_error", "*", "message", "welcome", "signalingError"]
) | st.text(max_size=20)


@dataclass
class Step:
    who: int
    event: str
    payload: object
    ack: bool
    extra_args: bool = False
    deep: bool = False


@st.composite
def steps(draw: st.DrawFn) -> Step:
    who = draw(st.integers(0, 1))
    if draw(st.integers(0, 9)) < 8:
        event = draw(st.sampled_from(CLIENT_EVENTS))
        payload = draw(payloads[event])
    else:
        event = draw(other_events)
        payload = draw(junk)
    step = Step(who, event, payload, ack=draw(st.booleans()))
    choice = draw(st.integers(0, 19))
    if choice == 0:
        step.extra_args = True
        step.payload = (payload, draw(junk))
    elif choice == 1:
        step.deep = True
        step.payload = draw(deep)
    elif draw(st.integers(0, 99)) == 37:  # not 0: hypothesis draws its bounds often
        # bytes make a binary packet, which costs the sender its connection (and the fuzzer
        # a reconnect): a few per run
        step.payload = {"blob": draw(st.binary(max_size=32)), "rest": payload}
    return step


# --- what must hold ------------------------------------------------------------------------


def certainly_bad(step: Step) -> bool:
    if step.extra_args or step.deep or step.event not in CLIENT_EVENTS:
        return True
    if step.event == "hangup":
        return step.payload is not None and not isinstance(step.payload, dict)
    return not isinstance(step.payload, dict)


def check_reply(step: Step, reply: Any) -> None:
    if isinstance(reply, dict) and "error" in reply:
        error = reply["error"]
        assert error["code"] in CODES and isinstance(error["message"], str), reply
        return
    assert not certainly_bad(step), (step, reply)
    if step.event == "newOffer":
        assert isinstance(reply, dict) and isinstance(reply["offerId"], str), reply
    elif step.event == "newAnswer":
        assert isinstance(reply, list), reply
    else:
        assert reply == {"ok": True}, (step, reply)


def _has_bytes(value: object) -> bool:
    if isinstance(value, bytes):
        return True
    if isinstance(value, dict):
        return any(_has_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_bytes(v) for v in value)
    return False


@dataclass
class Fuzzers:
    server: RunningServer
    clients: list[Client] = field(default_factory=list)
    known: list[str] = field(default_factory=lambda: ["none-yet"])
    examples: int = 0
    #: clients the server closed for sending binary (the protocol is JSON only)
    dropped: int = 0

    async def connect(self) -> None:
        for name in ("fuzz-a", "fuzz-b"):
            self.clients.append(await Client(self.server).connect(userName=name, room=ROOM))

    async def _binary(self, who: int, event: str, payload: object) -> None:
        """A payload with bytes goes as a binary socket.io packet, which the server refuses by
        closing the connection (docs/protocol.md): it must, and the fuzzer comes back."""
        client = self.clients[who]
        assert client.sio is not None
        await client.sio.emit(event, payload)
        async with asyncio.timeout(10):
            await client.disconnected.wait()
        await client.close()
        self.dropped += 1
        name = ("fuzz-a", "fuzz-b")[who]
        self.clients[who] = await Client(self.server).connect(userName=name, room=ROOM)

    def _fill(self, value: object) -> object:
        if value is KNOWN:
            return self.known[-1]
        if isinstance(value, dict):
            return {k: self._fill(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return tuple(self._fill(v) for v in value)
        return value

    async def run(self, plan: list[Step]) -> None:
        self.examples += 1
        bad_without_ack = [0, 0]
        errors_before = [len(c.events["signalingError"]) for c in self.clients]
        for step in plan:
            client = self.clients[step.who]
            assert client.sio is not None and client.sio.connected, "a fuzz client was dropped"
            payload = self._fill(step.payload)
            if _has_bytes(payload):
                await self._binary(step.who, step.event, payload)
                errors_before[step.who], bad_without_ack[step.who] = 0, 0
            elif step.ack:
                reply = await client.sio.call(step.event, payload, timeout=10)
                check_reply(step, reply)
                if step.event == "newOffer" and isinstance(reply, dict) and "offerId" in reply:
                    self.known.append(reply["offerId"])
            else:
                await client.sio.emit(step.event, payload)
                bad_without_ack[step.who] += certainly_bad(step)
        for n, client in enumerate(self.clients):
            assert client.sio is not None
            # a round trip: everything sent before it was handled
            sync = await client.sio.call("fuzzSync", None, timeout=10)
            assert sync["error"]["code"] == "invalid_payload"
            want = errors_before[n] + bad_without_ack[n]
            async with asyncio.timeout(5):
                while len(client.events["signalingError"]) < want:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            assert all(e["code"] in CODES for e in client.events["signalingError"])

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients))


async def honest_calls(server: RunningServer, stop: asyncio.Event) -> int:
    """Calls placed back to back until ``stop``: each must go exactly as the protocol says."""
    caller = await Client(server).connect(userName="honest-caller-q7", room=ROOM)
    callee = await Client(server).connect(userName="honest-callee-q7", room=ROOM)
    received = "receivedIceCandidateFromServer"
    calls = 0
    try:
        while not stop.is_set() or calls == 0:
            ack = await caller.call("newOffer", OFFER)
            for n in range(10):  # trickled before the answer: buffered on the offer
                sent = await caller.call(
                    "sendIceCandidateToSignalingServer", {"iceCandidate": cand(n)}
                )
                assert sent == {"ok": True}, sent
            reply = await callee.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
            assert reply == [cand(n) for n in range(10)], reply
            await caller.wait_for("answerResponse", calls + 1)
            at_caller, at_callee = len(caller.events[received]), len(callee.events[received])
            for n in range(10, 15):
                await caller.emit("sendIceCandidateToSignalingServer", {"iceCandidate": cand(n)})
            for n in range(100, 110):
                await callee.emit("sendIceCandidateToSignalingServer", {"iceCandidate": cand(n)})
            await callee.wait_for(received, at_callee + 5, wait=10)
            await caller.wait_for(received, at_caller + 10, wait=10)
            assert callee.events[received][at_callee:] == [cand(n) for n in range(10, 15)]
            assert caller.events[received][at_caller:] == [cand(n) for n in range(100, 110)]
            assert await caller.call("hangup") == {"ok": True}
            ended = await callee.wait_for("callEnded", calls + 1, wait=10)
            assert ended == {"offerId": ack["offerId"], "reason": "hangup", "by": caller.user_name}
            calls += 1
        await asyncio.sleep(0.3)  # nothing late, nothing twice
        assert len(callee.events[received]) == 5 * calls
        assert len(caller.events[received]) == 10 * calls
        assert caller.events["signalingError"] == callee.events["signalingError"] == []
        assert caller.events["callEnded"] == []
        return calls
    finally:
        await caller.close()
        await callee.close()


async def _connect_and_leave(server: RunningServer) -> None:
    client = await Client(server).connect(userName="warm-up")
    await client.close()
    await asyncio.sleep(1)  # its connection's tasks end


@pytest.mark.slow
def test_fuzzed_events_never_break_the_server_or_an_honest_call(
    fuzz_server: RunningServer,
) -> None:
    loop = LoopThread()
    stop = asyncio.Event()
    fuzzers = Fuzzers(fuzz_server)
    try:
        # a first client starts engine.io's service task, which lives as long as the server
        loop.run(_connect_and_leave(fuzz_server))
        base_tasks = metric(fuzz_server, "callbox_asyncio_tasks", 'kind="other"')
        loop.run(fuzzers.connect())
        honest = loop.submit(honest_calls(fuzz_server, stop))

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=not RANDOM,
            phases=(Phase.explicit, Phase.generate),
            suppress_health_check=list(HealthCheck),
        )
        @given(st.lists(steps(), min_size=1, max_size=5))
        # a binary packet at least once, whatever the examples drawn (they rarely are)
        @example([Step(0, "newOffer", {"blob": b"\x00", "rest": OFFER}, ack=False)])
        def fuzz(plan: list[Step]) -> None:
            if honest.done():
                honest.result()  # raises what went wrong with the honest call
            loop.run(fuzzers.run(plan))

        started = time.monotonic()
        fuzz()
        elapsed = time.monotonic() - started
        loop.loop.call_soon_threadsafe(stop.set)
        calls = honest.result(60)
        assert calls >= 1
        print(
            f"\nfuzz: {fuzzers.examples} examples in {elapsed:.1f}s; {calls} honest calls; "
            f"{fuzzers.dropped} fuzz clients closed by the server for binary packets"
        )
        assert fuzzers.dropped > 0  # the examples did try binary
        assert fuzz_server.process.poll() is None
        assert fuzz_server.get("/healthz")[0] == 200
        loop.run(fuzzers.close())
    finally:
        loop.close()
    # everyone left: no session, offer, bucket or task is left behind
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        leftovers = (
            metric(fuzz_server, "callbox_asyncio_tasks", 'kind="other"') - base_tasks,
            metric(fuzz_server, "callbox_sessions"),
            sum(
                metric(fuzz_server, "callbox_store_entries", f'table="{t}"')
                for t in ("sessions", "names", "offers", "bound", "pending")
            ),
        )
        if leftovers == (0, 0, 0):
            break
        time.sleep(0.1)
    assert leftovers == (0, 0, 0), f"tasks (over {base_tasks}), sessions, entries: {leftovers}"
