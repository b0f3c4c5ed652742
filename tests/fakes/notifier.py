"""A Notifier that records what people would have been told, for service-level tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from bot.approvals.messages import Notice
from bot.approvals.model import ConnectionRequest


@dataclass
class RecordingNotifier:
    """Implements ``bot.ports.Notifier``; every call is appended to ``events``."""

    events: list[tuple[str, int, str]] = field(default_factory=list)
    codes: list[tuple[int, str]] = field(default_factory=list)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def post_card(self, request: ConnectionRequest) -> str:
        self.events.append(("post_card", request.id, request.status.value))
        return f"C0CARDS:{next(self._ts)}"

    async def update_card(self, request: ConnectionRequest) -> None:
        self.events.append(("update_card", request.id, request.status.value))

    async def tell_requester(self, request: ConnectionRequest) -> None:
        self.events.append(("tell_requester", request.id, request.status.value))

    async def deliver_invitation(self, request: ConnectionRequest, code: str) -> str:
        self.codes.append((request.id, code))
        return f"D0DM:{next(self._ts)}"

    async def close_invitation(self, request: ConnectionRequest) -> None:
        self.events.append(("close_invitation", request.id, request.status.value))

    async def note_in_thread(self, request: ConnectionRequest, notice: Notice) -> None:
        self.events.append(("note_in_thread", request.id, notice.value))

    async def remind_requester(self, request: ConnectionRequest) -> None:
        self.events.append(("remind_requester", request.id, request.status.value))

    async def guide_approver(self, request: ConnectionRequest) -> None:
        self.events.append(("guide_approver", request.id, request.status.value))
