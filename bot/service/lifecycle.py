"""What Exalate and time do to a request: the partner accepts, a connection disappears,
nobody decides in time, an invitation waits, a process dies mid-creation.

Run by the jobs (``bot.runtime.jobs``): every replica reads each site's list, and the
lease holder alone acts on it; every change is the same compare-and-set as a person's,
so a click racing the life cycle has one winner.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from bot.approvals.errors import Conflict
from bot.approvals.messages import CARD, EVERYONE, Message, Notice, Say
from bot.approvals.model import (
    BOT_ACTOR,
    EXALATE_ACTOR,
    ConnectionRequest,
    ForeignInvitation,
    Problem,
    Status,
    name_key,
)
from bot.exalate.models import Connection, ConnectionList, ConnectionState
from bot.ports import ReplicaDirectory, RequestStore
from bot.service.initiation import Initiation
from bot.service.site import Site, Sites
from bot.service.states import States

log = logging.getLogger(__name__)

MISSES_BEFORE_GONE = 3
# Exalate's statuses (an opaque string; documented: Pending, Active, Deactivated).
_SETTLED = {ConnectionState.ACTIVE: Status.ACTIVE, ConnectionState.DEACTIVATED: Status.DEACTIVATED}


ESCALATION = (CARD, Message(Say.NOTE, Notice.ESCALATED))
"""What an escalation tells: the card (who decides now), and the group, in the channel."""


def _escalation_due(request: ConnectionRequest, now: datetime) -> bool:
    """Whether a request awaiting approval has waited past its route's escalation."""
    rule = request.route
    return (
        request.status is Status.PENDING_APPROVAL
        and request.escalated_at is None
        and rule is not None
        and rule.escalate_after is not None
        and now - request.created_at >= rule.escalate_after
    )


