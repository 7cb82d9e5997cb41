"""The garbage collector's pace for a server holding many connections.

CPython collects its youngest generation after every 700 net allocations of tracked
objects. A handshake's objects (offers, candidates, futures, frames) live as long as the
handshake, and with 1000 pairs in flight that is hundreds of milliseconds: each young
collection finds most of them alive, promotes them, and the full collections that follow
scan the whole heap. Measured with ``gc.callbacks`` in bench/ (rooms, P = 1000): the
collector took 3.1 s of a 12 s window (1683 young, 153 middle, 13 full collections, the full
ones ~245 ms each), 26% of the server's CPU; collected every 50,000 allocations instead,
0.17 s, and the server made 333 handshakes/s instead of 250. With 50 pairs it made no
difference. Cyclic garbage lives a little longer (until 50,000 more allocations); the
reference counts free everything else at once, as before.
"""

from __future__ import annotations

import gc

#: net allocations of tracked objects between two collections of the youngest generation
YOUNG = 50_000


def pace() -> str:
    """Freeze what start-up made (it lives as long as the process: no collection needs to
    scan it again) and collect the young generation every :data:`YOUNG` allocations; the
    line to log."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)
    return (
        f"gc: young objects collected every {YOUNG} allocations, "
        f"{gc.get_freeze_count()} start-up objects frozen"
    )
