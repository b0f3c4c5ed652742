"""What people do with requests: submit, approve, reject, retry, cancel, paste and reveal a
code, and ask what is pending.

Each state change is one compare-and-set (``Transitions.move``); only the caller that
wins it performs the side effect that follows (calling Exalate, telling people).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.approvals.errors import ApprovalError, Conflict, NotAllowed
from bot.approvals.limits import NameTaken, SubmissionLimits, TooFrequent, TooManyOpen
from bot.approvals.model import (
    OPEN_STATUSES,
    AuditEvent,
    CodeDelivery,
    ConnectionRequest,
    ForeignInvitation,
    Page,
    Status,
)
from bot.approvals.rules import Draft, Field, check_draft
from bot.approvers import ApproverPolicy
from bot.log import remember_secret
from bot.metrics import Metrics
from bot.ports import DirectoryUnavailable
from bot.service.checks import LiveChecks, name_in_open_request, retired_message
from bot.service.initiation import Initiation, taken_message
from bot.service.shared_read import SharedRead
from bot.service.site import Site, Sites, UnknownSite
from bot.service.transitions import Transitions, expect, expect_seen

log = logging.getLogger(__name__)

RECENT = timedelta(days=14)
# How long a list read may be shared: another replica's change shows within this.
OTHER_REPLICAS_LAG = 2.0


@dataclass(frozen=True, slots=True)
class Submission:
    """The outcome of a form submission: a stored request, or errors per field."""

    request: ConnectionRequest | None
    errors: dict[Field, str]


class ConnectionService:
    """The use cases behind every button, form and command."""

    def __init__(
        self,
        transitions: Transitions,
        initiation: Initiation,
        checks: LiveChecks,
        sites: Sites,
        *,
        policy: ApproverPolicy,
        limits: SubmissionLimits,
        approval_ttl: timedelta,
    ) -> None:
        self._t = transitions
        self._initiation = initiation
        self._checks = checks
        self.sites = sites
        self.policy = policy
        self._limits = limits  # per requester: flooding the approvers, squatting names
        self._approval_ttl = approval_ttl
        self._open_pages: dict[tuple[int, str | None], SharedRead[Page]] = {}
        self._foreign_joined: dict[
            str | None, tuple[tuple[object, ...], tuple[ForeignInvitation, ...]]
        ] = {}

    @property
    def metrics(self) -> Metrics:
        return self._t.metrics

    def clock(self) -> datetime:
        return self._t.clock()

    def foreign_pending(self, site: str | None = None) -> tuple[ForeignInvitation, ...]:
        """Pending connections no request created, from each site's last complete list
        (``site``'s only, if given). The same tuple while no list changed: a status
        answer rendered from it is shared until then (``handlers.shared_status``)."""
        parts = tuple(s.seen.foreign_pending for s in self._sites_or(site))
        if len(parts) == 1:
            return parts[0]
        joined = self._foreign_joined.get(site)
        if joined is None or any(a is not b for a, b in zip(joined[0], parts, strict=True)):
            joined = (parts, tuple(p for part in parts for p in part))
            self._foreign_joined[site] = joined
        return joined[1]

    def foreign_listed_at(self, site: str | None = None) -> datetime | None:
        """When the oldest of those lists was read; None while a site has none yet."""
        moments = [s.seen.listed_at for s in self._sites_or(site)]
        return None if None in moments else min(m for m in moments if m is not None)

    def _sites_or(self, site: str | None) -> list[Site]:
        return list(self.sites) if site is None else [self.sites[site]]

    def warm_up(self) -> None:
        """Start loading every open site's lists, ahead of the next submission."""
        for site in self.sites.open():
            site.warm_up()

    async def submit(self, draft: Draft, requester: str, *, check_within: float) -> Submission:
        """Validate a form against the rules and the live Jira, then store it.

        Runs before the submission is acknowledged: the checks get ``check_within``
        seconds and raise TimeoutError past that, with nothing stored. Storing itself is
        never cut short, or a stored request could be left without its card. The
        approval card and the requester's note follow in ``announce``.
        """
        draft, problem = self._with_site(draft)
        if problem is not None:
            return Submission(None, {Field.SITE: problem})
        fields, errors = check_draft(draft)
        if fields is None:
            return Submission(None, errors)
        async with asyncio.timeout(check_within):
            errors = await self._checks.errors(fields)
        if errors:
            return Submission(None, errors)
        try:
            request = await self._t.repository.add(fields, requester, self._t.clock(), self._limits)
        except NameTaken:
            return Submission(None, {Field.NAME: name_in_open_request(fields.connection_name)})
        except TooManyOpen as limit:
            log.warning("submission_refused by=%s reason=too_many_open", requester)
            return Submission(None, {Field.NAME: self._too_many_open(limit)})
        except TooFrequent as limit:
            log.warning("submission_refused by=%s reason=too_frequent", requester)
            return Submission(None, {Field.NAME: _too_frequent(limit, self._limits.per_hour)})
        log.info("request_submitted id=%s by=%s", request.id, requester)
        return Submission(request, {})

    def _with_site(self, draft: Draft) -> tuple[Draft, str | None]:
        """The draft with its site resolved (the only open one if none was chosen) and,
        if left empty, that site's local short name; or what is wrong with the choice."""
        if not draft.site:
            open_sites = self.sites.open()
            if not open_sites:
                return draft, "Every site is retired: no site takes new requests."
            if len(open_sites) > 1:
                return draft, "Choose the site (the Exalate node) to create the connection on."
            draft = replace(draft, site=open_sites[0].name)
        try:
            site = self.sites[draft.site]
        except UnknownSite as error:
            return draft, str(error)
        if site.config.retired:
            return draft, retired_message(site.name)
        if not draft.local_short_name.strip():
            draft = replace(draft, local_short_name=site.config.local_short_name)
        return draft, None

    def _too_many_open(self, limit: TooManyOpen) -> str:
        expires = limit.oldest + self._approval_ttl
        return (
            f"You have {len(limit.names)} requests waiting for a decision "
            f"({', '.join(limit.names)}), the most one person may have open. One frees up "
            "when an approver decides, when you cancel one (`/exalate cancel <name>`), or "
            f"on {expires:%Y-%m-%d %H:%M} UTC, when the oldest expires undecided."
        )

    async def announce(self, request: ConnectionRequest) -> ConnectionRequest:
        """Post the approval card and tell the requester their request is waiting.

        A card that cannot be posted (the bot is not in the channel, say) leaves the
        request stored and waiting; the requester hears why, and the card follows as
        soon as posting to the channel works again.
        """
        request = await self._t.post_card(request)
        await self._t.quietly("tell_requester", self._t.notifier.tell_requester(request), request)
        if request.card_ref is not None and self._t.cards_missing:
            await self._t.post_missing_cards()
        return request

    async def check_can_decide(
        self, request_id: int, actor: str, *, seen: str | None = None
    ) -> ConnectionRequest:
        """Raise unless ``actor`` may approve the request now; returns the request.

        ``seen`` is the fingerprint on the card that was clicked: a decision applies to
        the request as it was shown, or not at all.
        """
        return await self._decidable(request_id, actor, seen, Status.PENDING_APPROVAL)

    async def check_can_reject(
        self, request_id: int, actor: str, *, seen: str | None = None
    ) -> ConnectionRequest:
        """Like ``check_can_decide``; a failed request may be rejected too (its name may
        belong to someone else's connection), which frees the name."""
        return await self._decidable(
            request_id, actor, seen, Status.PENDING_APPROVAL, Status.FAILED
        )

    async def _decidable(
        self, request_id: int, actor: str, seen: str | None, *statuses: Status
    ) -> ConnectionRequest:
        request = await self._t.load(request_id)
        await self.policy.ensure_can_decide(actor, request)
        expect(request, *statuses)
        expect_seen(request, seen)
        return request

    async def approve(
        self, request_id: int, actor: str, *, seen: str | None = None
    ) -> ConnectionRequest:
        """Approve and initiate the connection; exactly one concurrent caller wins."""
        request = await self.check_can_decide(request_id, actor, seen=seen)
        self._refuse_if_retired(request)
        won = await self._t.move(
            request,
            Status.INITIATING,
            actor,
            decided_by=actor,
            initiated_by=self._initiation.me,
            note="approved",
        )
        log.info("request_approved id=%s by=%s", won.id, actor)
        self._t.metrics.count_approval()
        return await self._initiation.initiate(won)

    async def retry(
        self, request_id: int, actor: str, *, seen: str | None = None
    ) -> ConnectionRequest:
        """Try again after a failure; approvers only. Never creates a second connection."""
        request = await self._t.load(request_id)
        await self.policy.ensure_can_decide(actor, request)
        expect(request, Status.FAILED)
        expect_seen(request, seen)
        self._refuse_if_retired(request)
        if (
            not request.may_adopt
            and await self._initiation.connection_named_quietly(request) is not None
        ):
            raise NotAllowed(taken_message(request.fields.connection_name))  # nothing changes
        won = await self._t.move(
            request, Status.INITIATING, actor, initiated_by=self._initiation.me, note="retried"
        )
        log.info("request_retried id=%s by=%s", won.id, actor)
        return await self._initiation.initiate(won)

    def _refuse_if_retired(self, request: ConnectionRequest) -> None:
        """A retired site creates no connection; its requests can still be rejected."""
        if self.sites[request.fields.site].config.retired:
            raise NotAllowed(retired_message(request.fields.site) + " Reject the request.")

    async def reject(
        self, request_id: int, actor: str, reason: str, *, seen: str | None = None
    ) -> ConnectionRequest:
        """Reject with a reason the requester will read."""
        request = await self.check_can_reject(request_id, actor, seen=seen)
        rejected = await self._t.move(
            request, Status.REJECTED, actor, decided_by=actor, reason=reason, note="rejected"
        )
        log.info("request_rejected id=%s by=%s", rejected.id, actor)
        await self._t.tell_everyone(rejected)
        return rejected

    async def reject_all_from(
        self, request_id: int, actor: str, reason: str, *, seen: str | None = None
    ) -> list[ConnectionRequest]:
        """Reject this request and every other of its requester still awaiting approval,
        with one reason: one person's flood, or names squatted, cleared in one go."""
        first = await self.reject(request_id, actor, reason, seen=seen)
        rejected = [first]
        for request in await self._t.repository.with_status([Status.PENDING_APPROVAL]):
            if request.requester != first.requester:
                continue
            with contextlib.suppress(ApprovalError):  # decided or cancelled meanwhile
                rejected.append(await self.reject(request.id, actor, reason))
        log.info(
            "requests_rejected_in_bulk requester=%s by=%s count=%s",
            first.requester,
            actor,
            len(rejected),
        )
        return rejected

    async def resend_code(self, request_id: int, actor: str) -> ConnectionRequest:
        """Deliver the stored code to the requester again, after a failed delivery.

        The requester or an approver may ask; the code still goes only to the requester.
        """
        request = await self._t.load(request_id)
        if actor != request.requester:
            await self.policy.ensure_approver(
                actor, "Only the requester or an approver can resend the code."
            )
        sealed = await self._t.repository.invitation_code(request.id)
        if request.status is not Status.INVITED or sealed is None:
            raise Conflict(request)
        if request.code_delivery is not CodeDelivery.UNDELIVERED:
            raise NotAllowed("The code was delivered already; the requester can Show code.")
        code = self._t.vault.open(sealed)
        remember_secret(code)
        return await self._t.deliver(request, code)

    async def check_can_paste(self, request_id: int, actor: str) -> ConnectionRequest:
        """Raise unless ``actor`` may paste the code of a connection whose code was lost."""
        request = await self._t.load(request_id)
        await self.policy.ensure_approver(actor, "Only approvers can paste an invitation code.")
        expect(request, Status.INVITED, Status.ASSISTED)
        if request.code_delivery is not CodeDelivery.NEVER_RECEIVED:
            raise NotAllowed("The bot has this connection's code already.")
        return request

    async def paste_code(self, request_id: int, actor: str, code: str) -> ConnectionRequest:
        """Store a code copied from the Exalate console and deliver it privately.

        The store is a compare-and-set on "invited, no code yet": of two approvers
        pasting at once, one delivers and the other is told.
        """
        request = await self.check_can_paste(request_id, actor)
        sealed = self._t.vault.seal(code)
        if request.status is Status.ASSISTED:
            # Created in the console just now: look for it, so the poller can follow it.
            existing = await self._initiation.connection_named_quietly(request)
            stored: ConnectionRequest | None = await self._t.repository.transition(
                request,
                Status.INVITED,
                actor=actor,
                at=self._t.clock(),
                note="created in the console",
                invitation_code=sealed,
                exalate_connection_id=str(existing.id)
                if existing
                else request.exalate_connection_id,
                exalate_status=existing.status if existing else None,
            )
        else:
            stored = await self._t.repository.store_code(request.id, sealed)
        if stored is None:
            raise Conflict(await self._t.load(request.id))
        await self._t.repository.record(stored, actor, self._t.clock(), "code pasted")
        log.info("code_pasted id=%s by=%s", request.id, actor)
        return await self._t.deliver(stored, code)

    async def cancel(self, request_id: int, actor: str) -> ConnectionRequest:
        """The requester withdraws a request that still awaits approval."""
        request = await self._t.load(request_id)
        if actor != request.requester:
            raise NotAllowed("Only the requester can cancel a request; approvers reject it.")
        expect(request, Status.PENDING_APPROVAL)
        cancelled = await self._t.move(request, Status.CANCELLED, actor, note="cancelled")
        log.info("request_cancelled id=%s by=%s", cancelled.id, actor)
        await self._t.tell_everyone(cancelled)
        return cancelled

    async def cancel_named(
        self, connection_name: str, actor: str, site: str | None = None
    ) -> ConnectionRequest:
        """``/exalate cancel <connection name> [site=…]``."""
        return await self.cancel((await self._named(connection_name, site)).id, actor)

    async def _named(self, connection_name: str, site: str | None) -> ConnectionRequest:
        """The newest request for a connection name (on ``site``); a name two sites
        have is refused until the person says which."""
        if site is not None:
            site = self.sites[site].name
        else:
            sites = await self._t.repository.sites_named(connection_name)
            if len(sites) > 1:
                raise ApprovalError(
                    f"Sites {', '.join(sites)} each have a request named {connection_name}; "
                    f"say which, e.g. `site={sites[0]}`."
                )
        request = await self._t.repository.named(connection_name, site)
        if request is None:
            where = f" on site {site}" if site is not None and self.sites.several else ""
            raise ApprovalError(
                f"There is no request for a connection named {connection_name}{where}."
            )
        return request

    async def reveal_code(self, request_id: int, actor: str) -> tuple[ConnectionRequest, str]:
        """The stored code again, for the requester alone, while the partner has not
        accepted; every reveal is audited."""
        request = await self._t.load(request_id)
        if actor != request.requester:
            raise NotAllowed("Only the requester can see the invitation code.")
        expect(request, Status.INVITED)
        sealed = await self._t.repository.invitation_code(request.id)
        if sealed is None:
            raise NotAllowed(
                "The bot never received this connection's code; copy it from the Exalate "
                f"console (Connections → {request.fields.connection_name})."
            )
        await self._t.repository.record(request, actor, self._t.clock(), "code revealed")
        log.info("code_revealed id=%s by=%s", request.id, actor)
        code = self._t.vault.open(sealed)
        remember_secret(code)
        return request, code

    async def own_request(self, request_id: int, actor: str) -> ConnectionRequest:
        """A request of ``actor``'s, e.g. to ask for it again after a rejection."""
        request = await self._t.load(request_id)
        if actor != request.requester:
            raise NotAllowed("Only the requester can ask for this request again.")
        if not request.name_taken:
            expect(request, Status.REJECTED, Status.EXPIRED, Status.CANCELLED)
        return request

    async def open_requests(self, limit: int, site: str | None = None) -> Page:
        """Requests awaiting approval, in flight, failed, or awaiting the partner (on
        ``site`` only, if given).

        Everyone asking at about the same time shares one read (``SharedRead``): never
        older than this process's last write, nor than ``OTHER_REPLICAS_LAG``."""
        return await self._open_page(limit, site).get()

    async def renew_open_requests(self, limit: int, site: str | None = None) -> None:
        """Once an answer from ``open_requests`` is out: read again if the shared read is
        past half its age, so that people who keep asking are answered without waiting
        for the database."""
        await self._open_page(limit, site).renew(older_than=OTHER_REPLICAS_LAG / 2)

    def _open_page(self, limit: int, site: str | None) -> SharedRead[Page]:
        if (limit, site) not in self._open_pages:
            repository = self._t.repository
            self._open_pages[limit, site] = SharedRead(
                lambda: repository.page(OPEN_STATUSES, limit=limit, site=site),
                writes=lambda: repository.writes,
                max_age=OTHER_REPLICAS_LAG,
                clock=lambda: self._t.clock().timestamp(),  # the runtime's: tests move it
            )
        return self._open_pages[limit, site]

    async def mine(self, user_id: str, limit: int) -> Page:
        """A person's requests, whatever their state, newest first."""
        return await self._t.repository.page(limit=limit, requester=user_id)

    async def awaiting_decision(self, user_id: str, limit: int) -> Page | None:
        """Requests ``user_id`` could approve now; ``None`` if they are no approver."""
        try:
            approver = await self.policy.is_approver(user_id)
        except DirectoryUnavailable:  # a failed group lookup hides one list, nothing more
            approver = False
        if not approver:
            return None
        return await self._t.repository.page(
            [Status.PENDING_APPROVAL], limit=limit, not_requester=user_id
        )

    async def invitations(self, limit: int) -> Page:
        """Invitations the partner has not accepted yet."""
        return await self._t.repository.page([Status.INVITED], limit=limit)

    async def recently_accepted(self, limit: int) -> Page:
        """Connections the partner accepted in the last two weeks, latest first."""
        since = self._t.clock() - RECENT
        return await self._t.repository.page([Status.ACTIVE], limit=limit, changed_since=since)

    async def history(
        self, connection_name: str, viewer: str, site: str | None = None
    ) -> tuple[ConnectionRequest, list[AuditEvent] | None]:
        """The newest request for a connection name (on ``site``), with its audit trail
        if ``viewer`` may read it: the requester and the approvers (who approved, who
        revealed the code is theirs to know); None for anyone else."""
        request = await self._named(connection_name, site)
        if viewer != request.requester:
            try:
                if not await self.policy.is_approver(viewer):
                    return request, None
            except DirectoryUnavailable:
                return request, None
        return request, await self._t.repository.history(request.id)


def _too_frequent(limit: TooFrequent, per_hour: int) -> str:
    return (
        f"You have submitted {per_hour} requests in the last hour, the most one person "
        f"may; you can submit again at {limit.free_at:%H:%M} UTC. Your answers are kept."
    )
