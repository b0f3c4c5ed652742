"""What can go wrong when the bot talks to Exalate on Jira, as one tree of exceptions.

The tree answers the two questions every caller asks: *may a retry help?* (catch
``ExalateUnavailable``) and *what must a person fix?* (catch ``ExalateRejected``)::

    ExalateError                      base; .status: int | None, .detail: str | None
    ├── ExalateUnavailable            transient, a retry may help
    │   ├── ExalateTimeout            no answer within the timeout
    │   ├── ExalateUnreachable        connection refused / DNS / reset
    │   │   └── ExalateNotSent        no connection opened: the call never left
    │   ├── ExalateRateLimited        429; .retry_after: float | None
    │   └── ExalateServerError        5xx, or a 2xx answer of an unexpected shape or size
    └── ExalateRejected               the request was refused; retrying the same will not help
        ├── ExalateAuthError          401/403
        ├── ExalateBadRequest         400 (and other unexpected 4xx, or a redirect)
        │   └── ExalateCallNotTaken   400/415 to the create call
        ├── ExalateNameConflict       409
        └── ExalateEndpointMissing    404/405: this Exalate version exposes no such endpoint

``str(error)`` is a sentence a Jira administrator can act on; it is shown in Slack as is.
It never holds the token, the password, the ``Authorization`` header or an invitation
code: the client builds it from the HTTP status, the method, the path and the server's
trimmed, scrubbed error message (kept apart in ``.detail``), and never from a
successful answer's body.
"""

from __future__ import annotations

__all__ = [
    "ExalateAuthError",
    "ExalateBadRequest",
    "ExalateCallNotTaken",
    "ExalateEndpointMissing",
    "ExalateError",
    "ExalateNameConflict",
    "ExalateNotSent",
    "ExalateRateLimited",
    "ExalateRejected",
    "ExalateServerError",
    "ExalateTimeout",
    "ExalateUnavailable",
    "ExalateUnreachable",
]


class ExalateError(Exception):
    """Base of every failure of a call to Exalate or Jira.

    ``status`` is the HTTP status when there was an answer, ``None`` otherwise.
    ``detail`` is the server's own error message, trimmed, or ``None``.
    """

    def __init__(self, message: str, *, status: int | None = None, detail: str | None = None):
        super().__init__(message)
        self.status = status
        self.detail = detail

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, status={self.status!r})"


class ExalateUnavailable(ExalateError):
    """Jira or Exalate could not answer right now; the same call may succeed later."""


class ExalateTimeout(ExalateUnavailable):
    """No answer came within the timeout. A create may still have happened on the server."""


class ExalateUnreachable(ExalateUnavailable):
    """No HTTP exchange was possible: connection refused, DNS failure or connection reset."""


class ExalateNotSent(ExalateUnreachable):
    """No connection to Jira could be opened (refused, DNS): the call never left, so a
    create certainly did not happen."""


class ExalateRateLimited(ExalateUnavailable):
    """Jira's rate limiter answered 429. ``retry_after`` is its ``Retry-After``, in seconds."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        detail: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, detail=detail)
        self.retry_after = retry_after


class ExalateServerError(ExalateUnavailable):
    """Jira or Exalate failed (5xx), or answered with something that is not its API's JSON:
    another shape, JSON nested deeper than can be decoded, or an answer too large to read.
    Of a create call it proves nothing: the connection may have been made."""


class ExalateRejected(ExalateError):
    """The server understood the call and refused it; a person has to change something."""


class ExalateAuthError(ExalateRejected):
    """The credentials were refused (401) or their user may not do this (403)."""


class ExalateBadRequest(ExalateRejected):
    """The request was invalid (400 or another unexpected 4xx), e.g. an unknown project."""


class ExalateCallNotTaken(ExalateBadRequest):
    """The create call was answered 400 or 415: the node does not take it as the bot
    sends it (another Exalate version or API), or found fault with what it carries (a
    project gone since the request was checked). Only the caller, who checked the
    request, can tell which; either way nothing was created."""


class ExalateNameConflict(ExalateRejected):
    """A connection with this name already exists (409)."""


class ExalateEndpointMissing(ExalateRejected):
    """The endpoint does not exist (404/405): another Exalate version, or the app is missing."""
