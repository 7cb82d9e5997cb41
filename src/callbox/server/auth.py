"""Who may connect: no check, a shared password, or a signed JWT.

With JWT (``--jwt-secret`` for HS256, ``--jwt-public-key`` for RS256/ES256) the client sends
``auth.token``; the token must carry ``exp`` and ``sub``. ``sub`` becomes the user name
(``auth.userName`` is ignored) and a ``room`` claim, when present, is the only room the token
opens: another ``auth.room`` is refused with ``forbidden``. Anything else wrong with the token
(missing, expired, bad signature, unusable claims) is ``unauthorized``.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import replace
from typing import Any

from callbox.config import ServerSettings
from callbox.errors import ConfigError
from callbox.signaling.model import (
    Auth,
    ErrorCode,
    SignalingError,
    clean_user_name,
    valid_room,
)

log = logging.getLogger(__name__)

JWT_LEEWAY = 10.0  # seconds of clock skew tolerated on exp / nbf / iat
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def _unauthorized(why: str) -> SignalingError:
    return SignalingError(ErrorCode.UNAUTHORIZED, why)


class Authenticator:
    """Checks the credentials of a connect and returns the :class:`Auth` to join with."""

    def __init__(self, settings: ServerSettings) -> None:
        self._password = settings.password
        self._key: Any = None
        self._algorithms: list[str] = []
        if settings.jwt_secret is not None or settings.jwt_public_key is not None:
            # PyJWT (and its cryptography backends) only where tokens are checked: ~45 ms of
            # every other server start. Imported here, so a broken install fails at start.
            import jwt  # noqa: F401
        if settings.jwt_secret is not None:
            self._key = settings.jwt_secret
            self._algorithms = ["HS256"]
        elif settings.jwt_public_key is not None:
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            try:
                key = load_pem_public_key(settings.jwt_public_key.encode())
            except ValueError as e:
                raise ConfigError("the JWT public key is not a PEM public key") from e
            if isinstance(key, ec.EllipticCurvePublicKey):
                algorithm = _EC_ALGORITHMS.get(key.curve.name)
                if algorithm is None:
                    raise ConfigError(f"JWT keys on curve {key.curve.name} are not supported")
            else:
                algorithm = "RS256"
            self._key = key
            self._algorithms = [algorithm]

    @property
    def mode(self) -> str:
        if self._algorithms:
            return "jwt"
        return "password" if self._password is not None else "open"

    def bearer(self, header: str | None) -> str | None:
        """The user an HTTP ``Authorization: Bearer <password or JWT>`` header speaks for, or
        None when it does not pass (on an open server everyone passes, as ``guest``)."""
        if self.mode == "open":
            return "guest"
        scheme, _, credential = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return None
        credential = credential.strip()
        guess = Auth(user_name=None, password=credential, room="lobby", token=credential)
        try:
            return self.check(guess).user_name or "guest"
        except SignalingError:
            return None

    def check(self, auth: Auth) -> Auth:
        """The ``auth`` to join with, or ``unauthorized`` / ``forbidden``."""
        if self._algorithms:
            return self._check_token(auth)
        if self._password is not None and not hmac.compare_digest(
            (auth.password or "").encode(), self._password.encode()
        ):
            raise _unauthorized("wrong or missing password")
        return auth

    def _check_token(self, auth: Auth) -> Auth:
        if not auth.token:
            raise _unauthorized("a token is required")
        import jwt  # loaded by __init__: a lookup in sys.modules

        try:
            claims = jwt.decode(
                auth.token,
                self._key,
                algorithms=self._algorithms,
                leeway=JWT_LEEWAY,
                options={"require": ["exp", "sub"], "verify_aud": False},
            )
        except jwt.PyJWTError as e:
            raise _unauthorized(f"invalid token: {e}") from e
        if not isinstance(claims, dict):  # pragma: no cover - PyJWT returns a dict
            raise _unauthorized("invalid token: claims are not an object")
        try:
            name = clean_user_name(claims.get("sub"))
        except SignalingError as e:
            raise _unauthorized(f"invalid token: sub is not a user name ({e.message})") from e
        if name is None:
            raise _unauthorized("invalid token: sub is empty")
        room = auth.room
        if "room" in claims:
            claimed = valid_room(claims["room"])
            if claimed is None:
                raise _unauthorized("invalid token: room claim is not a room name")
            if auth.room_given and auth.room != claimed:
                raise SignalingError(
                    ErrorCode.FORBIDDEN, f"the token is for room {claimed}, not {auth.room}"
                )
            room = claimed
        pinned = room if "room" in claims else None
        return replace(
            auth,
            user_name=name,
            room=room,
            password=None,
            token=None,
            identity=name,
            pinned_room=pinned,
        )
