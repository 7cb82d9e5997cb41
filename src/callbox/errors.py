"""The one root of callbox's exceptions.

CallboxError
├── ConfigError            bad settings: flags, environment, TOML file
├── SignalingError         a signaling rule refused a request (callbox.signaling.model);
│   └── StoreUnavailable   the store cannot be reached (code ``unavailable``)
├── CertError              certificates (callbox.certs)
│   ├── CANotFound         no CA in the data dir where one is needed
│   ├── CAKeyMissing       the CA certificate exists but its key does not
│   ├── CertWriteError     a file could not be written
│   └── UnsafeFile         a file or dir others could have planted or can change
└── PeerError              Python peers (callbox.peer)
    ├── NegotiationError   offer/answer/ICE failed
    └── PeerTimeout        a wait ran out (no offer, no connection)
"""

from __future__ import annotations


class CallboxError(Exception):
    """Base of every error callbox raises on purpose."""


class ConfigError(CallboxError):
    """Settings are invalid or contradict each other."""


class CertError(CallboxError):
    """A certificate operation failed."""


class CANotFound(CertError):
    """The local CA does not exist in the data dir."""


class CAKeyMissing(CertError):
    """The CA certificate exists but its private key does not."""


class CertWriteError(CertError):
    """A certificate or key file could not be written."""


class UnsafeFile(CertError):
    """A certificate, key or data dir that another user owns or can write."""


class PeerError(CallboxError):
    """A Python peer failed."""


class NegotiationError(PeerError):
    """Offer/answer or ICE negotiation failed."""


class PeerTimeout(PeerError):
    """A peer waited longer than allowed."""
