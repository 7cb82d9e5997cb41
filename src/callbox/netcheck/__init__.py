"""``callbox check``: what a peer's ICE agent finds with the server's STUN/TURN servers."""
