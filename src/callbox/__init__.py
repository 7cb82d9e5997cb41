"""callbox: self-hosted WebRTC calls (HTTPS, signaling server, web client, Python peers)."""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
