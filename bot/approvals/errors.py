"""Why a person's action on a request did not happen.

```
ApprovalError             base: a sentence fit to show the person who acted
├── RequestNotFound       no request with that id
├── NotAllowed            the person may not take this decision
└── Conflict              the request is no longer in the state the action needs
```

These are expected outcomes, not bugs: handlers show ``str(error)`` to the person,
privately, and change nothing.
"""

from __future__ import annotations

from bot.approvals.model import ConnectionRequest


class ApprovalError(Exception):
    """Base of the errors a person's action can meet."""


class RequestNotFound(ApprovalError):
    """The request id does not exist (a forged or very old button)."""

    def __init__(self, request_id: int) -> None:
        super().__init__(f"Request #{request_id} does not exist.")
        self.request_id = request_id


class NotAllowed(ApprovalError):
    """The person is not an approver, or is the requester deciding their own request."""


class Conflict(ApprovalError):
    """Someone else acted first, or the request moved on since the card was drawn.

    Carries the request as it is now, so the person can be told who did what.
    """

    def __init__(self, request: ConnectionRequest) -> None:
        super().__init__(f"Request #{request.id} is {request.status.value} now; nothing changed.")
        self.request = request
