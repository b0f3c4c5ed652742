"""What Exalate hands the bot is checked like what people type: an invitation code that is
not one goes to nobody, and a create call that fails in a way no Exalate error names is
settled at once, never left ``initiating``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr

from bot.approvals.errors import ApprovalError
from bot.approvals.invitation_codes import LONGEST_CODE, code_fault, tidy_code
from bot.approvals.model import CodeDelivery, CreateOutcome, Problem, Status
from bot.exalate import ConnectionSpec, CreatedConnection
from bot.exalate.models import ConnectionList
from tests.fakes.exalate import FakeExalate
from tests.service.world import ALICE, BOB, CAROL, World, make_world

NAME = "acme_to_partner"
HOSTILE = "<!channel> <https://evil.example.test|Exalate login>"


@dataclass
class IssuingExalate(FakeExalate):
    """Creates connections as usual, answering each with the next code given."""

    issued: list[str] = field(default_factory=list)

    async def create_connection(self, spec: ConnectionSpec) -> CreatedConnection:
        created = await super().create_connection(spec)
        return created.model_copy(update={"invitation_code": SecretStr(self.issued.pop(0))})


@dataclass
class BrokenExalate(FakeExalate):
    """A client with a fault of its own: ``broken`` calls raise what no Exalate error names
    (after a create has been made, as a fault in reading its answer would)."""

    broken: set[str] = field(default_factory=set)

    async def connection_list(self) -> ConnectionList:
        if "list" in self.broken:
            raise RecursionError("maximum recursion depth exceeded")
        return await super().connection_list()

    async def create_connection(self, spec: ConnectionSpec) -> CreatedConnection:
        created = await super().create_connection(spec)
        if "create" in self.broken:
            raise RecursionError("maximum recursion depth exceeded")
        return created


async def approved_with_code(code: str) -> tuple[World, int]:
    exalate = IssuingExalate(issued=[code])
    world = make_world(exalates={"default": exalate})
    request = await world.submit()
    await world.requests.approve(request.id, BOB)
    await world.flush()
    return world, request.id


class TestTheCheck:
    @pytest.mark.parametrize(
        ("code", "fault"),
        [
            ("", "it is empty"),
            (HOSTILE, "it holds characters other than letters, digits and + / = _ -"),
            ("abc`def", "it holds characters other than letters, digits and + / = _ -"),
            ("A" * (LONGEST_CODE + 1), "it has 16,001 characters, more than the 16,000"),
        ],
    )
    def test_what_is_not_a_code_is_said_without_quoting_it(self, code: str, fault: str) -> None:
        said = code_fault(code)
        assert said is not None
        assert said.startswith(fault)
        assert "channel" not in said

    def test_base64_of_any_length_up_to_the_bound_is_a_code(self) -> None:
        assert code_fault("eyJjb25uZWN0aW9uIjoi+/=_-" * 200) is None
        assert code_fault("A" * LONGEST_CODE) is None

    def test_whitespace_is_not_part_of_a_code(self) -> None:
        assert tidy_code(" eyJh\n  YmMi\r\n\tfQ== ") == "eyJhYmMifQ=="


class TestCodeFromExalate:
    async def test_a_code_that_is_not_one_goes_to_nobody_and_waits_for_a_paste(self) -> None:
        """The connection exists: the request is invited without a code, the card asks
        for the console's code, and nothing of the answer's code is kept."""
        world, request_id = await approved_with_code(HOSTILE)

        request = await world.store.get(request_id)
        assert request is not None
        assert request.status is Status.INVITED
        assert request.code_delivery is CodeDelivery.NEVER_RECEIVED
        assert request.problem is Problem.CODE_NOT_RECEIVED
        assert request.error_detail is not None
        assert "characters other than" in request.error_detail
        assert request.exalate_connection_id == "154"
        assert world.notifier.codes == []
        assert await world.store.invitation_code(request_id) is None
        assert ("tell_requester", request_id, "invited") in world.notifier.events

        pasted = await world.codes.paste_code(request_id, CAROL, "Q09OU09MRS1DT0RF")
        await world.flush()
        assert pasted.error is None
        assert world.notifier.codes == [(request_id, "Q09OU09MRS1DT0RF")]

    async def test_a_long_code_is_kept_whole(self) -> None:
        code = "eyJh" * 1250  # 5,000 characters
        world, request_id = await approved_with_code(code)

        assert world.notifier.codes == [(request_id, code)]
        assert (await world.codes.reveal_code(request_id, ALICE))[1] == code

    async def test_a_wrapped_code_is_delivered_without_its_line_breaks(self) -> None:
        world, request_id = await approved_with_code("eyJh\nYmMi\nfQ==\n")

        assert world.notifier.codes == [(request_id, "eyJhYmMifQ==")]

    async def test_the_refusal_is_logged_without_the_code(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="bot.service.initiation"):
            await approved_with_code(HOSTILE)

        assert "invitation_code_refused id=1 exalate_id=154" in caplog.text
        assert "evil" not in caplog.text


class TestPastedCode:
    async def test_the_service_refuses_what_is_not_a_code_whoever_hands_it_in(self) -> None:
        world, request_id = await approved_with_code(HOSTILE)

        with pytest.raises(ApprovalError, match="not an invitation code"):
            await world.codes.paste_code(request_id, CAROL, "<@U0EVE>")

        assert world.notifier.codes == []


class TestUnforeseenFailures:
    async def test_a_create_that_fails_unforeseen_is_settled_at_once_as_uncertain(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Failed, not initiating: Retry finds the connection the call made and adopts
        it; the traceback is in the log."""
        exalate = BrokenExalate(broken={"create"})
        world = make_world(exalates={"default": exalate})
        request = await world.submit()
        with caplog.at_level(logging.ERROR, logger="bot.service.initiation"):
            failed = await world.requests.approve(request.id, BOB)

        assert failed.status is Status.FAILED
        assert failed.last_attempt is CreateOutcome.UNCERTAIN
        assert failed.problem is Problem.EXALATE
        assert failed.error_detail is not None
        assert "RecursionError" in failed.error_detail
        assert "may have been created" in failed.error_detail
        [record] = [r for r in caplog.records if "initiation_unforeseen" in r.getMessage()]
        assert record.exc_info is not None

        exalate.broken.clear()
        adopted = await world.requests.retry(request.id, CAROL)
        assert adopted.status is Status.INVITED
        assert adopted.problem is Problem.CODE_NOT_RECEIVED

    async def test_a_list_that_fails_unforeseen_fails_the_request_before_creating(self) -> None:
        exalate = BrokenExalate()
        world = make_world(exalates={"default": exalate})
        request = await world.submit()
        exalate.broken.add("list")
        exalate.calls.clear()

        failed = await world.requests.approve(request.id, BOB)

        assert failed.status is Status.FAILED
        assert failed.last_attempt is None  # create was never called
        assert not any(call.startswith("create") for call in exalate.calls)
        assert failed.error_detail is not None
        assert "Nothing was created" in failed.error_detail
