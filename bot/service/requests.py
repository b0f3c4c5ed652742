"""What people do with requests: submit, approve, reject, retry and cancel them.

Each state change is one compare-and-set (``States.move``); only the caller that wins it
performs the side effect that follows (calling Exalate, telling people). The code's
later life is ``codes``; what people read is ``listings``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from bot.approvals.errors import ApprovalError, Conflict, NotAllowed
from bot.approvals.limits import (
    AlreadySubmitted,
    NameTaken,
    SubmissionLimits,
    Submitter,
    TooFrequent,
    TooManyOpen,
)
from bot.approvals.messages import CARD, EVERYONE, Message, Notice, Say
from bot.approvals.model import OPEN_STATUSES, ConnectionRequest, Problem, Status
from bot.approvals.routes import Rule
from bot.approvals.rules import Draft, Field, check_draft
from bot.approvers import ApproverPolicy
from bot.metrics import Metrics
from bot.ports import DeliveryFailed, People, RequestStore
from bot.service.checks import LiveChecks, name_in_open_request
from bot.service.initiation import Initiation, taken_message
from bot.service.outbox import SlackHealth
from bot.service.site import Sites
from bot.service.states import States, expect, expect_seen, named

log = logging.getLogger(__name__)

# Problems that were the requester's own, and end with a new requester.
_PERSONAL = (Problem.REQUESTER_GONE, Problem.UNDELIVERED)
DECIDED_BUT_UNRECORDED = (
    "Your approval is recorded and the connection is being created, but the bot could not "
    "record every step (its storage refused a write). Nothing is lost: once storage works "
    "again the request is checked against Exalate and the card says how it ended."
)
# Each lost race means another approval or a decision got in; past this many, the
# person is told the request changed under them.
_APPROVAL_ATTEMPTS = 5


def _approval_news(needed: int) -> list[Message]:
    """What an approval tells: the card redrawn and, where several are needed, a note
    in its thread for each (the channel sees who approved and when)."""
    return [CARD] if needed == 1 else [CARD, Message(Say.NOTE, Notice.APPROVED)]


def _approved_already(count: int, needed: int) -> str:
    return (
        f"You approved this request already; it has {count} of the {needed} approvals it "
        "needs, each from a different approver."
    )


@dataclass(frozen=True, slots=True)
class Submission:
    """The outcome of a form submission: a stored request, or errors per field."""

    request: ConnectionRequest | None
    errors: dict[Field, str]


class ConnectionService:
    """The use cases behind the form and the decision buttons."""

    def __init__(
        self,
        states: States,
        slack: SlackHealth,
        people: People,
        store: RequestStore,
        initiation: Initiation,
        checks: LiveChecks,
        sites: Sites,
        metrics: Metrics,
        *,
        policy: ApproverPolicy,
        limits: SubmissionLimits,
        approval_ttl: timedelta,
    ) -> None:
        self._states = states
        self._slack = slack
        self._people = people
        self._store = store
        self._initiation = initiation
        self._checks = checks
        self.sites = sites
        self._metrics = metrics
        self._policy = policy
        self._limits = limits  # per requester: flooding the approvers, squatting names
        self._approval_ttl = approval_ttl

    def warm_up(self) -> None:
        """Start loading every open site's lists, ahead of the next submission."""
        for site in self.sites.open():
            site.warm_up()

    async def submit(
        self, draft: Draft, requester: str, *, check_within: float, view_id: str | None = None
    ) -> Submission:
        """Validate a form against the rules and the live Jira, then store it.

        Runs before the submission is acknowledged: the checks get ``check_within``
        seconds and raise TimeoutError past that, with nothing stored. Storing itself is
        never cut short; its card is written to the outbox with it. A form submitted
        before (``view_id``: Slack retried, or someone replayed it) stores nothing and
        is answered with the request it stored.
        """
        draft, problem = self._with_site(draft)
        if problem is not None:
            return Submission(None, {Field.SITE: problem})
        fields, errors = check_draft(draft)
        if fields is None:
            return Submission(None, errors)
        submitter = Submitter(requester, self._states.now(), self._limits.per_hour)
        async with asyncio.timeout(check_within):
            errors = await self._checks.errors(fields, submitter)
        if errors:
            # The same form sent again: its name is taken by its own first copy. (Asked
            # only now, not before the checks: forms arriving together start their
            # checks together, and share Jira's list reads.)
            repeated = await self._repeated(view_id, requester)
            return repeated or await self._at_open_limit(requester) or Submission(None, errors)
        try:
            rule = self._policy.routes.rule_for(fields.site, fields.project_key)
            request = await self._store.add(
                fields,
                requester,
                self._states.now(),
                self._limits,
                view_id=view_id,
                route=rule if rule.route is not None else None,  # the default stays current
            )
        except AlreadySubmitted as again:  # its twin stored it a moment before
            log.info("submission_repeated id=%s by=%s", again.request.id, requester)
            return Submission(again.request, {})
        except NameTaken:
            taken = Submission(None, {Field.NAME: name_in_open_request(fields.connection_name)})
            return await self._repeated(view_id, requester) or taken
        except TooManyOpen as limit:
            log.warning("submission_refused by=%s reason=too_many_open", requester)
            return Submission(None, {Field.NAME: self._too_many_open(limit)})
        except TooFrequent as limit:
            log.warning("submission_refused by=%s reason=too_frequent", requester)
            return Submission(None, {Field.NAME: _too_frequent(limit, self._limits.per_hour)})
        log.info("request_submitted id=%s by=%s", request.id, requester)
        return Submission(request, {})

    async def _gone(self, user_id: str) -> bool:
        """Whether the person left; a click is not held up by a rate limit on asking
        (the code's delivery asks again before it goes)."""
        try:
            return await self._people.deactivated(user_id)
        except DeliveryFailed:
            return False

    async def _repeated(self, view_id: str | None, requester: str) -> Submission | None:
        """The answer to a form that stored its request already (Slack retried it, or it
        was replayed): that request, and nothing stored again."""
        earlier = await self._store.submitted_from(view_id) if view_id is not None else None
        if earlier is None:
            return None
        log.info("submission_repeated id=%s by=%s", earlier.id, requester)
        return Submission(earlier, {})

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
            site = self.sites.taking_requests(draft.site)
        except ApprovalError as error:
            return draft, str(error)
        if not draft.local_short_name.strip():
            draft = replace(draft, local_short_name=site.config.local_short_name)
        return draft, None

    async def _at_open_limit(self, requester: str) -> Submission | None:
        """The refusal of a person at the most requests they may have waiting, if they
        are: that answer stands whatever else is wrong with the form (a Jira too slow to
        check it, say), where "submit again" would only lead to it."""
        waiting = await self._store.page(
            [Status.PENDING_APPROVAL, Status.ASSISTED],
            limit=self._limits.max_open,
            requester=requester,
        )
        if waiting.total < self._limits.max_open:
            return None
        theirs = sorted(waiting.items, key=lambda r: (r.updated_at, r.id))
        limit = TooManyOpen([r.fields.connection_name for r in theirs], theirs[0].updated_at)
        return Submission(None, {Field.NAME: self._too_many_open(limit)})

    def _too_many_open(self, limit: TooManyOpen) -> str:
        expires = limit.oldest + self._approval_ttl
        return (
            f"You have {len(limit.names)} requests waiting for a decision "
            f"({', '.join(limit.names)}), the most one person may have open. One frees up "
            "when an approver decides, when you cancel one (`/exalate cancel <name>`), or "
            f"on {expires:%Y-%m-%d %H:%M} UTC, when the oldest expires undecided."
        )

    def rule_of(self, request: ConnectionRequest) -> Rule:
        """Who decides ``request`` and how many approvals it needs."""
        return self._policy.rule_of(request)

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
        request = await self._states.load(request_id)
        await self._policy.ensure_can_decide(actor, request)
        expect(request, *statuses)
        expect_seen(request, seen)
        if await self._gone(actor):
            raise NotAllowed("Your Slack account is deactivated: you can no longer decide.")
        return request

    async def approve(
        self, request_id: int, actor: str, *, seen: str | None = None
    ) -> ConnectionRequest:
        """Count ``actor``'s approval; the one that reaches the rule's count initiates the
        connection. Approvals from distinct eligible people only; each is one
        compare-and-set on the count, so exactly one caller makes the last one, however
        many click at once. Returns the request as the approval left it."""
        for _ in range(_APPROVAL_ATTEMPTS):
            request = await self.check_can_decide(request_id, actor, seen=seen)
            rule = self._policy.rule_of(request)
            if actor in request.approved_by:
                raise NotAllowed(_approved_already(len(request.approved_by), rule.approvals))
            count = len(request.approved_by) + 1
            complete = count >= rule.approvals
            if complete:
                await self._may_create(request)
            approved = await self._states.approve(
                request,
                actor,
                complete=complete,
                note="approved"
                if rule.approvals == 1
                else f"approved ({count} of {rule.approvals})",
                tell=_approval_news(rule.approvals),
                **({"decided_by": actor, "initiated_by": self._initiation.me} if complete else {}),
            )
            if approved is None:
                continue  # someone approved or moved it meanwhile: count again, as it is now
            if not complete:
                log.info("request_approved_partly id=%s by=%s count=%s", request.id, actor, count)
                return approved
            log.info("request_approved id=%s by=%s", approved.id, actor)
            self._metrics.count_approval()
            return await self._initiate(approved)
        raise Conflict(await self._states.load(request_id))

    async def _initiate(self, decided: ConnectionRequest) -> ConnectionRequest:
        """Create the connection of a request whose decision is stored. The decision
        stands whatever happens next: a failure to record a later step (a full disk, a
        database gone) is no "something went wrong" to the approver, who acted and was
        heard; the request, left ``initiating``, is settled against Exalate once the
        database takes writes again, as after a crash."""
        try:
            return await self._initiation.initiate(decided)
        except ApprovalError:
            raise
        except Exception:
            log.exception("initiation_unrecorded id=%s", decided.id)
            raise ApprovalError(DECIDED_BUT_UNRECORDED) from None

    async def retry(
        self, request_id: int, actor: str, *, seen: str | None = None
    ) -> ConnectionRequest:
        """Try again after a failure; approvers only. Never creates a second connection."""
        request = await self._states.load(request_id)
        await self._policy.ensure_can_decide(actor, request)
        expect(request, Status.FAILED)
        expect_seen(request, seen)
        await self._may_create(request)
        if (
            not request.may_adopt
            and await self._initiation.connection_named_quietly(request) is not None
        ):
            raise NotAllowed(taken_message(request.fields.connection_name))  # nothing changes
        won = await self._states.move(
            request,
            Status.INITIATING,
            actor,
            initiated_by=self._initiation.me,
            note="retried",
            tell=[CARD],
        )
        log.info("request_retried id=%s by=%s", won.id, actor)
        return await self._initiate(won)

    async def _may_create(self, request: ConnectionRequest) -> None:
        """Refuse to start a creation that could not end well: on a retired site (its
        requests can still be rejected), while Slack refuses the bot's token (the code
        could not reach the requester, and nobody would be told), or for a requester who
        has left (the card then says so, and offers to hand the request over)."""
        self.sites.taking_requests(request.fields.site)
        if (refused := self._slack.token_refused) is not None:
            raise NotAllowed(
                f"Slack refuses the bot's token just now ({refused}), so nothing is created: "
                "the invitation code could not reach the requester. An admin must install "
                "the app again; then approve once more."
            )
        if await self._gone(request.requester):
            await self._store.annotate(  # the card says so
                request.id,
                error=Problem.REQUESTER_GONE,
                error_detail=None,
                tell=[CARD],
                at=self._states.now(),
            )
            log.warning("requester_gone id=%s", request.id)
            raise NotAllowed(
                "The requester has left the workspace (their Slack account is deactivated): "
                "nothing is created for nobody. Hand the request over to someone else with "
                "the button on the card, then approve."
            )

    async def reject(
        self, request_id: int, actor: str, reason: str, *, seen: str | None = None
    ) -> ConnectionRequest:
        """Reject with a reason the requester will read."""
        request = await self.check_can_reject(request_id, actor, seen=seen)
        rejected = await self._states.move(
            request,
            Status.REJECTED,
            actor,
            decided_by=actor,
            reason=reason,
            note="rejected",
            tell=EVERYONE,
        )
        log.info("request_rejected id=%s by=%s", rejected.id, actor)
        return rejected

    async def reject_all_from(
        self, request_id: int, actor: str, reason: str, *, seen: str | None = None
    ) -> list[ConnectionRequest]:
        """Reject this request and every other of its requester still awaiting approval,
        with one reason: one person's flood, or names squatted, cleared in one go."""
        first = await self.reject(request_id, actor, reason, seen=seen)
        rejected = [first]
        for request in await self._store.with_status([Status.PENDING_APPROVAL]):
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

    async def check_can_hand_over(self, request_id: int, actor: str) -> ConnectionRequest:
        """Raise unless ``actor`` may give the request to another person: an approver,
        while the request is open."""
        request = await self._states.load(request_id)
        await self._policy.ensure_approver(
            actor, request, "Only approvers of this request can hand it over."
        )
        expect(request, *OPEN_STATUSES)
        return request

    async def hand_over(self, request_id: int, actor: str, to: str) -> ConnectionRequest:
        """Make ``to`` the requester, audited: the request's news, and its invitation
        code if it has one not delivered, go to them from now on."""
        request = await self.check_can_hand_over(request_id, actor)
        if to == request.requester:
            raise NotAllowed("That person is the requester already.")
        if await self._gone(to):
            raise NotAllowed("That person's Slack account is deactivated too; choose another.")
        cleared = {"error": None, "error_detail": None} if request.problem in _PERSONAL else {}
        owed_code = (
            request.status is Status.INVITED
            and request.has_invitation_code
            and (request.code_dm_ref is None)
        )
        tell = [Message(Say.DELIVER_CODE), CARD] if owed_code else [*EVERYONE]
        handed = await self._store.annotate(
            request.id, requester=to, tell=tell, at=self._states.now(), **cleared
        )
        if handed is None:
            raise Conflict(request)
        await self._states.record(handed, actor, f"handed over from {request.requester} to {to}")
        log.info("request_handed_over id=%s by=%s", request.id, actor)
        return handed

    async def cancel(self, request_id: int, actor: str) -> ConnectionRequest:
        """The requester withdraws a request that still awaits approval."""
        request = await self._states.load(request_id)
        if actor != request.requester:
            raise NotAllowed("Only the requester can cancel a request; approvers reject it.")
        expect(request, Status.PENDING_APPROVAL)
        cancelled = await self._states.move(
            request, Status.CANCELLED, actor, note="cancelled", tell=EVERYONE
        )
        log.info("request_cancelled id=%s by=%s", cancelled.id, actor)
        return cancelled

    async def cancel_named(
        self, connection_name: str, actor: str, site: str | None = None
    ) -> ConnectionRequest:
        """``/exalate cancel <connection name> [site=…]``."""
        request = await named(self._store, self.sites, connection_name, site)
        return await self.cancel(request.id, actor)

    async def own_request(self, request_id: int, actor: str) -> ConnectionRequest:
        """A request of ``actor``'s, e.g. to ask for it again after a rejection."""
        request = await self._states.load(request_id)
        if actor != request.requester:
            raise NotAllowed("Only the requester can ask for this request again.")
        if not request.name_taken:
            expect(request, Status.REJECTED, Status.EXPIRED, Status.CANCELLED)
        return request


def _too_frequent(limit: TooFrequent, per_hour: int) -> str:
    return (
        f"You have submitted {per_hour} requests in the last hour, the most one person "
        f"may; you can submit again at {limit.free_at:%H:%M} UTC. Your answers are kept."
    )
