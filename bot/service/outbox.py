"""Sending what the outbox holds: every message to Slack, never lost.

The use cases write messages with the changes they report (``bot.ports.RequestStore``);
this sends them, each once, whichever replica takes it. A message Slack did not take is
tried again later: after what a rate limit asked for, or after a back-off that grows,
each with some jitter so that messages held up together do not come back together. A
failure that will not heal by itself (an archived channel, a refused token) *parks* the
message: it is tried again now and then, and at once when the cause is seen gone; its
lane waits meanwhile, so what follows never overtakes it. A person who cannot be
reached (deactivated, DMs closed) ends the attempt: an undelivered code stays stored
for Resend code.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.approvals.messages import Lane, Message, OutboxItem, Say
from bot.approvals.model import CodeDelivery, ConnectionRequest, Problem, Status
from bot.approvals.routes import card_channel
from bot.health.model import IncidentCard
from bot.health.notes import Note
from bot.log import remember_secret
from bot.metrics import Metrics
from bot.ports import (
    DeliveryFailed,
    IncidentNotifier,
    IncidentStore,
    Notifier,
    OutboxQueue,
    People,
    ReplicaDirectory,
    RequestStore,
)
from bot.vault import Vault

log = logging.getLogger(__name__)

TOKEN_REFUSED = frozenset({"token_revoked", "invalid_auth", "account_inactive", "not_authed"})
CHANNEL_REFUSED = frozenset({"is_archived", "is_inactive", "channel_not_found", "not_in_channel"})
PARKING = TOKEN_REFUSED | CHANNEL_REFUSED | {"missing_scope"}
"""Causes that do not heal by themselves: an admin must act."""
UNREACHABLE = frozenset(
    {
        "user_disabled",
        "messages_tab_disabled",
        "cannot_dm_bot",
        "user_not_found",
        "user_not_visible",
    }
)
"""The person cannot receive messages: trying again changes nothing."""
HOLD = timedelta(minutes=2)  # longer than one message takes, Slack's own retries included
FIRST_RETRY = 1.0  # seconds; doubled per attempt …
LAST_RETRY = 300.0  # … up to five minutes
PARKED_RETRY = 60.0  # a parked message is tried again this often, in case a probe missed it


@dataclass
class SlackHealth:
    """What the last messages and probes learnt of Slack: for ``/readyz``, and for the
    use cases that must not start what could not be told (an Approve)."""

    token_refused: str | None = None
    """Slack's reason while it refuses the bot's token."""
    channels: dict[str, str] = field(default_factory=dict)
    """Channels Slack will not take messages in, with why."""

    def as_json(self) -> dict[str, object]:
        return {"token_refused": self.token_refused, "channels_refused": dict(self.channels)}

    @property
    def ready(self) -> bool:
        return self.token_refused is None and not self.channels


class NobodyLeft:
    """People as a workspace without deactivations: what the service assumes when told
    no better (tests of other rules)."""

    async def deactivated(self, user_id: str) -> bool:
        return False


class OutboxSender:
    """Sends the due messages of the outbox through the notifier."""

    def __init__(
        self,
        queue: OutboxQueue,
        store: RequestStore,
        notifier: Notifier,
        vault: Vault,
        metrics: Metrics,
        clock: Callable[[], datetime],
        *,
        me: str,
        people: People | None = None,
        approvals: str = "approvals",
        health: SlackHealth | None = None,
        incidents: IncidentStore | None = None,
        incident_notifier: IncidentNotifier | None = None,
    ) -> None:
        self._queue = queue
        self._store = store
        self._notifier = notifier
        self._vault = vault
        self._metrics = metrics
        self._now = clock
        self._me = me
        self._people = people or NobodyLeft()
        self._approvals = approvals  # the channel a card without a place yet goes to
        self.health = health or SlackHealth()
        self._incidents = incidents
        self._incident_notifier = incident_notifier
        self._sending = asyncio.Lock()  # one pass at a time in this process
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was written to the outbox: send it now, not at the next look."""
        self._wake.set()

    async def send_due(self) -> int:
        """Send every message due now; how many were sent or settled."""
        async with self._sending:
            done = 0
            while items := await self._queue.take_due(self._now(), self._me, self._now() + HOLD):
                for item in items:
                    done += await self._send(item)
            return done

    async def run(self, stopping: asyncio.Event, every: float = 1.0) -> None:
        """Send what comes due until ``stopping``: at once when woken, and every
        ``every`` seconds for what other replicas wrote and for retries."""
        while not stopping.is_set():
            self._wake.clear()
            try:
                await self.send_due()
            except Exception as error:  # the database, say: the next pass tries again
                log.error("outbox_pass_failed kind=%s", type(error).__name__)
            waits = [
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(stopping.wait()),
            ]
            await asyncio.wait(waits, timeout=every, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()

    async def _send(self, item: OutboxItem) -> int:
        """Send one taken message and record how it went; 1 if it is settled."""
        about = await self._about(item)
        if about is None:
            await self._queue.sent(item, self._now(), holder=self._me)
            return 1
        request: ConnectionRequest | None
        if isinstance(about, IncidentCard):
            channel, request, delivery = about.channel, None, self._deliver_incident(item, about)
        else:
            channel, request, delivery = (
                self._card_channel(about),
                about,
                self._deliver(item, about),
            )
        try:
            await delivery
        except DeliveryFailed as failure:
            return await self._failed(item, channel, str(failure), failure.retry_after, request)
        except Exception as error:  # Slack unreachable, a timeout: it heals by itself
            return await self._failed(item, channel, type(error).__name__, None, request)
        await self._queue.sent(item, self._now(), holder=self._me)
        await self._heard_from_slack(item, channel)
        return 1

    async def _about(self, item: OutboxItem) -> ConnectionRequest | IncidentCard | None:
        """The request or incident card the message is about, as it is now; None when
        it is gone (or incidents are not sent here), and the message with it."""
        if item.card_id is not None:
            if self._incidents is None or self._incident_notifier is None:
                return None
            return await self._incidents.card(item.card_id)
        return None if item.request_id is None else await self._store.get(item.request_id)

    async def _deliver_incident(self, item: OutboxItem, card: IncidentCard) -> None:
        """The one Slack call: the card posted or redrawn as it is now, or a note."""
        notifier, incidents = self._incident_notifier, self._incidents
        assert notifier is not None  # else ``_about`` let the message go
        assert incidents is not None
        say = item.message.say
        if say is Say.POST_INCIDENTS and card.card_ref is None:
            card_ref = await notifier.post_incidents(card)
            await incidents.set_card(card.id, card_ref)
        elif say is Say.UPDATE_INCIDENTS and card.card_ref is not None:
            newest = await self._queue.newest_redraw(item)
            if newest is None or newest <= item.id:
                await notifier.update_incidents(card)
        elif say is Say.INCIDENT_NOTE and item.note and card.card_ref is not None:
            await notifier.note_incident(card, Note.from_json(item.note))

    async def _deliver(self, item: OutboxItem, request: ConnectionRequest) -> None:
        """The one Slack call a message is, made from the request as it is now (cards)
        or as it was when the message was written (what people are told)."""
        said = item.snapshot or request
        say, notice = item.message.say, item.message.notice
        if say is Say.POST_CARD:
            await self._post_card(request)
        elif say is Say.UPDATE_CARD:
            newest = await self._queue.newest_redraw(item)
            if request.card_ref is not None and (newest is None or newest <= item.id):
                await self._notifier.update_card(request)
        elif say is Say.NOTE and notice is not None:
            if request.card_ref is not None:
                await self._notifier.note_in_thread(
                    replace(said, card_ref=request.card_ref), notice
                )
        elif say is Say.TELL_REQUESTER:
            await self._notifier.tell_requester(said)
        elif say is Say.DELIVER_CODE:
            await self._deliver_code(request)
        elif say is Say.REMIND:
            await self._notifier.remind_requester(said)
        elif say is Say.CLOSE_INVITATION:
            await self._notifier.close_invitation(replace(said, code_dm_ref=request.code_dm_ref))
        elif say is Say.GUIDE_APPROVER:
            await self._notifier.guide_approver(said)

    async def _post_card(self, request: ConnectionRequest) -> None:
        """Post the card, remember where, and tell the requester it is waiting there."""
        if request.card_ref is not None:
            return  # posted before this replica lost its hold
        card_ref = await self._notifier.post_card(request)
        await self._store.set_card(request.id, card_ref)
        posted = replace(request, card_ref=card_ref)
        await self._store.tell(posted, [Message(Say.TELL_REQUESTER)], self._now())
        if posted.status is not Status.PENDING_APPROVAL:  # decided before its card was up
            await self._store.tell(posted, [Message(Say.UPDATE_CARD)], self._now())

    async def _deliver_code(self, request: ConnectionRequest) -> None:
        """The stored code to the requester, if it still has one to deliver."""
        sealed = await self._store.invitation_code(request.id)
        if sealed is None or request.code_delivery in (CodeDelivery.DELIVERED, None):
            return
        if await self._people.deactivated(request.requester):
            log.warning("requester_gone id=%s; the code stays stored", request.id)
            await self._store.annotate(
                request.id,
                error=Problem.REQUESTER_GONE,
                error_detail=None,
                tell=[Message(Say.UPDATE_CARD)],
                at=self._now(),
            )
            return
        code = self._vault.open(sealed)
        remember_secret(code)
        dm_ref = await self._notifier.deliver_invitation(request, code)
        await self._store.annotate(
            request.id,
            error=None,
            error_detail=None,
            code_dm_ref=dm_ref,
            tell=[Message(Say.UPDATE_CARD)],
            at=self._now(),
        )

    async def _failed(
        self,
        item: OutboxItem,
        channel: str,
        reason: str,
        retry_after: float | None,
        request: ConnectionRequest | None = None,
    ) -> int:
        """Record why a message (about ``request``, or an incident card) did not go, and
        when it is tried again; 1 if settled. ``channel`` is its card's."""
        say = item.message.say
        log.warning(
            "outbox_send_failed id=%s card=%s say=%s reason=%s attempt=%s",
            item.request_id,
            item.card_id,
            say.value,
            reason,
            item.attempts + 1,
        )
        self._metrics.count_error(f"slack_{reason}")
        now = self._now()
        if request is not None and reason in UNREACHABLE and say.lane is not Lane.CARD:
            await self._unreachable(item, request, reason)
            return 1
        if reason in PARKING:
            self._heard_refusal(item, channel, reason)
            if request is not None and item.parked is None and say is Say.POST_CARD:
                await self._tell_card_not_posted(request, reason)
            due = now + timedelta(seconds=PARKED_RETRY * random.uniform(1.0, 1.1))  # noqa: S311
            await self._queue.later(item, due, parked=reason)
            return 0
        await self._queue.later(
            item, now + timedelta(seconds=retry_delay(item.attempts, retry_after))
        )
        return 0

    async def _unreachable(self, item: OutboxItem, request: ConnectionRequest, reason: str) -> None:
        """The person cannot be reached: an undelivered code stays stored for Resend code
        and the card says why; anything else to them is let go."""
        if item.message.say is Say.DELIVER_CODE:
            await self._store.annotate(
                request.id,
                error=Problem.UNDELIVERED,
                error_detail=reason,
                tell=[Message(Say.UPDATE_CARD)],
                at=self._now(),
            )
        await self._queue.sent(item, self._now(), holder=self._me)

    async def _tell_card_not_posted(self, request: ConnectionRequest, reason: str) -> None:
        """Once, when the card first cannot be posted: the requester hears why."""
        unposted = replace(request, error=Problem.CARD_NOT_POSTED, error_detail=reason)
        await self._store.tell(unposted, [Message(Say.TELL_REQUESTER)], self._now())

    def _heard_refusal(self, item: OutboxItem, channel: str, reason: str) -> None:
        if reason in TOKEN_REFUSED:
            if self.health.token_refused is None:
                log.error("slack_token_refused reason=%s", reason)
            self.health.token_refused = reason
        elif item.message.say.lane is Lane.CARD and reason in CHANNEL_REFUSED:
            self.health.channels[channel] = reason

    async def _heard_from_slack(self, item: OutboxItem, channel: str) -> None:
        """Slack took a message: the token works, and a card's channel (``channel``)
        does. What was parked here for either goes now, as a look at Slack would have
        let it."""
        healed: set[str] = set()
        if self.health.token_refused is not None:
            self.health.token_refused = None
            healed |= TOKEN_REFUSED
        if item.message.say.lane is Lane.CARD and channel in self.health.channels:
            del self.health.channels[channel]
            healed |= CHANNEL_REFUSED
        if healed:
            await self._queue.unpark(healed, self._now())

    async def release_gone(self, replicas: ReplicaDirectory) -> None:
        """Messages held by a replica known gone (it stopped mid-send) go now, not when
        its hold runs out: a restarted bot must not wait out its former self."""
        holders = await self._queue.holders() - {self._me}
        if holders and (gone := await replicas.gone(holders)):
            log.info("outbox_released holders=%s", len(gone))
            await self._queue.release(gone)
            self.wake()

    def _card_channel(self, request: ConnectionRequest) -> str:
        """The channel of the request's card: where it is, or is to be, posted (its
        route's channel, or the default one)."""
        if request.card_ref:
            return request.card_ref.split(":", 1)[0]
        return card_channel(request.route, self._approvals)

    async def slack_seen(
        self, *, token_refused: str | None, channel: str, channel_refused: str | None
    ) -> None:
        """What a look at Slack found (``bot.runtime.jobs``): recorded for readiness; a
        cause seen gone releases what was parked for it, at once."""
        self.health.token_refused = token_refused
        if channel_refused is not None:
            self.health.channels[channel] = channel_refused
        else:
            self.health.channels.pop(channel, None)
        if token_refused is not None:
            return
        healed = set(TOKEN_REFUSED) | (set(CHANNEL_REFUSED) if channel_refused is None else set())
        if healed & set(await self._queue.parked()):
            log.info(
                "slack_heals causes=%s", ",".join(sorted(healed & set(await self._queue.parked())))
            )
            await self._queue.unpark(healed, self._now())
            self.wake()


def retry_delay(attempts: int, retry_after: float | None) -> float:
    """Seconds before the next try: what a rate limit asked for, or a back-off doubling
    from ``FIRST_RETRY`` to ``LAST_RETRY``; plus up to a quarter more, so that messages
    held up together spread out when they come back."""
    base = retry_after if retry_after is not None else min(FIRST_RETRY * 2**attempts, LAST_RETRY)
    return base * random.uniform(1.0, 1.25)  # noqa: S311  # spreading, not secrecy
