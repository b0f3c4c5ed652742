"""The use cases: submit, approve, reject, retry, and what is pending.

Each state change is one compare-and-set in the repository; only the caller that wins
it performs the side effect that follows (calling Exalate, telling people). Telling
people is best effort: a Slack failure is logged and never undoes or blocks a
transition, so the request always stays in a state someone can finish from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from bot.approvals.errors import Conflict, RequestNotFound
from bot.approvals.model import ConnectionRequest, RequestFields, Status
from bot.approvals.rules import Draft, Field, check_draft
from bot.approvers import ApproverPolicy
from bot.cache import CacheUnavailable, TimedCache
from bot.exalate import Connection, ConnectionSpec, ExalateClient, ExalateError, Project
from bot.ports import Notifier
from bot.vault import Vault
from storage import NameTaken, RequestRepository

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a form submission may wait on Jira before telling the person to try again;
# Slack closes the window at 3 s and the rest of the work needs some of it.
LOOKUP_BUDGET_SECONDS = 1.5
PENDING_STATUSES = (Status.PENDING_APPROVAL, Status.INITIATING, Status.FAILED, Status.INVITED)
EXALATE_ACTOR = "exalate"


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
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repository = repository
        self._exalate = exalate
        self._vault = vault
        self.policy = policy
        self._notifier = notifier
        self.projects = projects
        self._connections = connections
        self._clock = clock

    def warm_up(self) -> None:
        """Start loading Jira's lists in the background, ahead of the next submission."""
        self.projects.refresh_soon()
        self._connections.refresh_soon()

    async def submit(self, draft: Draft, requester: str) -> Submission:
        """Validate a form against the rules and the live Jira, then store it.

        Runs before the submission is acknowledged, so it is bounded in time; the
        approval card and the requester's note follow in ``announce``.
        """
        fields, errors = check_draft(draft)
        if fields is None:
            return Submission(None, errors)
        errors = await self._live_errors(fields)
        if errors:
            return Submission(None, errors)
        try:
            request = await self._repository.add(fields, requester, self._clock())
        except NameTaken:
            return Submission(None, {Field.NAME: _name_in_open_request(fields.connection_name)})
        log.info("request_submitted id=%s by=%s", request.id, requester)
        return Submission(request, {})

    async def announce(self, request: ConnectionRequest) -> ConnectionRequest:
        """Post the approval card and tell the requester their request is waiting."""
        card_ref = await self._quietly("post_card", self._notifier.post_card(request), request)
        if card_ref is not None:
            await self._repository.set_card(request.id, card_ref)
            request = replace(request, card_ref=card_ref)
        await self._quietly("tell_requester", self._notifier.tell_requester(request), request)
        return request

    async def check_can_decide(self, request_id: int, actor: str) -> ConnectionRequest:
        """Raise unless ``actor`` may decide on the request now; returns the request."""
        request = await self._load(request_id)
        await self.policy.ensure_can_decide(actor, request)
        _expect(request, Status.PENDING_APPROVAL)
        return request

    async def approve(self, request_id: int, actor: str) -> ConnectionRequest:
        """Approve and initiate the connection; exactly one concurrent caller wins."""
        request = await self.check_can_decide(request_id, actor)
        won = await self._move(request, Status.INITIATING, actor, decided_by=actor, note="approved")
        log.info("request_approved id=%s by=%s", won.id, actor)
        return await self._initiate(won)

    async def retry(self, request_id: int, actor: str) -> ConnectionRequest:
        """Try the Exalate call again after a failure; approvers only."""
        request = await self._load(request_id)
        await self.policy.ensure_can_decide(actor, request)
        _expect(request, Status.FAILED)
        won = await self._move(request, Status.INITIATING, actor, note="retried")
        log.info("request_retried id=%s by=%s", won.id, actor)
        return await self._initiate(won)

    async def reject(self, request_id: int, actor: str, reason: str) -> ConnectionRequest:
        """Reject with a reason the requester will read."""
        request = await self.check_can_decide(request_id, actor)
        rejected = await self._move(
            request, Status.REJECTED, actor, decided_by=actor, reason=reason, note="rejected"
        )
        log.info("request_rejected id=%s by=%s", rejected.id, actor)
        await self._tell_everyone(rejected)
        return rejected

    async def pending(self) -> list[ConnectionRequest]:
        """Requests awaiting approval, in flight, failed, or awaiting the partner."""
        return await self._repository.with_status(PENDING_STATUSES)

    async def get(self, request_id: int) -> ConnectionRequest:
        """One request, or RequestNotFound."""
        return await self._load(request_id)

    async def _initiate(self, request: ConnectionRequest) -> ConnectionRequest:
        """Create the private Script connection and deliver the code, or record why not."""
        await self._quietly("update_card", self._notifier.update_card(request), request)
        fields = request.fields
        spec = ConnectionSpec(
            local_short_name=fields.local_short_name,
            remote_short_name=fields.remote_short_name,
            name=fields.connection_name,
            description=fields.description,
            incoming_project_key=fields.project_key,
        )
        try:
            created = await self._exalate.create_connection(spec)
        except ExalateError as error:
            failed = await self._move(request, Status.FAILED, EXALATE_ACTOR, error=str(error))
            log.warning("initiation_failed id=%s kind=%s", request.id, type(error).__name__)
            await self._tell_everyone(failed)
            return failed
        self._connections.invalidate()
        code = created.invitation_code.get_secret_value()
        invited = await self._move(
            request,
            Status.INVITED,
            EXALATE_ACTOR,
            connection_id=str(created.id),
            invitation_code=self._vault.seal(code),
            note="connection created",
        )
        log.info("connection_created id=%s exalate_id=%s", invited.id, created.id)
        await self._quietly("update_card", self._notifier.update_card(invited), invited)
        await self._quietly(
            "deliver_invitation", self._notifier.deliver_invitation(invited, code), invited
        )
        return invited

    async def _live_errors(self, fields: RequestFields) -> dict[Field, str]:
        """The checks that need Jira and the database, run side by side."""
        projects_lookup = self._lookup(self.projects)
        # Connections appear in the Exalate console at any time: always ask, falling
        # back to the last known list only if Exalate is slow.
        connections_lookup = self._lookup(self._connections, max_age=0)
        projects, connections, name_open = await asyncio.gather(
            projects_lookup,
            connections_lookup,
            self._repository.name_is_open(fields.connection_name),
        )
        errors: dict[Field, str] = {}
        if projects is None:
            errors[Field.PROJECT] = (
                "Jira did not answer in time to check the project; submit again."
            )
        elif fields.project_key not in {project.key for project in projects}:
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

    @staticmethod
    async def _lookup(cache: TimedCache[T], max_age: float | None = None) -> T | None:
        try:
            return await cache.get(wait=LOOKUP_BUDGET_SECONDS, max_age=max_age)
        except CacheUnavailable as error:
            log.warning("lookup_unavailable reason=%s", error)
            return None

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
            at=self._clock(),
            **changes,  # type: ignore[arg-type]
        )
        if moved is None:
            raise Conflict(await self._load(request.id))
        return moved

    async def _tell_everyone(self, request: ConnectionRequest) -> None:
        await self._quietly("update_card", self._notifier.update_card(request), request)
        await self._quietly("tell_requester", self._notifier.tell_requester(request), request)

    @staticmethod
    async def _quietly(what: str, call: Awaitable[T], request: ConnectionRequest) -> T | None:
        """Run a notification; a failure is logged (by kind only) and never propagates."""
        try:
            return await call
        except Exception as error:
            log.warning(
                "notification_failed id=%s what=%s kind=%s", request.id, what, type(error).__name__
            )
            return None


def _expect(request: ConnectionRequest, status: Status) -> None:
    if request.status is not status:
        raise Conflict(request)


def _name_in_open_request(name: str) -> str:
    return f"Another open request already uses the connection name {name}; choose another name."
