"""Sync health: after each poll of a node, open, update and resolve its incidents; remind
about the ones nobody acknowledged; let the owners acknowledge and snooze them.

Run by the jobs (``bot.runtime.jobs``) on the replica that holds the lease; whatever it
decides is one transaction with what people are told (``bot.ports.IncidentStore``), and
an incident opens once per condition whoever else decides the same. The rules of a
poll are ``bot.health.watch``; what each site's watch remembers is stored, so a restart
or a replica taking over goes on where the last one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.alert_config import Alerts
from bot.approvals.errors import ApprovalError, NotAllowed
from bot.approvals.routes import Routes, Rule
from bot.approvers import ApproverPolicy
from bot.exalate import ExalateAuthError, ExalateEndpointMissing, ExalateError, ExalateUnavailable
from bot.exalate.models import ConnectionList, SyncQueue
from bot.health.model import (
    SNOOZES,
    Condition,
    Incident,
    IncidentCard,
    Kind,
    NodeTrouble,
    Opening,
    SiteView,
)
from bot.health.watch import Poll, QueueRule, Verdict, WatchState, assess, assess_failure
from bot.ports import DirectoryUnavailable, IncidentStore, RequestStore
from bot.service.site import Site

log = logging.getLogger(__name__)


class CardGone(ApprovalError):
    """A button of a card that does not exist (a forged or very old one)."""


class StaleCard(ApprovalError):
    """The card is no longer as the person saw it: acknowledged, resolved, or changed
    by someone at the same moment."""


@dataclass(frozen=True, slots=True)
class SiteOverview:
    """One site for ``/exalate health`` and App Home: its last poll (None before the
    first), and its cards with an open incident."""

    site: str
    view: SiteView | None
    cards: list[IncidentCard]


class HealthWatch:
    """Watches each site's connections and queues, and keeps its incidents true."""

    def __init__(
        self,
        store: IncidentStore,
        requests: RequestStore,
        policy: ApproverPolicy,
        alerts: Alerts,
        clock: Callable[[], datetime],
        *,
        default_channel: str,
    ) -> None:
        self._store = store
        self._requests = requests
        self._policy = policy
        self.alerts = alerts
        self._now = clock
        self._default_channel = default_channel
        self._rule = QueueRule(alerts.queue_threshold, alerts.queue_window)
        self.unwatched: dict[str, set[SyncQueue]] = {}
        """Queues each site's node has no endpoint for: never asked again by this process."""

    @property
    def routes(self) -> Routes:
        return self._policy.routes

    # --- after each poll (the lease holder) --------------------------------------------------

    async def polled(self, site: Site, listing: ConnectionList) -> None:
        """The site answered its poll with ``listing``: read its queues, and act on what
        the watch concludes."""
        now = self._now()
        queues = await self._queues(site)
        poll = Poll(site.name, now, listing.results, listing.complete, queues)
        state, open_now = await self._store.watch(site.name), await self._open(site.name)
        verdict = assess(state, poll, set(open_now), self._rule)
        view = SiteView(
            site.name,
            now,
            connections=tuple((c.name, c.status or "") for c in listing.results),
            queues=tuple((q.value, n) for q, n in queues.items()),
            unwatched=self._unwatched(site.name),
        )
        await self._act(verdict, state, view, open_now)

    async def failed(self, site: Site, error: Exception) -> None:
        """The site's poll failed: after a few in a row, the node is an incident."""
        now = self._now()
        state, open_now = await self._store.watch(site.name), await self._open(site.name)
        trouble = _trouble(error)
        verdict = assess_failure(state, site.name, trouble, set(open_now))
        last = next((v for v in await self._store.views() if v.site == site.name), None)
        view = SiteView(
            site.name,
            now,
            reachable=False,
            trouble=trouble.value,
            connections=() if last is None else last.connections,
            queues=() if last is None else last.queues,
            unwatched=self._unwatched(site.name),
        )
        await self._act(verdict, state, view, open_now)

    async def _queues(self, site: Site) -> dict[SyncQueue, int]:
        """The sizes of the queues the node could tell now; a queue whose endpoint is
        missing is left out from now on (``doctor`` says so)."""
        sizes: dict[SyncQueue, int] = {}
        missing = self.unwatched.setdefault(site.name, set())
        for queue in SyncQueue:
            if queue in missing:
                continue
            try:
                sizes[queue] = await site.exalate.queue_size(queue)
            except ExalateEndpointMissing:
                log.warning(
                    "sync_queue_unwatched site=%s queue=%s; the node has no endpoint",
                    site.name,
                    queue.value,
                )
                missing.add(queue)
            except ExalateError as error:
                log.info(
                    "sync_queue_unread site=%s queue=%s kind=%s",
                    site.name,
                    queue.value,
                    type(error).__name__,
                )
        return sizes

    def _unwatched(self, site: str) -> tuple[str, ...]:
        """The queues the site's node has no endpoint for, as its view shows them."""
        return tuple(sorted(q.value for q in self.unwatched.get(site, ())))

    async def _open(self, site: str) -> dict[str, Incident]:
        """The site's open incidents by key."""
        return {i.condition.key: i for i in await self._store.open_incidents(site)}

    async def _act(
        self, verdict: Verdict, state: WatchState, view: SiteView, by_key: dict[str, Incident]
    ) -> None:
        """Open, update and resolve as ``verdict`` says, then remember ``state``."""
        now = view.observed_at
        for condition in verdict.holding:
            incident = by_key.get(condition.key)
            if incident is not None and incident.condition.detail != condition.detail:
                await self._store.change(incident, condition.detail, now)
        for key in verdict.resolving:
            if key in by_key:
                await self._store.resolve(by_key[key], now)
        if verdict.opening and self.alerts.enabled:
            openings = [await self._opening(c) for c in verdict.opening]
            if opened := await self._store.open(openings, now):
                log.warning(
                    "incidents_opened site=%s count=%s kinds=%s cards=%s",
                    view.site,
                    len(opened),
                    ",".join(sorted({i.condition.kind.value for i in opened})),
                    ",".join(str(c) for c in sorted({i.card_id for i in opened})),
                )
        await self._store.save_watch(view.site, state, view)

    async def _opening(self, condition: Condition) -> Opening:
        """Where the incident's card goes: the channel of the route owning the
        connection's incoming project (a connection the bot made), else the alerts
        channel; the route's approvers own it, else the default approvers."""
        channel = self.alerts.channel or self._default_channel
        if condition.kind is Kind.CONNECTION:
            request = await self._requests.named(condition.subject, condition.site)
            if request is not None:
                route = self.routes.route_for(condition.site, request.fields.project_key)
                if route is not None:
                    return Opening(condition, route.rule.channel or channel, route.rule)
        return Opening(condition, channel, None)

    # --- reminders (the lease holder, every tick) ------------------------------------------

    async def remind(self) -> int:
        """Remind, once, about each card open past ``remind_after`` (or past its snooze)
        that nobody acknowledged; how many were reminded."""
        now, reminded = self._now(), 0
        for card in await self._store.open_cards():
            if card.acked_by is not None or card.card_ref is None:
                continue
            if card.snoozed_until is not None:
                due = card.snoozed_until <= now
            else:
                due = card.reminded_at is None and now - card.opened_at >= self.alerts.remind_after
            if due and await self._store.remind(card, now):
                reminded += 1
        return reminded

    # --- what people read -----------------------------------------------------------------

    async def overview(self, sites: Iterable[str]) -> list[SiteOverview]:
        """Each of ``sites`` as its last poll saw it, with its open incident cards."""
        views = {view.site: view for view in await self._store.views()}
        cards = await self._store.open_cards()
        return [
            SiteOverview(name, views.get(name), [c for c in cards if c.site == name])
            for name in sites
        ]

    # --- people's buttons ----------------------------------------------------------------

    async def acknowledge(self, card_id: int, user: str) -> IncidentCard:
        """Record that ``user`` is on it: no more reminders."""
        card = await self._card_for(card_id, user, "acknowledge")
        if card.acked_by is not None:
            raise StaleCard(f"<@{card.acked_by}> acknowledged it already.")
        done = await self._store.acknowledge(card, user, self._now())
        if done is None:
            raise StaleCard("Someone acted on this card at the same moment; look at it again.")
        return done

    async def snooze(self, card_id: int, user: str, choice: str) -> IncidentCard:
        """Hold the card's reminder for one of ``SNOOZES``."""
        if choice not in SNOOZES:
            raise StaleCard("That snooze is not one this card offers.")
        card = await self._card_for(card_id, user, f"snooze {choice}")
        if card.acked_by is not None:
            raise StaleCard(f"<@{card.acked_by}> acknowledged it: it sends no more reminders.")
        now = self._now()
        done = await self._store.snooze(card, user, now + SNOOZES[choice], now)
        if done is None:
            raise StaleCard("Someone acted on this card at the same moment; look at it again.")
        return done

    async def _card_for(self, card_id: int, user: str, action: str) -> IncidentCard:
        """The card, if ``user`` owns it and it is open; the refusal is audited."""
        card = await self._store.card(card_id)
        if card is None:
            raise CardGone("This incident card does not exist any more.")
        owners = card.owners or self.routes.default
        try:
            allowed = await self._policy.is_among(user, owners.deciders(escalated=True))
        except DirectoryUnavailable:
            raise NotAllowed(
                "Slack could not say who is in the owners' groups just now; try again in a minute."
            ) from None
        if not allowed:
            await self._store.record(card.id, user, f"refused {action}: not an owner", self._now())
            raise NotAllowed(_refusal(owners, card.owners is None))
        if not card.open:
            await self._store.record(card.id, user, f"{action}: already resolved", self._now())
            raise StaleCard("These incidents are resolved already; nothing to do.")
        return card


def _refusal(owners: Rule, default: bool) -> str:
    whose = "the site's approvers" if default else f"the owners of route #{owners.route}"
    return (
        f"Only {whose} can acknowledge or snooze this incident. "
        "Ask an Exalate admin if you should be one."
    )


def _trouble(error: Exception) -> NodeTrouble:
    if isinstance(error, ExalateAuthError):
        return NodeTrouble.CREDENTIALS
    if isinstance(error, ExalateUnavailable):
        return NodeTrouble.UNREACHABLE
    return NodeTrouble.UNREADABLE
