"""``callbox call`` and ``callbox answer``: running, live status, summary, exit code (their
arguments are in arguments.py).

The only peer module that prints. Exit codes: 0 the call happened and media flowed both ways
(when both sides send) or the user interrupted it; 1 a runtime failure (one line on stderr);
2 a usage error. The live status goes to stderr, refreshed in place, only on a terminal; the
summary goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from callbox.errors import PeerError
from callbox.peer.call import Call, EndReason, Outcome, Snapshot
from callbox.peer.media import Sink, open_source
from callbox.peer.signaling_client import SignalingClient
from callbox.peer.usage import UsageError, resolve_ca

# --- running ---------------------------------------------------------------------------------


def _rate(now: Snapshot, before: Snapshot | None, attr: str) -> str:
    if before is None or now.at <= before.at:
        return "-"
    bits = (getattr(now, attr) - getattr(before, attr)) * 8 / (now.at - before.at)
    return f"{bits / 1e6:.2f} Mbit/s" if bits >= 1e6 else f"{bits / 1e3:.0f} kbit/s"


_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` as it may go to a terminal: control characters (escape sequences, new lines)
    and bidirectional overrides shown as escapes, never interpreted."""
    return _UNSAFE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def status_line(now: Snapshot, before: Snapshot | None) -> str:
    rtt = "-" if now.rtt_ms is None else f"{now.rtt_ms:.1f} ms"
    frames = " ".join(f"{k} {v}" for k, v in now.frames_in.items())
    return (
        f"{now.state} | rtt {rtt} | in {_rate(now, before, 'bytes_in')}"
        f" | out {_rate(now, before, 'bytes_out')} | frames {frames}"
    )


