"""Creating a request's connection in Exalate: one attempt, checked against a complete
connection list first, its outcome recorded so a retry or a restart knows where it stands.

How Exalate refuses the create call decides what comes next: 404/405 (no creation API)
and 400/415 (a node that does not take the call as the bot sends it) hand the request
to an approver in the console at once; 401/403 (the site's credentials or its Jira
user's rights) fail it, naming the setting to fix, and mark the site's health, since a
Retry cannot help before an admin acts. Whatever else goes wrong with the call (an answer
the client cannot read included) fails the attempt at once, as uncertain: the request is
never left ``initiating`` for the poller to settle.

A code in Exalate's answer goes through the check a pasted one does
(``bot.approvals.invitation_codes``): one that is not an invitation code is sent to
nobody, and the request waits for an approver to paste the code the console shows, as
after an answer that was lost.
"""

from __future__ import annotations

import contextlib
import logging

from bot.approvals.errors import Conflict
from bot.approvals.invitation_codes import code_fault, tidy_code
from bot.approvals.messages import CARD, EVERYONE, Message, Say
from bot.approvals.model import (
    BOT_ACTOR,
    EXALATE_ACTOR,
    ConnectionRequest,
    CreateOutcome,
    Problem,
    RequestFields,
    Status,
    same_name,
)
from bot.exalate import (
    BasicAuth,
    Connection,
    ConnectionSpec,
    CreatedConnection,
    ExalateAuthError,
    ExalateBadRequest,
    ExalateCallNotTaken,
    ExalateEndpointMissing,
    ExalateError,
    ExalateNameConflict,
    ExalateNotSent,
    ExalateServerError,
    ExalateUnavailable,
)
from bot.log import remember_secret
from bot.metrics import Metrics
from bot.ports import Notifier, RequestStore
from bot.service.site import CreateRefusal, Site, Sites
from bot.service.states import States
from bot.vault import Vault

log = logging.getLogger(__name__)

DELIVERY = (Message(Say.DELIVER_CODE), CARD)
"""What a new code tells: the requester gets it (privately), the card says so."""