class Lifecycle:
    """Moves requests on as Exalate reports and time passes."""

    def __init__(
        self,
        states: States,
        store: RequestStore,
        initiation: Initiation,
        sites: Sites,
        *,
        approval_ttl: timedelta,
        remind_after: timedelta,
        stuck_after: timedelta,
        replicas: ReplicaDirectory | None,
    ) -> None:
        self._states = states
        self._store = store
        self._initiation = initiation
        self.sites = sites
        self._approval_ttl = approval_ttl
        self._remind_after = remind_after
        self._stuck_after = stuck_after
        # Which replica creates what, so another one knows when its creator is gone.
        self._replicas = replicas

    def clock(self) -> datetime:
        return self._states.now()

    async def poll(self, site: Site, *, settle: bool = True) -> ConnectionList:
        """Read the site's connection list once and act on it: settle interrupted
        initiations, move invitations on, note the pending connections no request created.

        The list is read on every poll, also with nothing to watch: it is what tells
        whether the site's Jira and Exalate answer, and what is pending there. Without
        ``settle`` (a replica that does not hold the background lease) only that is done.
        Returns the list, for sync health. Raises ExalateError when the list cannot be
        read; the caller backs off from the site after that, and after any other
        exception, alike.
        """
        listing = await site.exalate.connection_list()
        if settle:
            await self._reconcile_stuck(site, listing)
            await self._follow_invitations(site, listing)
        if listing.complete:
            await self._note_foreign(site, listing.results)
        return listing

    async def _reconcile_stuck(self, site: Site, listing: ConnectionList) -> None:
        """Settle the site's requests left in ``initiating`` by a process that stopped
        mid-call, against ``listing``, read after they were left.

        Requests this process is initiating are skipped. Another's are settled as soon
        as the replica that began them is known to be gone; while it may be alive (or
        is not recorded), only once untouched for longer than any initiation can take.
        If Exalate has the connection it is adopted (its code is unknown), but only when
        the name was seen free just before the interrupted attempt; if it certainly has
        not, the request fails and can be retried.
        """
        cutoff = self._states.now() - self._stuck_after
        others = [
            request
            for request in await self._store.with_status([Status.INITIATING], site.name)
            if request.id not in self._initiation.in_flight
        ]
        gone: set[str] = set()
        if self._replicas is not None and others:
            gone = await self._replicas.gone({r.initiated_by for r in others if r.initiated_by})
        by_name = {name_key(connection.name): connection for connection in listing.results}
        for request in others:
            if request.initiated_by not in gone and request.updated_at > cutoff:
                continue
            existing = by_name.get(name_key(request.fields.connection_name))
            if existing is None and not listing.complete:
                continue  # one page of a longer list: absence proves nothing
            with contextlib.suppress(Conflict):  # another process settled it first
                if existing is not None:
                    if request.may_adopt:
                        await self._initiation.adopt(request, existing)
                    else:  # there before this request's attempt began: someone else's
                        await self._initiation.fail_taken(request)
                    continue
                failed = await self._states.move(
                    request,
                    Status.FAILED,
                    BOT_ACTOR,
                    error=Problem.INTERRUPTED,
                    note="interrupted initiation",
                    tell=EVERYONE,
                )
                log.warning("initiation_interrupted id=%s", failed.id)

    async def _follow_invitations(self, site: Site, listing: ConnectionList) -> None:
        """Compare the site's invited requests with ``listing`` and move them on. A
        failure on one request is logged and never keeps the others from being looked at."""
        watched = await self._store.with_status([Status.INVITED, Status.ASSISTED], site.name)
        by_id = {str(connection.id): connection for connection in listing.results}
        by_name = {name_key(connection.name): connection for connection in listing.results}
        for request in watched:
            named = by_name.get(name_key(request.fields.connection_name))
            if request.exalate_connection_id is not None:
                found = by_id.get(request.exalate_connection_id)
            else:
                found = named
            try:
                if request.status is Status.ASSISTED:
                    await self._follow_assisted(request, named, found, listing.complete)
                elif found is not None or listing.complete:  # else: absence proves nothing
                    await self._observe(request, found)
            except Exception as error:
                log.error("observe_failed id=%s kind=%s", request.id, type(error).__name__)

    async def _follow_assisted(
        self,
        request: ConnectionRequest,
        named: Connection | None,
        found: Connection | None,
        complete: bool,
    ) -> None:
        """An approver is creating it in the console: note when it appears there, and
        settle it if the partner accepts before anyone pasted the code. A connection not
        created yet is never "gone"."""
        if named is None:
            return
        if named.state in _SETTLED:
            if found is not None or complete:
                await self._observe(request, found)
        elif request.exalate_connection_id is None:
            await self._confirm_created(request, named)

    async def _note_foreign(self, site: Site, connections: list[Connection]) -> None:
        """Keep the site's pending connections that no request claims, with when each
        was first seen pending; ``/exalate status`` shows them without asking Jira."""
        ids, names = await self._store.claimed_connections(site.name)
        now = self._states.now()
        foreign = [
            c
            for c in connections
            if c.state is ConnectionState.PENDING
            and str(c.id) not in ids
            and name_key(c.name) not in names
        ]
        seen = site.seen
        since = {str(c.id): seen.pending_since.get(str(c.id), now) for c in foreign}
        seen.pending_since = since
        seen.foreign_pending = tuple(
            ForeignInvitation(c.name, str(c.id), since[str(c.id)], site.name) for c in foreign
        )
        seen.listed_at = now

    async def expire_and_remind(self) -> None:
        """Expire requests nobody decided on in time, call in the escalation group of
        those undecided past their route's limit; nudge about unaccepted invitations."""
        now = self._states.now()
        for request in await self._store.with_status([Status.PENDING_APPROVAL, Status.ASSISTED]):
            # Nobody decided, or nobody created it in the console, in time: free the name.
            if now - request.updated_at >= self._approval_ttl:
                with contextlib.suppress(Conflict):  # decided meanwhile: nothing to expire
                    expired = await self._states.move(
                        request, Status.EXPIRED, BOT_ACTOR, note="expired", tell=EVERYONE
                    )
                    log.info("request_expired id=%s", expired.id)
            elif _escalation_due(request, now):
                # Once however many replicas look, and after a restart: the one whose
                # update marks it tells the group.
                escalated = await self._store.escalate(request, at=now, tell=ESCALATION)
                if escalated is not None:
                    log.info("request_escalated id=%s", request.id)
        for request in await self._store.with_status([Status.INVITED]):
            waited = now - request.updated_at  # updated_at is when it became INVITED
            due = self._remind_after * (request.reminders_sent + 1)
            if request.reminders_sent >= 2 or waited < due:
                continue
            reminder = (
                Message(Say.REMIND)
                if request.reminders_sent == 0
                else Message(Say.NOTE, Notice.INVITE_REMINDER)
            )
            # Counted once however many replicas look: the one that counts it sends it.
            await self._store.claim_reminder(request, tell=[reminder], at=now)

    async def _observe(self, request: ConnectionRequest, found: Connection | None) -> None:
        """Act on what Exalate says of one invited request's connection.

        A connection must be missing from ``MISSES_BEFORE_GONE`` polls in a row before
        the invitation counts as gone: one short answer during a Jira restart must not
        delete a code the partner still needs. Any poll that sees it ends the run, so
        blips days apart never add up.
        """
        target: Status | None
        if found is None:
            if request.missed_polls + 1 < MISSES_BEFORE_GONE:
                await self._store.annotate(request.id, missed_polls=request.missed_polls + 1)
                return
            target, observed = Status.GONE, None
        else:
            if request.missed_polls:
                await self._store.annotate(request.id, missed_polls=0)
            observed = found.status or None  # verbatim, as Exalate says it
            target = _SETTLED.get(found.state)
            if target is None:
                await self._note_status(request, found)
                return
        told = [*EVERYONE, Message(Say.NOTE, Notice.STATE_CHANGED)]
        if request.code_dm_ref is not None:
            told.append(Message(Say.CLOSE_INVITATION))
        moved = await self._states.move_if_first(
            request,
            target,
            EXALATE_ACTOR,
            note=f"exalate reports {observed or 'no such connection'}",
            tell=told,
            exalate_status=observed,
            invitation_code=None,  # spent: the partner accepted, or it can no longer be
        )
        if moved is None:
            return  # another process saw it first and tells people
        log.info("invitation_settled id=%s status=%s", moved.id, moved.status.value)

    async def _confirm_created(self, request: ConnectionRequest, found: Connection) -> None:
        """An assisted connection appeared in Exalate: say so, once, and remember its id."""
        appeared = Message(Say.NOTE, Notice.CONNECTION_APPEARED)
        noted = await self._store.note_connection(
            request.id, str(found.id), tell=[appeared], at=self._states.now()
        )
        if noted is not None:
            log.info("assisted_connection_appeared id=%s exalate_id=%s", request.id, found.id)

    async def _note_status(self, request: ConnectionRequest, found: Connection) -> None:
        """A status the life cycle has no state for: show it, once, and keep watching.

        Unchanged since this poll read the request, nothing is written: hundreds of
        invitations pending on a site would otherwise cost as many write transactions a
        poll, each one also voiding the shared read that status answers come from."""
        if request.exalate_status == (found.status or None):
            return
        told = [CARD]
        if found.state is not ConnectionState.PENDING:
            told.append(Message(Say.NOTE, Notice.EXALATE_STATUS))
        changed = await self._store.note_status(
            request, found.status or None, tell=told, at=self._states.now()
        )
        if changed is not None and found.state is not ConnectionState.PENDING:
            log.warning("exalate_status_unknown id=%s status=%s", request.id, found.status)
