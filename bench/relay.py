"""A websocket relay with no logic, for the floor of bench/browser_call.py.

GET / serves bench/floor.html; GET /ws?room=R relays every text message to every other
socket of room R, as is. No TLS (http://127.0.0.1 is a secure context for cameras), like
the callbox it is compared with (`callbox serve --http`).
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from pathlib import Path

from aiohttp import WSMsgType, web

PAGE = Path(__file__).resolve().parent / "floor.html"


def app() -> web.Application:
    rooms: dict[str, set[web.WebSocketResponse]] = defaultdict(set)

    async def page(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE)

    async def relay(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        room = rooms[request.query.get("room", "")]
        room.add(ws)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    for other in list(room):
                        if other is not ws:
                            await other.send_str(message.data)
        finally:
            room.discard(ws)
        return ws

    application = web.Application()
    application.router.add_get("/", page)
    application.router.add_get("/ws", relay)
    return application


class Relay:
    """The relay on a free port of 127.0.0.1, in a thread of its own with its own loop."""

    def __init__(self) -> None:
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(app())
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> Relay:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the relay did not start")
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
