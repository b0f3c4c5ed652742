"""The invitation code after its first delivery: sent again after Slack refused the DM,
pasted by an approver from the Exalate console when the bot never received it, shown
again to its requester. The code goes to the requester alone, every time; each paste and
reveal is audited.
"""

from __future__ import annotations

import logging

from bot.approvals.errors import ApprovalError, Conflict, NotAllowed
from bot.approvals.invitation_codes import code_fault, tidy_code
from bot.approvals.model import CodeDelivery, ConnectionRequest, Status
from bot.approvers import ApproverPolicy
from bot.log import remember_secret
from bot.ports import RequestStore
from bot.service.initiation import DELIVERY, Initiation
from bot.service.states import States, expect
from bot.vault import Vault

log = logging.getLogger(__name__)


class InvitationCodes:
    """Resend, paste and reveal an invitation code."""

    def __init__(
        self,
        states: States,
        store: RequestStore,
        vault: Vault,
        initiation: Initiation,
        policy: ApproverPolicy,
    ) -> None:
        self._states = states
        self._store = store
        self._vault = vault
        self._initiation = initiation
        self._policy = policy

    async def resend_code(self, request_id: int, actor: str) -> ConnectionRequest:
        """Send the stored code to the requester again, after a failed delivery: the
        refusal is cleared and the code's DM goes back in the outbox.

        The requester or an approver may ask; the code still goes only to the requester.
        """
        request = await self._states.load(request_id)
        if actor != request.requester:
            await self._policy.ensure_approver(
                actor, request, "Only the requester or an approver can resend the code."
            )
        sealed = await self._store.invitation_code(request.id)
        if request.status is not Status.INVITED or sealed is None:
            raise Conflict(request)
        if request.code_delivery is not CodeDelivery.UNDELIVERED:
            raise NotAllowed("The code was delivered already; the requester can Show code.")
        sending = await self._store.annotate(
            request.id, error=None, error_detail=None, tell=DELIVERY, at=self._states.now()
        )
        log.info("code_resent id=%s by=%s", request.id, actor)
        return sending or request

    async def check_can_paste(self, request_id: int, actor: str) -> ConnectionRequest:
        """Raise unless ``actor`` may paste the code of a connection whose code was lost."""
        request = await self._states.load(request_id)
        await self._policy.ensure_approver(
            actor, request, "Only approvers of this request can paste its invitation code."
        )
        expect(request, Status.INVITED, Status.ASSISTED)
        if request.code_delivery is not CodeDelivery.NEVER_RECEIVED:
            raise NotAllowed("The bot has this connection's code already.")
        return request

    async def paste_code(self, request_id: int, actor: str, code: str) -> ConnectionRequest:
        """Store a code copied from the Exalate console, and its private delivery.

        The store is a compare-and-set on "invited, no code yet": of two approvers
        pasting at once, one delivers and the other is told. The code passes the check
        Exalate's own do, whoever hands it in.
        """
        request = await self.check_can_paste(request_id, actor)
        code = tidy_code(code)
        if (fault := code_fault(code)) is not None:
            raise ApprovalError(f"That is not an invitation code: {fault}.")
        sealed = self._vault.seal(code)
        if request.status is Status.ASSISTED:
            # Created in the console just now: look for it, so the poller can follow it.
            existing = await self._initiation.connection_named_quietly(request)
            stored: ConnectionRequest | None = await self._states.move_if_first(
                request,
                Status.INVITED,
                actor,
                note="created in the console",
                invitation_code=sealed,
                exalate_connection_id=str(existing.id)
                if existing
                else request.exalate_connection_id,
                exalate_status=existing.status if existing else None,
                tell=DELIVERY,
            )
        else:
            stored = await self._store.store_code(
                request.id, sealed, tell=DELIVERY, at=self._states.now()
            )
        if stored is None:
            raise Conflict(await self._states.load(request.id))
        await self._states.record(stored, actor, "code pasted")
        log.info("code_pasted id=%s by=%s", request.id, actor)
        return stored

    async def reveal_code(self, request_id: int, actor: str) -> tuple[ConnectionRequest, str]:
        """The stored code again, for the requester alone, while the partner has not
        accepted; every reveal is audited."""
        request = await self._states.load(request_id)
        if actor != request.requester:
            raise NotAllowed("Only the requester can see the invitation code.")
        expect(request, Status.INVITED)
        sealed = await self._store.invitation_code(request.id)
        if sealed is None:
            raise NotAllowed(
                "The bot never received this connection's code; copy it from the Exalate "
                f"console (Connections → {request.fields.connection_name})."
            )
        await self._states.record(request, actor, "code revealed")
        log.info("code_revealed id=%s by=%s", request.id, actor)
        code = self._vault.open(sealed)
        remember_secret(code)
        return request, code
