"""callbox's engine.io server: python-engineio's, with lighter sockets (server/sio.py makes it
through python-socketio's ``_engineio_server_class``). Each reach into python-engineio's
internals is explained where it is made.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable
from typing import Any

import engineio
from aiohttp.web import WebSocketResponse

from callbox.server.outqueue import OutQueue
from callbox.server.pings import Pings


class EngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """Remembers, per engine.io session, the aiohttp request of its websocket (an upgrade
    comes on a new HTTP connection, whose transport the send budget must read). Each
    socket's queue is an :class:`~callbox.server.outqueue.OutQueue` and its ping timer a
    timer (:class:`~callbox.server.pings.Pings`): lighter for idle connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.websocket_requests: dict[str, Any] = {}
        #: called with a socket's sid when its websocket (an upgrade) arrives
        self.upgraded: Callable[[str], None] = lambda sid: None
        self.pings = Pings()

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        """A message goes to its handler (python-socketio's, a coroutine) as engine.io would
        run it inline, without engine.io's closure and coroutine check per message; every
        other event, and handlers run as tasks, go through engine.io's own."""
        handler = self.handlers.get(event) if event == "message" else None
        if handler is None or kwargs.get("run_async"):
            return await super()._trigger_event(event, *args, **kwargs)
        try:
            return await handler(*args)
        except asyncio.CancelledError:
            return None
        except Exception:  # as engine.io: logged, the socket goes on
            self.logger.exception("message async handler error")
            return None

    def create_queue(self, *args: Any, **kwargs: Any) -> OutQueue:
        if args or kwargs:  # engine.io makes its sockets' queues without arguments
            raise TypeError(f"OutQueue takes no arguments, got {args!r} {kwargs!r}")
        return OutQueue()

    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs and self.pings.start(target):
            return None
        return super().start_background_task(target, *args, **kwargs)

    def attach(self, app: Any, engineio_path: str = "engine.io") -> None:
        super().attach(app, engineio_path)
        # a signal, not a wrapper around handle_request: a wrapper's frame would live as long
        # as each websocket does (~0.5 KB per idle connection)
        app.on_response_prepare.append(self._websocket_prepared)

    async def _websocket_prepared(self, request: Any, response: Any) -> None:
        """An upgrade's websocket is about to answer 101: its socket's transport changes."""
        if not isinstance(response, WebSocketResponse):
            return
        query = request.query_string or ""
        if "sid=" not in query:  # a new engine.io session, straight on a websocket
            return
        sid = urllib.parse.parse_qs(query).get("sid", [""])[0]
        if sid in self.sockets:
            self.websocket_requests[sid] = request
            self.upgraded(sid)
