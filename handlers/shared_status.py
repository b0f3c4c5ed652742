"""``/exalate status`` rendered once for everyone who asks about the same page at once.

Fifty people asking ``/exalate status`` in the same second share one database read
(``SharedRead``) and so get the same page; rendering it into some 10 kB of blocks and
serialising them fifty times was most of what each ack waited for. The answer is the
same for all of them unless the page holds a request of the asker's own awaiting the
partner, which gets them a Show code button: those are rendered for the asker alone.

An answer is shared only for the very page it rendered (the same object the shared read
handed out, so never older than that read may be) and within one second of the clock,
the smallest unit the list's ages show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot.approvals.model import ForeignInvitation, Page
from handlers import blocks


def ack_body(text: str, body: list[blocks.Json]) -> str:
    """An ack's JSON, serialised here so that it can be shared. Bolt sends a body
    given to ``ack`` as a string unchanged, as JSON because it begins with ``{``."""
    return json.dumps({"text": text, "blocks": body})


@dataclass(frozen=True)
class _Rendered:
    page: Page
    foreign: tuple[ForeignInvitation, ...]
    listed_at: datetime | None
    second: int
    body: str

    def answers(
        self,
        page: Page,
        foreign: tuple[ForeignInvitation, ...],
        listed_at: datetime | None,
        second: int,
    ) -> bool:
        return (
            self.page is page
            and self.foreign is foreign
            and self.listed_at == listed_at
            and self.second == second
        )


class SharedStatus:
    """The last ``status`` answer rendered for no one in particular, and when it serves."""

    def __init__(self) -> None:
        self._last: _Rendered | None = None
        self._code_page: Page | None = None
        self._code_viewers: frozenset[str] = frozenset()

    def answer(
        self,
        page: Page,
        now: datetime,
        viewer: str,
        *,
        foreign: tuple[ForeignInvitation, ...],
        listed_at: datetime | None,
    ) -> str:
        """The ack's JSON body for ``viewer``: the shared one, or their own."""
        if viewer in self._shown_code(page):
            return ack_body(
                *blocks.status_message(page, now, viewer, foreign=foreign, listed_at=listed_at)
            )
        second = int(now.timestamp())
        last = self._last
        if last is not None and last.answers(page, foreign, listed_at, second):
            return last.body
        text, body = blocks.status_message(page, now, viewer, foreign=foreign, listed_at=listed_at)
        self._last = _Rendered(page, foreign, listed_at, second, ack_body(text, body))
        return self._last.body

    def _shown_code(self, page: Page) -> frozenset[str]:
        """Who has a Show code button on ``page``: found once per page, not per ask."""
        if page is not self._code_page:
            self._code_viewers = frozenset(
                request.requester
                for request in page.items
                if blocks.shows_code_to(request, request.requester)
            )
            self._code_page = page
        return self._code_viewers
