"""callbox's python-socketio client manager: every emit goes to its recipients in turn,
without a task per recipient (python-socketio's manager makes one), the packet encoded once
per emit and its websocket frame once per broadcast (server/frames.py), each send checked
against the recipient's budget (server/sio.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from callbox.server import frames
from callbox.server.eiosocket import put_each

if TYPE_CHECKING:
    from callbox.server.sio import CallboxSocketServer


class CallboxManager(socketio.AsyncManager):  # type: ignore[misc]
    """Emits to every recipient in turn, without a task per recipient, the packet encoded
    once per emit; each send is checked against the recipient's budget."""

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Callable[..., Any] | None = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:  # acks from clients are never asked for by callbox
            await super().emit(event, data, namespace, room, skip_sid, callback, to, **kwargs)
            return
        room = to or room
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        server: CallboxSocketServer = self.server
        direct = self.eio_sid_from_sid(room, namespace) if isinstance(room, str) else None
        if direct is not None:  # one socket (its own room): no copy of the room's table
            recipients = [direct] if room != skip_sid else []
        else:
            recipients = [
                eio_sid
                for sid, eio_sid in self.get_participants(namespace, room)
                if sid != skip_sid
            ]
        pkt = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args])
        encoded = pkt.encode()
        # one packet object for every recipient: its websocket frame is made once
        make = frames.Shared if len(recipients) > 1 else eio_packet.Packet
        parts = (
            [make(eio_packet.MESSAGE, p) for p in encoded]
            if isinstance(encoded, list)
            else [make(eio_packet.MESSAGE, encoded)]
        )
        size = sum(len(p.data) for p in parts)
        refused = server.ledger.allow_each(recipients, size)  # counted for all at once
        for eio_sid in refused:
            server.over_budget(eio_sid, size)  # disconnected: nothing more is queued to it
        if refused:
            skip = set(refused)
            recipients = [eio_sid for eio_sid in recipients if eio_sid not in skip]
        # queued at once where each may be; else engine.io's send (closed, a pong overdue)
        for eio_sid in put_each(server.eio.sockets, recipients, parts):
            for part in parts:
                await server.eio.send_packet(eio_sid, part)
