"""An aiohttp application served on a free port of 127.0.0.1, for tests of the parts that sit
under callbox's server (engine.io's sockets, its ping timer) without a whole `callbox serve`."""

from __future__ import annotations

from aiohttp import web


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """The running app's runner (``cleanup()`` it) and its base URL, ``http://host:port``."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"