class Initiation:
    """Creates connections for approved requests, and knows which it is creating now."""

    def __init__(
        self,
        states: States,
        notifier: Notifier,
        store: RequestStore,
        vault: Vault,
        metrics: Metrics,
        sites: Sites,
        *,
        me: str | None,
    ) -> None:
        self._states = states
        self._notifier = notifier  # for the code whose storing failed, and nothing else
        self._store = store
        self._vault = vault
        self._metrics = metrics
        self._sites = sites
        self.me = me
        """This replica's id, recorded on each request it initiates."""
        self.in_flight: set[int] = set()
        """Request ids this process is creating now."""

    async def initiate(self, request: ConnectionRequest) -> ConnectionRequest:
        """Create the private Script connection and deliver the code, or record why not."""
        self.in_flight.add(request.id)
        try:
            return await self._create(request)
        finally:
            self.in_flight.discard(request.id)

    async def _create(self, request: ConnectionRequest) -> ConnectionRequest:
        """One create attempt, checked against a complete connection list first.

        A name already in Exalate is adopted only if an earlier attempt of this request,
        begun with the name free, may have created it (its answer was lost); otherwise
        it is someone else's and create is not called (in assisted mode too, so the
        connection that appears next is the approver's). The attempt's outcome is
        recorded, so a later retry or a restart knows which case it is in.
        """
        site = self._sites[request.fields.site]
        try:
            existing = await self.connection_named(request)
        except ExalateError as error:
            return await self._fail(request, error)
        except Exception as error:  # nothing was created: settle it now, not in minutes
            return await self._fail(request, _unforeseen(request, error, sent=False))
        if existing is not None:
            if request.may_adopt:
                return await self.adopt(request, existing)
            return await self.fail_taken(request)
        at = self._states.now()
        request = (
            await self._store.annotate(request.id, name_absent_at=at, last_attempt=None) or request
        )
        if site.assisted:  # the name was free: what appears under it now is the console's
            return await self._assist(request)
        return await self._call_create(site, request)

    async def _call_create(self, site: Site, request: ConnectionRequest) -> ConnectionRequest:
        """Ask the site's Exalate to create the connection, the name having just been
        seen free there."""
        try:
            created = await site.exalate.create_connection(_spec(request.fields))
        except ExalateEndpointMissing:
            return await self._assist(request)  # this Exalate has no creation API
        except ExalateNameConflict:
            return await self.fail_taken(request)  # created by someone else since the check
        except ExalateCallNotTaken as error:
            return await self._not_taken(site, request, error)
        except ExalateAuthError as error:
            return await self._refused(site, request, error)
        except ExalateError as error:
            return await self._fail(request, error, _outcome_of(error))
        except Exception as error:  # the call went out: it may have created it
            unforeseen = _unforeseen(request, error, sent=True)
            return await self._fail(request, unforeseen, CreateOutcome.UNCERTAIN)
        site.create_refused = None  # whatever was refused before is fixed
        site.connections.invalidate()
        code = tidy_code(created.invitation_code.get_secret_value())
        if (fault := code_fault(code)) is not None:
            return await self._refuse_code(request, created, fault)
        remember_secret(code)
        invited = await self._store_code(request, created, code)
        log.info("connection_created id=%s exalate_id=%s", invited.id, created.id)
        return invited

    async def _store_code(
        self, request: ConnectionRequest, created: CreatedConnection, code: str
    ) -> ConnectionRequest:
        """Record the new connection and its sealed code, its delivery to the requester
        in the outbox. If that fails for good, the code goes straight to the requester:
        only this process knows it."""
        sealed = self._vault.seal(code)
        try:
            return await self._invite(request, created, sealed, "connection created")
        except Conflict:
            return await self._complete_late(request.id, sealed, created)
        except Exception:
            log.error("code_not_stored id=%s; delivering it directly", request.id)
            with contextlib.suppress(Exception):  # the original failure is the one to raise
                await self._notifier.deliver_invitation(request, code)
            raise

    async def _refuse_code(
        self, request: ConnectionRequest, created: CreatedConnection, fault: str
    ) -> ConnectionRequest:
        """Exalate created the connection, but its answer's code is not an invitation code
        (``fault`` says why, never quoting it): it is neither stored nor shown. The request
        is invited without a code, as after a lost answer, and the card asks an approver
        to paste the one the console shows, or to delete a connection that looks wrong."""
        invited = await self._states.move(
            request,
            Status.INVITED,
            EXALATE_ACTOR,
            exalate_connection_id=str(created.id),
            exalate_status=created.status,
            error=Problem.CODE_NOT_RECEIVED,
            error_detail=fault,
            note="connection created; its invitation code refused",
            tell=EVERYONE,
        )
        log.warning("invitation_code_refused id=%s exalate_id=%s", invited.id, created.id)
        self._metrics.count_error("ExalateCodeRefused", site=request.fields.site)
        return invited

    async def _complete_late(
        self, request_id: int, sealed: bytes, created: CreatedConnection
    ) -> ConnectionRequest:
        """Exalate answered after another replica settled the request, thinking this one
        gone: adopted without its code, or failed as interrupted. The code completes it
        either way; Conflict if it was settled otherwise (rejected after the failure)."""
        stored = await self._store.store_code(
            request_id, sealed, tell=DELIVERY, at=self._states.now()
        )
        if stored is None:
            current = await self._states.load(request_id)
            if current.status is not Status.FAILED:
                raise Conflict(current)
            stored = await self._invite(current, created, sealed, "connection created after all")
        log.warning("code_stored_late id=%s", request_id)
        return stored

    async def _invite(
        self, request: ConnectionRequest, created: CreatedConnection, sealed: bytes, note: str
    ) -> ConnectionRequest:
        """Move to invited with the new connection and its sealed code."""
        return await self._states.move(
            request,
            Status.INVITED,
            EXALATE_ACTOR,
            exalate_connection_id=str(created.id),
            invitation_code=sealed,
            exalate_status=created.status,
            note=note,
            tell=DELIVERY,
        )

    async def _not_taken(
        self, site: Site, request: ConnectionRequest, error: ExalateCallNotTaken
    ) -> ConnectionRequest:
        """400/415 to a create the bot checked. A name taken or a project gone since
        then is said as such; otherwise this node does not take the call as the bot
        sends it, so the approver creates the connection in the console now, and the
        card and the log say how to send the site's requests there from the start."""
        if await self.connection_named_quietly(request) is not None:
            return await self.fail_taken(request)  # created by someone else meanwhile
        key = request.fields.project_key
        if await _project_gone(site, key):
            gone = ExalateBadRequest(
                f"The incoming project {key} is gone from Jira, or the bot's Jira user can no "
                f"longer see it. {error}",
                status=error.status,
                detail=error.detail,
            )
            return await self._fail(request, gone, CreateOutcome.REFUSED)
        log.warning(
            "create_not_taken id=%s site=%s status=%s; the approver creates it in the "
            'console. To do so for every request: initiation = "assisted" in [sites.%s] of '
            "exalate-bot.toml, or EXALATE_INITIATION=assisted without that file",
            request.id,
            site.name,
            error.status,
            site.name,
        )
        self._metrics.count_error(type(error).__name__, site=site.name)
        return await self._assist(request, Problem.CREATE_NOT_TAKEN, str(error))

    async def _refused(
        self, site: Site, request: ConnectionRequest, error: ExalateAuthError
    ) -> ConnectionRequest:
        """401/403 to the create call: the site's credentials, or its Jira user's
        rights. The request fails (Retry works once an admin has fixed the setting the
        error names), and the site's health keeps the refusal for the probes."""
        credentials = _credentials_setting(site)
        site.create_refused = CreateRefusal(error.status, self._states.now(), credentials)
        log.error(
            "create_refused id=%s site=%s status=%s; fix %s",
            request.id,
            site.name,
            error.status,
            credentials,
        )
        return await self._fail(request, error, CreateOutcome.REFUSED, Problem.CREATE_REFUSED)

    async def _fail(
        self,
        request: ConnectionRequest,
        error: ExalateError,
        outcome: CreateOutcome | None = None,
        problem: Problem = Problem.EXALATE,
    ) -> ConnectionRequest:
        """Fail the attempt with Exalate's reason; ``outcome`` when create was called."""
        recorded = {"last_attempt": outcome.value} if outcome is not None else {}
        failed = await self._states.move(
            request,
            Status.FAILED,
            EXALATE_ACTOR,
            error=problem,
            error_detail=str(error),
            tell=EVERYONE,
            **recorded,
        )
        kind = type(error).__name__
        log.warning(
            "initiation_failed id=%s site=%s kind=%s", request.id, request.fields.site, kind
        )
        self._metrics.count_error(type(error).__name__, site=request.fields.site)
        return failed

    async def fail_taken(self, request: ConnectionRequest) -> ConnectionRequest:
        """The name belongs to a connection this request did not create: never take it."""
        failed = await self._states.move(
            request,
            Status.FAILED,
            EXALATE_ACTOR,
            error=Problem.NAME_TAKEN,
            last_attempt=CreateOutcome.NAME_TAKEN.value,
            note="name taken in exalate",
            tell=EVERYONE,
        )
        log.warning("initiation_name_taken id=%s", request.id)
        self._metrics.count_error("ExalateNameTaken", site=request.fields.site)
        return failed

    async def adopt(self, request: ConnectionRequest, existing: Connection) -> ConnectionRequest:
        """Take over a connection an earlier attempt created; its code is unknown."""
        invited = await self._states.move(
            request,
            Status.INVITED,
            EXALATE_ACTOR,
            exalate_connection_id=str(existing.id),
            error=Problem.CODE_NOT_RECEIVED,
            note="existing connection adopted",
            tell=EVERYONE,
        )
        log.info("connection_adopted id=%s exalate_id=%s", invited.id, existing.id)
        return invited

    async def _assist(
        self, request: ConnectionRequest, problem: Problem | None = None, detail: str | None = None
    ) -> ConnectionRequest:
        """Hand the creation to the approver: the exact values for the console's wizard,
        and the Paste invitation code button that brings the code back to the requester.
        ``problem`` says why, when Exalate was asked first and did not take the call."""
        assisted = await self._states.move(
            request,
            Status.ASSISTED,
            BOT_ACTOR,
            note="assisted initiation",
            tell=[CARD, Message(Say.GUIDE_APPROVER)],
            error=problem,
            error_detail=detail,
        )
        log.info("initiation_assisted id=%s", assisted.id)
        return assisted

    async def connection_named(self, request: ConnectionRequest) -> Connection | None:
        """The connection with the request's name in a complete list of its site;
        ExalateUnavailable when the list is not complete, because then absence proves
        nothing."""
        listing = await self._sites[request.fields.site].exalate.connection_list()
        for connection in listing.results:
            if same_name(connection.name, request.fields.connection_name):
                return connection
        if not listing.complete:
            raise ExalateUnavailable(
                "Exalate's connection list came back incomplete, so the bot could not make "
                "sure the name is free; nothing was created. Retry."
            )
        return None

    async def connection_named_quietly(self, request: ConnectionRequest) -> Connection | None:
        """The connection with the request's name, or None, also when Exalate cannot say
        now."""
        try:
            return await self.connection_named(request)
        except ExalateError:
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


