"""How the bot proves who it is to a Jira: a personal access token or basic auth.

Sites differ: most take a Jira personal access token (``Authorization: Bearer``), some
only Jira's username and password (``Authorization: Basic``). Each kind is a frozen value
that builds its header and names every string a log filter must redact; neither shows
its secret in ``repr`` or ``str``, so a credential can sit in a dataclass, a log line's
arguments or a traceback's locals without leaking.

Validation errors say what is wrong, never the value: a mistyped password must not land
in a start-up error.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

__all__ = ["BasicAuth", "BearerToken", "Credentials"]


@dataclass(frozen=True, slots=True)
class BearerToken:
    """A Jira personal access token (Jira 8.14 or later), sent as ``Bearer <token>``."""

    token: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.token.strip():
            raise ValueError("the Jira token must not be empty")
        # A header holds one line; whitespace inside a token is a paste error, and a
        # line break would let the value smuggle in a header of its own.
        if any(c.isspace() or not c.isprintable() for c in self.token):
            raise ValueError("the Jira token must not contain spaces or control characters")

    def header(self) -> str:
        """The ``Authorization`` header value."""
        return f"Bearer {self.token}"

    def secrets(self) -> tuple[str, ...]:
        """What a log filter must redact: the token (which the header contains)."""
        return (self.token,)


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """A Jira username and password, sent as ``Basic base64(username:password)``.

    The username is not a secret and shows in ``repr``; the password never does. A colon
    in the username is refused: the server splits at the first colon, so such a name
    could never log in.
    """

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.username.strip():
            raise ValueError("the Jira username must not be empty")
        if ":" in self.username:
            raise ValueError("the Jira username must not contain ':'")
        if not self.password.strip():
            raise ValueError("the Jira password must not be empty")

    def header(self) -> str:
        """The ``Authorization`` header value; UTF-8, as Jira decodes it."""
        return f"Basic {self._encoded()}"

    def secrets(self) -> tuple[str, ...]:
        """What a log filter must redact: the password, and the header's encoded part,
        which anyone can decode back to it."""
        return (self.password, self._encoded())

    def _encoded(self) -> str:
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")


Credentials = BearerToken | BasicAuth
"""Whatever ``ExalateClient`` may authenticate with."""
