"""The use cases: submit, approve, reject, retry, resend, and what is pending.

Each state change is one compare-and-set in the repository; only the caller that wins
it performs the side effect that follows (calling Exalate, telling people). Telling
people is best effort: a Slack failure is logged and never undoes or blocks a
transition, so the request always stays in a state someone can finish from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from bot.approvals.errors import ApprovalError, Conflict, NotAllowed, RequestNotFound
from bot.approvals.model import (
    OPEN_STATUSES,
    AuditEvent,
    ConnectionRequest,
    CreateOutcome,
    ForeignInvitation,
    Page,
    RequestFields,
    Status,
)
from bot.approvals.rules import Draft, Field, check_draft
from bot.approvers import ApproverPolicy
from bot.cache import CacheUnavailable, TimedCache
from bot.exalate import (
    Connection,
    ConnectionSpec,
    CreatedConnection,
    ExalateClient,
    ExalateEndpointMissing,
    ExalateError,
    ExalateNameConflict,
    ExalateNotSent,
    ExalateUnavailable,
    Project,
)
from bot.log import remember_secret
from bot.metrics import Metrics
from bot.ports import DeliveryFailed, DirectoryUnavailable, Notice, Notifier
from bot.vault import Vault
from storage import NameTaken, RequestRepository, SubmissionLimits, TooFrequent, TooManyOpen
from storage.replicas import Replicas

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a form submission may wait on Jira before telling the person to try again;
# Slack closes the window at 3 s and the rest of the work needs some of it.
LOOKUP_BUDGET_SECONDS = 1.5
EXALATE_ACTOR = "exalate"  # transitions Exalate caused: created, failed, accepted
BOT_ACTOR = "bot"  # transitions time caused: expiry
RECENT = timedelta(days=14)
# A card post (with Slack's rate-limit retries) takes seconds; a claim older than this
# was left by a process that stopped mid-post.
CARD_CLAIM_LIFETIME = timedelta(minutes=10)
MISSES_BEFORE_GONE = 3
# Exalate's statuses (an opaque string; documented: Pending, Active, Deactivated).
_SETTLED = {"ACTIVE": Status.ACTIVE, "DEACTIVATED": Status.DEACTIVATED}


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Submission:
    """The outcome of a form submission: a stored request, or errors per field."""

    request: ConnectionRequest | None
    errors: dict[Field, str]


class ConnectionService:
    """Runs the request life cycle; the only place that changes a request's state."""

    def __init__(
        self,
        *,
        repository: RequestRepository,
        exalate: ExalateClient,
        vault: Vault,
        policy: ApproverPolicy,
        notifier: Notifier,
        projects: TimedCache[list[Project]],
        connections: TimedCache[list[Connection]],
        approval_ttl: timedelta = timedelta(days=7),
        remind_after: timedelta = timedelta(days=3),
        stuck_after: timedelta = timedelta(seconds=45),
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
        assisted: bool = False,
        project_allowed: Callable[[str], bool] = lambda _key: True,
        limits: SubmissionLimits = SubmissionLimits(max_open=3, per_hour=10),  # noqa: B008
        replicas: Replicas | None = None,
    ) -> None:
        self._repository = repository
        self._exalate = exalate
        self._vault = vault
        self.policy = policy
        self._notifier = notifier
        self.projects = projects
        self._connections = connections
        self._approval_ttl = approval_ttl
        self._remind_after = remind_after
        self._stuck_after = stuck_after
        self.metrics = metrics or Metrics()
        self._assisted = assisted  # EXALATE_INITIATION=assisted: never call the create API
        self._project_allowed = project_allowed  # EXALATE_PROJECTS
        self._limits = limits  # per requester: flooding the approvers, squatting names
        # Which replica creates what, so another one knows when its creator is gone.
        self._replicas = replicas
        self._me = replicas.me.id if replicas is not None else None
        self.clock = clock
        self._cards_missing = True  # unknown at start: look once
        self._initiating: set[int] = set()  # request ids this process is creating now
        self.foreign_pending: tuple[ForeignInvitation, ...] = ()
        """Pending connections no request created, from the last complete list read."""
        self.foreign_listed_at: datetime | None = None
        self._pending_since: dict[str, datetime] = {}

    def warm_up(self) -> None:
        """Start loading Jira's lists in the background, ahead of the next submission."""
        self.projects.refresh_soon()
        self._connections.refresh_soon()

    async def submit(self, draft: Draft, requester: str, *, check_within: float) -> Submission:
        """Validate a form against the rules and the live Jira, then store it.

        Runs before the submission is acknowledged: the checks get ``check_within``
        seconds and raise TimeoutError past that, with nothing stored. Storing itself is
        never cut short, or a stored request could be left without its card. The
        approval card and the requester's note follow in ``announce``.
        """
        fields, errors = check_draft(draft)
        if fields is None:
            return Submission(None, errors)
        async with asyncio.timeout(check_within):
            errors = await self._live_errors(fields)
        if errors:
            return Submission(None, errors)
        try:
            request = await self._repository.add(fields, requester, self.clock(), self._limits)
        except NameTaken:
            return Submission(None, {Field.NAME: _name_in_open_request(fields.connection_name)})
        except TooManyOpen as limit:
            log.warning("submission_refused by=%s reason=too_many_open", requester)
            return Submission(None, {Field.NAME: self._too_many_open(limit)})
        except TooFrequent as limit:
            log.warning("submission_refused by=%s reason=too_frequent", requester)
            return Submission(None, {Field.NAME: _too_frequent(limit, self._limits.per_hour)})
        log.info("request_submitted id=%s by=%s", request.id, requester)
        return Submission(request, {})

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
        request = await self._post_card(request)
        await self._quietly("tell_requester", self._notifier.tell_requester(request), request)
        if request.card_ref is not None and self._cards_missing:
            await self.post_missing_cards()
        return request

    async def post_missing_cards(self) -> None:
        """Post the cards that could not be posted before, and those whose post was
        claimed by a process that stopped mid-post (claims older than any post takes)."""
        await self._repository.release_stale_card_claims(self.clock() - CARD_CLAIM_LIFETIME)
        self._cards_missing = False
        for waiting in await self._repository.without_card():
            await self._post_card(waiting)

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
        request = await self._load(request_id)
        await self.policy.ensure_can_decide(actor, request)
        _expect(request, *statuses)
        _expect_seen(request, seen)
        return request

    async def approve(
        self, request_id: int, actor: str, *, seen: str | None = None
    ) -> ConnectionRequest:
        """Approve and initiate the connection; exactly one concurrent caller wins."""
        request = await self.check_can_decide(request_id, actor, seen=seen)
        won = await self._move(
            request,
            Status.INITIATING,
            actor,
            decided_by=actor,
            initiated_by=self._me,
            note="approved",
        )
        log.info("request_approved id=%s by=%s", won.id, actor)
        self.metrics.count_approval()
        return await self._initiate(won)

    async def retry(
        self, request_id: int, actor: str, *, seen: str | None = None
    ) -> ConnectionRequest:
        """Try again after a failure; approvers only. Never creates a second connection."""
        request = await self._load(request_id)
        await self.policy.ensure_can_decide(actor, request)
        _expect(request, Status.FAILED)
        _expect_seen(request, seen)
        name = request.fields.connection_name
        if not request.may_adopt and await self._connection_named_quietly(name) is not None:
            raise NotAllowed(_taken_message(name))  # nothing changes
        won = await self._move(
            request, Status.INITIATING, actor, initiated_by=self._me, note="retried"
        )
        log.info("request_retried id=%s by=%s", won.id, actor)
        return await self._initiate(won)

    async def reject(
        self, request_id: int, actor: str, reason: str, *, seen: str | None = None
    ) -> ConnectionRequest:
        """Reject with a reason the requester will read."""
        request = await self.check_can_reject(request_id, actor, seen=seen)
        rejected = await self._move(
            request, Status.REJECTED, actor, decided_by=actor, reason=reason, note="rejected"
        )
        log.info("request_rejected id=%s by=%s", rejected.id, actor)
        await self._tell_everyone(rejected)
        return rejected

    async def reject_all_from(
        self, request_id: int, actor: str, reason: str, *, seen: str | None = None
    ) -> list[ConnectionRequest]:
        """Reject this request and every other of its requester still awaiting approval,
        with one reason: one person's flood, or names squatted, cleared in one go."""
        first = await self.reject(request_id, actor, reason, seen=seen)
        rejected = [first]
        for request in await self._repository.with_status([Status.PENDING_APPROVAL]):
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
        request = await self._load(request_id)
        if actor != request.requester:
            await self.policy.ensure_approver(
                actor, "Only the requester or an approver can resend the code."
            )
        sealed = await self._repository.invitation_code(request.id)
        if request.status is not Status.INVITED or sealed is None:
            raise Conflict(request)
        if request.code_dm_ref is not None or request.error is None:
            raise NotAllowed("The code was delivered already; the requester can Show code.")
        code = self._vault.open(sealed)
        remember_secret(code)
        return await self._deliver(request, code)

    async def check_can_paste(self, request_id: int, actor: str) -> ConnectionRequest:
        """Raise unless ``actor`` may paste the code of a connection whose code was lost."""
        request = await self._load(request_id)
        await self.policy.ensure_approver(actor, "Only approvers can paste an invitation code.")
        _expect(request, Status.INVITED, Status.ASSISTED)
        if request.has_invitation_code:
            raise NotAllowed("The bot has this connection's code already.")
        return request

    async def paste_code(self, request_id: int, actor: str, code: str) -> ConnectionRequest:
        """Store a code copied from the Exalate console and deliver it privately.

        The store is a compare-and-set on "invited, no code yet": of two approvers
        pasting at once, one delivers and the other is told.
        """
        request = await self.check_can_paste(request_id, actor)
        sealed = self._vault.seal(code)
        if request.status is Status.ASSISTED:
            # Created in the console just now: look for it, so the poller can follow it.
            existing = await self._connection_named_quietly(request.fields.connection_name)
            stored: ConnectionRequest | None = await self._repository.transition(
                request,
                Status.INVITED,
                actor=actor,
                at=self.clock(),
                note="created in the console",
                invitation_code=sealed,
                exalate_connection_id=str(existing.id)
                if existing
                else request.exalate_connection_id,
                exalate_status=existing.status if existing else None,
            )
        else:
            stored = await self._repository.store_code(request.id, sealed)
        if stored is None:
            raise Conflict(await self._load(request.id))
        await self._repository.record(stored, actor, self.clock(), "code pasted")
        log.info("code_pasted id=%s by=%s", request.id, actor)
        return await self._deliver(stored, code)

    async def reconcile_stuck(self) -> None:
        """Settle requests left in ``initiating`` by a process that stopped mid-call.

        Requests this process is initiating are skipped. Another's are settled as soon
        as the replica that began them is known to be gone; while it may be alive (or
        is not recorded), only once untouched for longer than any initiation can take.
        If Exalate has the connection it is adopted (its code is unknown), but only when
        the name was seen free just before the interrupted attempt; if it certainly has
        not, the request fails and can be retried. Raises ExalateError when Exalate
        cannot be asked.
        """
        cutoff = self.clock() - self._stuck_after
        others = [
            request
            for request in await self._repository.with_status([Status.INITIATING])
            if request.id not in self._initiating
        ]
        gone: set[str] = set()
        if self._replicas is not None:
            gone = await self._replicas.gone({r.initiated_by for r in others if r.initiated_by})
        stuck = [r for r in others if r.initiated_by in gone or r.updated_at <= cutoff]
        if not stuck:
            return
        listing = await self._exalate.connection_list()
        by_name = {connection.name.lower(): connection for connection in listing.results}
        for request in stuck:
            existing = by_name.get(request.fields.connection_name.lower())
            if existing is None and not listing.complete:
                continue  # one page of a longer list: absence proves nothing
            with contextlib.suppress(Conflict):  # another process settled it first
                if existing is not None:
                    if request.may_adopt:
                        await self._adopt(request, existing)
                    else:  # there before this request's attempt began: someone else's
                        await self._fail_taken(request)
                    continue
                failed = await self._move(
                    request,
                    Status.FAILED,
                    BOT_ACTOR,
                    error=(
                        "The bot stopped while creating this connection, and Exalate has no "
                        "connection by this name: nothing was created. Retry creates it."
                    ),
                    note="interrupted initiation",
                )
                log.warning("initiation_interrupted id=%s", failed.id)
                await self._tell_everyone(failed)

    async def cancel(self, request_id: int, actor: str) -> ConnectionRequest:
        """The requester withdraws a request that still awaits approval."""
        request = await self._load(request_id)
        if actor != request.requester:
            raise NotAllowed("Only the requester can cancel a request; approvers reject it.")
        _expect(request, Status.PENDING_APPROVAL)
        cancelled = await self._move(request, Status.CANCELLED, actor, note="cancelled")
        log.info("request_cancelled id=%s by=%s", cancelled.id, actor)
        await self._tell_everyone(cancelled)
        return cancelled

    async def cancel_named(self, connection_name: str, actor: str) -> ConnectionRequest:
        """``/exalate cancel <connection name>``."""
        return await self.cancel((await self._named(connection_name)).id, actor)

    async def reveal_code(self, request_id: int, actor: str) -> tuple[ConnectionRequest, str]:
        """The stored code again, for the requester alone, while the partner has not
        accepted; every reveal is audited."""
        request = await self._load(request_id)
        if actor != request.requester:
            raise NotAllowed("Only the requester can see the invitation code.")
        _expect(request, Status.INVITED)
        sealed = await self._repository.invitation_code(request.id)
        if sealed is None:
            raise NotAllowed(
                "The bot never received this connection's code; copy it from the Exalate "
                f"console (Connections → {request.fields.connection_name})."
            )
        await self._repository.record(request, actor, self.clock(), "code revealed")
        log.info("code_revealed id=%s by=%s", request.id, actor)
        code = self._vault.open(sealed)
        remember_secret(code)
        return request, code

    async def own_request(self, request_id: int, actor: str) -> ConnectionRequest:
        """A request of ``actor``'s, e.g. to ask for it again after a rejection."""
        request = await self._load(request_id)
        if actor != request.requester:
            raise NotAllowed("Only the requester can ask for this request again.")
        if not request.name_taken:
            _expect(request, Status.REJECTED, Status.EXPIRED, Status.CANCELLED)
        return request

    async def pending(self, limit: int) -> Page:
        """Requests awaiting approval, in flight, failed, or awaiting the partner."""
        return await self._repository.page(OPEN_STATUSES, limit=limit)

    async def mine(self, user_id: str, limit: int) -> Page:
        """A person's requests, whatever their state, newest first."""
        return await self._repository.page(limit=limit, requester=user_id)

    async def awaiting_decision(self, user_id: str, limit: int) -> Page | None:
        """Requests ``user_id`` could approve now; ``None`` if they are no approver."""
        try:
            approver = await self.policy.is_approver(user_id)
        except DirectoryUnavailable:  # a failed group lookup hides one list, nothing more
            approver = False
        if not approver:
            return None
        return await self._repository.page(
            [Status.PENDING_APPROVAL], limit=limit, not_requester=user_id
        )

    async def invitations(self, limit: int) -> Page:
        """Invitations the partner has not accepted yet."""
        return await self._repository.page([Status.INVITED], limit=limit)

    async def recently_accepted(self, limit: int) -> Page:
        """Connections the partner accepted in the last two weeks, latest first."""
        since = self.clock() - RECENT
        return await self._repository.page([Status.ACTIVE], limit=limit, changed_since=since)

    async def history(
        self, connection_name: str, viewer: str
    ) -> tuple[ConnectionRequest, list[AuditEvent] | None]:
        """The newest request for a connection name, with its audit trail if ``viewer``
        may read it: the requester and the approvers (who approved, who revealed the
        code is theirs to know); None for anyone else."""
        request = await self._named(connection_name)
        if viewer != request.requester:
            try:
                if not await self.policy.is_approver(viewer):
                    return request, None
            except DirectoryUnavailable:
                return request, None
        return request, await self._repository.history(request.id)

    async def poll_invitations(self, *, settle: bool = True) -> None:
        """Compare invited requests with Exalate's connection list and move them on, and
        note the pending connections no request created.

        The list is read on every poll, also with nothing to watch: it is what tells
        whether Jira and Exalate answer, and what is pending in Exalate. Without
        ``settle`` (a replica that does not hold the background lease) only that is
        done. Raises ExalateError when Exalate cannot be read; the caller backs off. A
        failure on one request is logged and never keeps the others from being looked at.
        """
        watched = (
            await self._repository.with_status([Status.INVITED, Status.ASSISTED]) if settle else []
        )
        listing = await self._exalate.connection_list()
        by_id = {str(connection.id): connection for connection in listing.results}
        by_name = {connection.name.lower(): connection for connection in listing.results}
        for request in watched:
            if request.status is Status.ASSISTED:
                appeared = by_name.get(request.fields.connection_name.lower())
                if appeared is None:
                    continue  # not created in the console yet; never "gone"
                if _SETTLED.get((appeared.status or "").upper()) is None:
                    if request.exalate_connection_id is None:
                        await self._confirm_created(request, appeared)
                    continue
                # Accepted (or deactivated) before anyone pasted the code: settle it too.
            if request.exalate_connection_id is not None:
                found = by_id.get(request.exalate_connection_id)
            else:
                found = by_name.get(request.fields.connection_name.lower())
            if found is None and not listing.complete:
                continue  # one page of a longer list: absence proves nothing
            try:
                await self._observe(request, found)
            except Exception as error:
                log.error("observe_failed id=%s kind=%s", request.id, type(error).__name__)
        if listing.complete:
            await self._note_foreign(listing.results)

    async def _note_foreign(self, connections: list[Connection]) -> None:
        """Keep the pending connections that no request claims, with when each was first
        seen pending; ``/exalate status`` shows them without asking Jira."""
        ids, names = await self._repository.claimed_connections()
        now = self.clock()
        foreign = [
            c
            for c in connections
            if (c.status or "").upper() == "PENDING"
            and str(c.id) not in ids
            and c.name.lower() not in names
        ]
        since = {str(c.id): self._pending_since.get(str(c.id), now) for c in foreign}
        self._pending_since = since
        self.foreign_pending = tuple(
            ForeignInvitation(c.name, str(c.id), since[str(c.id)]) for c in foreign
        )
        self.foreign_listed_at = now

    async def expire_and_remind(self) -> None:
        """Expire requests nobody decided on in time; nudge about unaccepted invitations."""
        now = self.clock()
        for request in await self._repository.with_status(
            [Status.PENDING_APPROVAL, Status.ASSISTED]
        ):
            # Nobody decided, or nobody created it in the console, in time: free the name.
            if now - request.updated_at >= self._approval_ttl:
                with contextlib.suppress(Conflict):  # decided meanwhile: nothing to expire
                    expired = await self._move(request, Status.EXPIRED, BOT_ACTOR, note="expired")
                    log.info("request_expired id=%s", expired.id)
                    await self._tell_everyone(expired)
        for request in await self._repository.with_status([Status.INVITED]):
            waited = now - request.updated_at  # updated_at is when it became INVITED
            due = self._remind_after * (request.reminders_sent + 1)
            if request.reminders_sent >= 2 or waited < due:
                continue
            if not await self._repository.claim_reminder(request):
                continue  # another process sends this one
            if request.reminders_sent == 0:
                reminder = self._notifier.remind_requester(request)
            else:
                reminder = self._notifier.note_in_thread(request, Notice.INVITE_REMINDER)
            await self._quietly("reminder", reminder, request)

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
                await self._repository.annotate(request.id, missed_polls=request.missed_polls + 1)
                return
            target, observed = Status.GONE, None
        else:
            if request.missed_polls:
                await self._repository.annotate(request.id, missed_polls=0)
            observed = (found.status or "")[:64] or None  # verbatim, as Exalate says it
            target = _SETTLED.get((observed or "").upper())
            if target is None:
                await self._note_status(request, observed)
                return
        moved = await self._repository.transition(
            request,
            target,
            actor=EXALATE_ACTOR,
            at=self.clock(),
            note=f"exalate reports {observed or 'no such connection'}",
            exalate_status=observed,
            invitation_code=None,  # spent: the partner accepted, or it can no longer be
        )
        if moved is None:
            return  # another process saw it first and tells people
        log.info("invitation_settled id=%s status=%s", moved.id, moved.status.value)
        await self._tell_everyone(moved)
        thread_note = self._notifier.note_in_thread(moved, Notice.STATE_CHANGED)
        await self._quietly("note_in_thread", thread_note, moved)
        if moved.code_dm_ref is not None:
            await self._quietly("close_invitation", self._notifier.close_invitation(moved), moved)

    async def _confirm_created(self, request: ConnectionRequest, found: Connection) -> None:
        """An assisted connection appeared in Exalate: say so, once, and remember its id."""
        noted = await self._repository.note_connection(request.id, str(found.id))
        if noted is not None:
            log.info("assisted_connection_appeared id=%s exalate_id=%s", request.id, found.id)
            note = self._notifier.note_in_thread(noted, Notice.CONNECTION_APPEARED)
            await self._quietly("note_in_thread", note, noted)

    async def _note_status(self, request: ConnectionRequest, observed: str | None) -> None:
        """A status the life cycle has no state for: show it, once, and keep watching."""
        changed = await self._repository.note_status(request, observed)
        if changed is None:
            return  # unchanged, or another process recorded it first
        await self._quietly("update_card", self._notifier.update_card(changed), changed)
        if (observed or "").upper() != "PENDING":
            log.warning("exalate_status_unknown id=%s status=%s", request.id, observed)
            note = self._notifier.note_in_thread(changed, Notice.EXALATE_STATUS)
            await self._quietly("note_in_thread", note, changed)

    async def _initiate(self, request: ConnectionRequest) -> ConnectionRequest:
        """Create the private Script connection and deliver the code, or record why not."""
        self._initiating.add(request.id)
        try:
            return await self._create(request)
        finally:
            self._initiating.discard(request.id)

    async def _create(self, request: ConnectionRequest) -> ConnectionRequest:
        """One create attempt, checked against a complete connection list first.

        A name already in Exalate is adopted only if an earlier attempt of this request,
        begun with the name free, may have created it (its answer was lost); otherwise
        it is someone else's and create is not called (in assisted mode too, so the
        connection that appears next is the approver's). The attempt's outcome is
        recorded, so a later retry or a restart knows which case it is in.
        """
        await self._quietly("update_card", self._notifier.update_card(request), request)
        try:
            existing = await self._connection_named(request.fields.connection_name)
        except ExalateError as error:
            return await self._fail(request, error)
        if existing is not None:
            if request.may_adopt:
                return await self._adopt(request, existing)
            return await self._fail_taken(request)
        request = (
            await self._repository.annotate(
                request.id, name_absent_at=self.clock(), last_attempt=None
            )
            or request
        )
        if self._assisted:  # the name was free: what appears under it now is the console's
            return await self._assist(request)
        try:
            created = await self._exalate.create_connection(_spec(request.fields))
        except ExalateEndpointMissing:
            return await self._assist(request)  # this Exalate has no creation API
        except ExalateNameConflict:
            return await self._fail_taken(request)  # created by someone else since the check
        except ExalateError as error:
            return await self._fail(request, error, _outcome_of(error))
        self._connections.invalidate()
        code = created.invitation_code.get_secret_value()
        remember_secret(code)
        sealed = self._vault.seal(code)
        try:
            invited = await self._move(
                request,
                Status.INVITED,
                EXALATE_ACTOR,
                exalate_connection_id=str(created.id),
                invitation_code=sealed,
                exalate_status=created.status,
                note="connection created",
            )
        except Conflict:
            invited = await self._complete_late(request.id, sealed, created)
        except Exception:
            # The connection exists and only this process knows its code: hand it over.
            log.error("code_not_stored id=%s; delivering it directly", request.id)
            await self._quietly(
                "deliver_invitation", self._notifier.deliver_invitation(request, code), request
            )
            raise
        log.info("connection_created id=%s exalate_id=%s", invited.id, created.id)
        return await self._deliver(invited, code)

    async def _complete_late(
        self, request_id: int, sealed: bytes, created: CreatedConnection
    ) -> ConnectionRequest:
        """Exalate answered after another replica settled the request, thinking this one
        gone: adopted without its code, or failed as interrupted. The code completes it
        either way; Conflict if it was settled otherwise (rejected after the failure)."""
        stored = await self._repository.store_code(request_id, sealed)
        if stored is None:
            current = await self._load(request_id)
            if current.status is not Status.FAILED:
                raise Conflict(current)
            stored = await self._move(
                current,
                Status.INVITED,
                EXALATE_ACTOR,
                exalate_connection_id=str(created.id),
                invitation_code=sealed,
                exalate_status=created.status,
                note="connection created after all",
            )
        log.warning("code_stored_late id=%s", request_id)
        return stored

    async def _fail(
        self,
        request: ConnectionRequest,
        error: ExalateError,
        outcome: CreateOutcome | None = None,
    ) -> ConnectionRequest:
        """Fail the attempt with Exalate's reason; ``outcome`` when create was called."""
        recorded = {"last_attempt": outcome.value} if outcome is not None else {}
        failed = await self._move(
            request, Status.FAILED, EXALATE_ACTOR, error=str(error), **recorded
        )
        log.warning("initiation_failed id=%s kind=%s", request.id, type(error).__name__)
        self.metrics.count_error(type(error).__name__)
        await self._tell_everyone(failed)
        return failed

    async def _fail_taken(self, request: ConnectionRequest) -> ConnectionRequest:
        """The name belongs to a connection this request did not create: never take it."""
        failed = await self._move(
            request,
            Status.FAILED,
            EXALATE_ACTOR,
            error=_taken_message(request.fields.connection_name),
            last_attempt=CreateOutcome.NAME_TAKEN.value,
            note="name taken in exalate",
        )
        log.warning("initiation_name_taken id=%s", request.id)
        self.metrics.count_error("ExalateNameTaken")
        await self._tell_everyone(failed)
        return failed

    async def _connection_named(self, name: str) -> Connection | None:
        """The connection called ``name`` in a complete list; ExalateUnavailable when the
        list is not complete, because then absence proves nothing."""
        listing = await self._exalate.connection_list()
        wanted = name.casefold()
        for connection in listing.results:
            if connection.name.casefold() == wanted:
                return connection
        if not listing.complete:
            raise ExalateUnavailable(
                "Exalate's connection list came back incomplete, so the bot could not make "
                "sure the name is free; nothing was created. Retry."
            )
        return None

    async def _connection_named_quietly(self, name: str) -> Connection | None:
        """The connection called ``name``, or None, also when Exalate cannot say now."""
        try:
            return await self._connection_named(name)
        except ExalateError:
            return None

    async def _assist(self, request: ConnectionRequest) -> ConnectionRequest:
        """Hand the creation to the approver: the exact values for the console's wizard,
        and the Paste invitation code button that brings the code back to the requester."""
        assisted = await self._move(request, Status.ASSISTED, BOT_ACTOR, note="assisted initiation")
        log.info("initiation_assisted id=%s", assisted.id)
        await self._quietly("update_card", self._notifier.update_card(assisted), assisted)
        await self._quietly("guide_approver", self._notifier.guide_approver(assisted), assisted)
        return assisted

    async def _adopt(self, request: ConnectionRequest, existing: Connection) -> ConnectionRequest:
        """Take over a connection an earlier attempt created; its code is unknown."""
        invited = await self._move(
            request,
            Status.INVITED,
            EXALATE_ACTOR,
            exalate_connection_id=str(existing.id),
            error=(
                "Exalate has this connection, but its invitation code never reached the bot "
                "(the answer to the create call was lost). An approver can copy the code from "
                f"the Exalate console (Connections → {request.fields.connection_name}) and "
                "use Paste invitation code: it then goes to the requester privately."
            ),
            note="existing connection adopted",
        )
        log.info("connection_adopted id=%s exalate_id=%s", invited.id, existing.id)
        await self._tell_everyone(invited)
        return invited

    async def _deliver(self, request: ConnectionRequest, code: str) -> ConnectionRequest:
        """DM the code; on failure keep it stored and let the card offer a resend."""
        try:
            dm_ref = await self._notifier.deliver_invitation(request, code)
        except Exception as error:
            reason = _why(error)
            log.warning("delivery_failed id=%s reason=%s", request.id, reason)
            self.metrics.count_error(f"delivery_{reason}")
            problem = (
                f"The invitation code could not be sent to the requester by DM ({reason}). "
                "It is stored encrypted; use Resend code once they can receive DMs."
            )
            request = await self._repository.annotate(request.id, error=problem) or request
        else:
            delivered = await self._repository.annotate(request.id, error=None, code_dm_ref=dm_ref)
            request = delivered or request
        await self._quietly("update_card", self._notifier.update_card(request), request)
        return request

    async def _post_card(self, request: ConnectionRequest) -> ConnectionRequest:
        """Post the card once: whoever claims it posts it, and gives the claim back on failure."""
        if not await self._repository.claim_card(request.id, self.clock()):
            return request
        card_ref = None
        try:
            card_ref = await self._quietly("post_card", self._notifier.post_card(request), request)
            if card_ref is None:
                return request
            await self._repository.set_card(request.id, card_ref)
        finally:
            if card_ref is None:  # the post failed, or something stopped us: let go
                await self._repository.release_card(request.id)
                self._cards_missing = True
        posted = await self._load(request.id)
        if posted.status is not request.status:  # decided while the card was on its way
            await self._quietly("update_card", self._notifier.update_card(posted), posted)
        return posted

    async def _live_errors(self, fields: RequestFields) -> dict[Field, str]:
        """The checks that need Jira and the database, run side by side, all of them
        within ``LOOKUP_BUDGET_SECONDS``."""
        deadline = asyncio.get_running_loop().time() + LOOKUP_BUDGET_SECONDS
        projects_lookup = self._lookup(self.projects)
        # Connections appear in the Exalate console at any time: the name is checked
        # against a list asked for after the submission arrived (shared by submissions
        # arriving together), never an older one.
        connections_lookup = self._lookup_since(self._connections, self._connections.now())
        projects, connections, name_open = await asyncio.gather(
            projects_lookup,
            connections_lookup,
            self._repository.name_is_open(fields.connection_name),
        )
        errors: dict[Field, str] = {}
        if not self._project_allowed(fields.project_key):
            errors[Field.PROJECT] = (
                f"{fields.project_key} is not open for incoming sync here; "
                "choose one of the projects offered, or ask an Exalate admin."
            )
        elif projects is None:
            errors[Field.PROJECT] = (
                "Jira did not answer in time to check the project; submit again."
            )
        elif fields.project_key not in {project.key for project in projects}:
            # The list may predate the project: Jira is asked for this key before refusing.
            exists = await self._project_exists(fields.project_key, deadline)
            if exists is None:
                errors[Field.PROJECT] = (
                    "Jira did not answer in time to check the project; submit again."
                )
            elif not exists:
                errors[Field.PROJECT] = f"Jira has no project with the key {fields.project_key}."
        name = fields.connection_name.lower()
        if name_open:
            errors[Field.NAME] = _name_in_open_request(fields.connection_name)
        elif connections is None:
            errors[Field.NAME] = (
                "Exalate did not answer in time to check the connection name; submit again."
            )
        elif any(connection.name.lower() == name for connection in connections):
            errors[Field.NAME] = (
                f"Exalate already has a connection named {fields.connection_name}; "
                "choose another name."
            )
        return errors

    async def _project_exists(self, key: str, deadline: float) -> bool | None:
        """Whether Jira has the project ``key`` now; None when it does not say before
        ``deadline``. A project found so is newer than the cached list: it is refreshed."""
        try:
            async with asyncio.timeout_at(deadline):
                found = await self._exalate.get_project(key)
        except (TimeoutError, ExalateError) as error:
            log.warning("project_lookup_unavailable kind=%s", type(error).__name__)
            return None
        if found is not None:
            self.projects.invalidate()
            self.projects.refresh_soon()
        return found is not None

    @staticmethod
    async def _lookup(cache: TimedCache[T]) -> T | None:
        """Whatever list ``cache`` holds (refreshed behind), or None within the budget."""
        try:
            return await cache.current(wait=LOOKUP_BUDGET_SECONDS)
        except CacheUnavailable as error:
            log.warning("lookup_unavailable reason=%s", error)
            return None

    @staticmethod
    async def _lookup_since(cache: TimedCache[T], moment: float) -> T | None:
        """The list as asked for at or after ``moment``, or None within the budget."""
        try:
            return await cache.get_since(moment, wait=LOOKUP_BUDGET_SECONDS)
        except CacheUnavailable as error:
            log.warning("lookup_unavailable reason=%s", error)
            return None

    async def _named(self, connection_name: str) -> ConnectionRequest:
        request = await self._repository.named(connection_name)
        if request is None:
            raise ApprovalError(f"There is no request for a connection named {connection_name}.")
        return request

    async def _load(self, request_id: int) -> ConnectionRequest:
        request = await self._repository.get(request_id)
        if request is None:
            raise RequestNotFound(request_id)
        return request

    async def _move(
        self,
        request: ConnectionRequest,
        target: Status,
        actor: str,
        **changes: str | bytes | None,
    ) -> ConnectionRequest:
        """One compare-and-set; a lost race becomes Conflict with the winner's state."""
        moved = await self._repository.transition(
            request,
            target,
            actor=actor,
            at=self.clock(),
            **changes,  # type: ignore[arg-type]
        )
        if moved is None:
            raise Conflict(await self._load(request.id))
        return moved

    async def _tell_everyone(self, request: ConnectionRequest) -> None:
        await self._quietly("update_card", self._notifier.update_card(request), request)
        await self._quietly("tell_requester", self._notifier.tell_requester(request), request)

    async def _quietly(self, what: str, call: Awaitable[T], request: ConnectionRequest) -> T | None:
        """Run a notification; a failure is logged (by kind only) and never propagates."""
        try:
            return await call
        except Exception as error:
            log.warning(
                "notification_failed id=%s what=%s reason=%s", request.id, what, _why(error)
            )
            self.metrics.count_error(f"slack_{_why(error)}")
            return None