@dataclass
class Session:
    """One run of ``call``/``answer``: what the summary and the exit code are made from."""

    args: argparse.Namespace
    caller: bool
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    call: Call | None = None
    outcome: Outcome | None = None
    interrupted: bool = False
    work: asyncio.Task[None] | None = None
    _status_tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def interrupt(self) -> None:
        """Ctrl-C / SIGTERM: end a running call normally, or abandon the wait."""
        self.interrupted = True
        if self.call is not None and self.call.connected_at is not None:
            self.call.stop()
        elif self.work is not None:
            self.work.cancel()

    async def run(self) -> None:
        args = self.args
        ca = resolve_ca(args.url, args.ca)
        source = open_source(args.send)
        try:
            async with (
                SignalingClient(
                    args.url, name=args.name, password=args.password, room=args.room, ca=ca
                ) as client,
                Call(
                    client,
                    source,
                    Sink(record=args.record),
                    notice=self.notice,
                    on_chat=self.chat,
                    relay_only=args.relay_only,
                ) as call,
            ):
                self.call = call
                for text in args.say:
                    call.say(text)
                if self.caller:
                    await call.place(answer_within=args.wait)
                else:
                    offer = await client.wait_for_offer(from_user=args.from_user, within=args.wait)
                    await call.answer(offer)
                await call.wait_connected(within=args.connect_timeout)
                self._start_status()
                self.outcome = await call.run(duration=args.duration)
                await self._stop_status()
                if self.outcome.reason in (EndReason.DURATION, EndReason.LOCAL_HANGUP):
                    await call.hangup()
        finally:
            source.stop()
            await self._stop_status()

    def notice(self, text: str) -> None:
        """One line on stderr for something the user should know mid-call."""
        self.err.write(f"\r\x1b[K{text}\n" if self.err.isatty() else f"callbox: {text}\n")
        self.err.flush()

    def chat(self, name: str, text: str) -> None:
        """A chat line from the other side, on stdout, as text."""
        if self.err.isatty():
            self.err.write("\r\x1b[K")  # the status line is redrawn within a second
            self.err.flush()
        self.out.write(f"{printable(name)}: {printable(text)}\n")
        self.out.flush()

    def _start_status(self) -> None:
        if self.err.isatty() and self.call is not None:
            task = asyncio.get_running_loop().create_task(self._status(self.call))
            self._status_tasks.add(task)
            task.add_done_callback(self._status_tasks.discard)

    async def _stop_status(self) -> None:
        for task in list(self._status_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.err.write("\r\x1b[K")
            self.err.flush()

    async def _status(self, call: Call) -> None:
        before: Snapshot | None = None
        while not call.ended:
            now = await call.snapshot()
            self.err.write("\r\x1b[K" + status_line(now, before))
            self.err.flush()
            before = now
            await asyncio.sleep(1.0)

    def summary(self) -> list[str]:
        call = self.call
        if call is None or call.connected_at is None:
            return []
        reason = self.outcome.reason if self.outcome else EndReason.LOCAL_HANGUP
        if self.interrupted:
            reason = EndReason.LOCAL_HANGUP
        who = f" with {call.remote_name}" if call.remote_name else ""
        length = time.monotonic() - call.connected_at
        lines = [f"call {call.offer_id}{who}: {reason} after {length:.1f} s"]
        if call.answered_at is not None:
            first = call.sink.first_frame_at()
            to_first = "-" if first is None else f"{(first - call.answered_at) * 1000:.0f} ms"
            lines.append(
                f"  connected {(call.connected_at - call.answered_at) * 1000:.0f} ms after the"
                f" answer; first frame after {to_first}"
            )
        width, height = call.sink.video_size()
        size = f" ({width}x{height})" if width else ""
        lines.append(
            f"  frames received: video={call.sink.frames('video')}"
            f" audio={call.sink.frames('audio')}{size}"
        )
        videos = [t for t in call.sink.tracks if t.kind == "video"]
        if len(videos) > 1:  # a renegotiation added one (a screen share)
            each = ", ".join(f"{t.width}x{t.height} ({t.frames} frames)" for t in videos)
            lines.append(f"  video tracks received: {each}")
        if self.args.record is not None:
            lines.append(f"  recorded to {self.args.record}")
        return lines

    def exit_code(self) -> tuple[int, str | None]:
        """The exit code and the one stderr line to print (None: nothing)."""
        call, outcome = self.call, self.outcome
        if self.interrupted or call is None or outcome is None:
            return 0, None
        if outcome.error is not None:
            return 1, f"callbox: error: {outcome.error}"
        missing = sorted(k for k in call.receiving() if call.sink.frames(k) == 0)
        if missing:
            who = call.remote_name or "the other party"
            return (
                1,
                f"callbox: error: no {' or '.join(missing)} received from {who} ({outcome.reason})",
            )
        if outcome.reason in (EndReason.REMOTE_HANGUP, EndReason.REMOTE_LEFT):
            who = outcome.by or call.remote_name or "the other party"
            verb = "hung up" if outcome.reason is EndReason.REMOTE_HANGUP else "disconnected"
            return 0, f"callbox: {who} {verb}"
        return 0, None


async def _main(session: Session) -> tuple[int, str | None]:
    loop = asyncio.get_running_loop()
    session.work = asyncio.current_task()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, session.interrupt)
    try:
        await session.run()
    except asyncio.CancelledError:
        if not session.interrupted:
            raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return session.exit_code()


def _quiet_media_warnings(verbosity: int) -> None:
    """aiortc warns about every video frame it fails to decode (packet loss on a busy link,
    a keyframe still to come): not something a user can act on, and not an error of the call.
    Shown with -v."""
    if verbosity == 0:
        logging.getLogger("aiortc.rtcrtpreceiver").setLevel(logging.ERROR)


def _run(args: argparse.Namespace, caller: bool) -> int:
    _quiet_media_warnings(getattr(args, "verbose", 0))
    session = Session(args, caller)
    try:
        code, message = asyncio.run(_main(session))
    except UsageError as exc:
        print(f"callbox: error: {exc}", file=sys.stderr)
        return 2
    except PeerError as exc:
        code, message = 1, f"callbox: error: {exc}"
    except KeyboardInterrupt:
        code, message = 0, None
    for line in session.summary():
        print(line)
    if message:
        print(message, file=sys.stderr)
    return code


def run_call(args: argparse.Namespace) -> int:
    """``callbox call``: post an offer, wait for an answer, run the call; the exit code.
    ``args`` have passed :func:`~callbox.peer.usage.check_arguments` (``callbox.cli.main``)."""
    return _run(args, caller=True)


def run_answer(args: argparse.Namespace) -> int:
    """``callbox answer``: wait for a matching offer, answer it, run the call; the exit code."""
    return _run(args, caller=False)