async def _project_gone(site: Site, key: str) -> bool:
    """Whether Jira says the project no longer exists (for the bot's user); not when
    it cannot say now."""
    try:
        return await site.exalate.get_project(key) is None
    except ExalateError:
        return False


def _credentials_setting(site: Site) -> str:
    """The site's credentials as the setting to fix, never the secret: the variable
    holding its token, or its basic-auth user and the variable holding the password."""
    credentials, variable = site.config.credentials, site.config.credentials_from
    if isinstance(credentials, BasicAuth):
        return f"the Jira user {credentials.username} (its password is in {variable})"
    return f"the personal access token in {variable}"


def _unforeseen(request: ConnectionRequest, error: Exception, *, sent: bool) -> ExalateServerError:
    """An exception no Exalate error names, logged with its traceback, as the error the
    card shows (the client turns every answer into one, so this is the bot's own fault).
    ``sent``: whether the create call went out, so the connection may exist."""
    kind = type(error).__name__
    log.error("initiation_unforeseen id=%s kind=%s", request.id, kind, exc_info=error)
    outcome = (
        "Nothing was created; Retry tries again."
        if not sent
        else "The connection may have been created: Retry looks for it first."
    )
    return ExalateServerError(
        f"The bot failed while talking to Exalate ({kind}); its log has the details. {outcome}"
    )


def _outcome_of(error: ExalateError) -> CreateOutcome:
    """A 4xx (or a call that never left) proves nothing was created; anything else may
    have created it."""
    if isinstance(error, ExalateNotSent) or (
        error.status is not None and 400 <= error.status < 500
    ):
        return CreateOutcome.REFUSED
    return CreateOutcome.UNCERTAIN


def taken_message(name: str) -> str:
    return (
        f"Exalate already has a connection named {name} that this request did not create; "
        "reject this request and ask again under another name."
    )
