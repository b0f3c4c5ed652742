"""Which credentials the simulated Jira accepts, as a real one checks them first: a
personal access token (Bearer), or basic auth (a username and password)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AcceptedCredentials:
    """``token``: only that Bearer token; ``basic``: only that (username, password). With
    neither, any non-empty Bearer token and any well-formed basic pair pass, so that
    ``run --simulated-jira`` serves sites of either kind. At most one may be given, as a
    site authenticates one way."""

    token: str | None = None
    basic: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.token is not None and self.basic is not None:
            raise ValueError("give token or basic, not both")
        if self.basic is not None and (
            not self.basic[0] or ":" in self.basic[0] or not self.basic[1]
        ):
            raise ValueError("basic needs a username without ':' and a non-empty password")

    def accept(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header value passes; secrets are compared in
        constant time, as a real server would."""
        scheme, _, value = authorization.partition(" ")
        if not value.strip():
            return False
        if scheme.casefold() == "bearer" and self.basic is None:
            return self.token is None or secrets.compare_digest(value.encode(), self.token.encode())
        if scheme.casefold() == "basic" and self.token is None:
            pair = _basic_pair(value)
            if pair is None:
                return False
            if self.basic is None:
                user, _, password = pair.partition(b":")
                return bool(user and password)
            return secrets.compare_digest(pair, ":".join(self.basic).encode())
        return False


def _basic_pair(value: str) -> bytes | None:
    """The ``user:password`` bytes of a Basic header's value, or None if it is not one."""
    try:
        pair = base64.b64decode(value.strip(), validate=True)
    except ValueError:  # binascii.Error is one, and so is a non-ASCII value
        return None
    return pair if b":" in pair else None