def _spec(fields: RequestFields) -> ConnectionSpec:
    """The wizard's fields in Exalate's words."""
    return ConnectionSpec(
        local_short_name=fields.local_short_name,
        remote_short_name=fields.remote_short_name,
        name=fields.connection_name,
        description=fields.description,
        incoming_project_key=fields.project_key,
    )


def _why(error: Exception) -> str:
    """What to log of a failed notification: Slack's reason code, or just the kind."""
    return str(error) if isinstance(error, DeliveryFailed) else type(error).__name__


def _expect_seen(request: ConnectionRequest, seen: str | None) -> None:
    if seen is not None and seen != request.fingerprint:
        raise Conflict(request)


def _expect(request: ConnectionRequest, *statuses: Status) -> None:
    if request.status not in statuses:
        raise Conflict(request)


def _outcome_of(error: ExalateError) -> CreateOutcome:
    """A 4xx (or a call that never left) proves nothing was created; anything else may
    have created it."""
    if isinstance(error, ExalateNotSent) or (
        error.status is not None and 400 <= error.status < 500
    ):
        return CreateOutcome.REFUSED
    return CreateOutcome.UNCERTAIN


def _too_frequent(limit: TooFrequent, per_hour: int) -> str:
    return (
        f"You have submitted {per_hour} requests in the last hour, the most one person "
        f"may; you can submit again at {limit.free_at:%H:%M} UTC. Your answers are kept."
    )


def _taken_message(name: str) -> str:
    return (
        f"Exalate already has a connection named {name} that this request did not create; "
        "reject this request and ask again under another name."
    )


def _name_in_open_request(name: str) -> str:
    return f"Another open request already uses the connection name {name}; choose another name."
