"""The throughput benchmark's reading of the bot's answers to a form: a refusal is
counted by its error text and sent again, up to ATTEMPTS times, so a slow machine's
"submit again" never stops the run."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck

from bot.approvals.rules import Field
from handlers.views import TOO_SLOW, TRY_AGAIN
from tests.bench.bench_throughput import ATTEMPTS, Form, Outcomes, refusal


async def _answer(**arguments: Any) -> tuple[int, str]:
    """What Bolt sends back for ``ack(**arguments)``: status and body."""
    ack = AsyncAck()  # type: ignore[no-untyped-call]
    response = await ack(**arguments)
    return response.status, response.body


class TestRefusal:
    async def test_an_empty_ack_is_an_acceptance(self) -> None:
        assert refusal(*await _answer()) is None

    async def test_a_saving_form_is_an_acceptance(self) -> None:
        """Stored a moment later: the benchmark approves it when it shows up."""
        answer = await _answer(response_action="update", view={"type": "modal"})
        assert refusal(*answer) is None

    async def test_errors_in_the_form_are_a_refusal_of_their_text(self) -> None:
        answer = await _answer(response_action="errors", errors={Field.NAME.value: TOO_SLOW})
        assert refusal(*answer) == TOO_SLOW

    def test_no_ack_in_time_is_a_refusal_of_its_status(self) -> None:
        """Bolt answers 404 when the listener did not ack within 3 s."""
        assert refusal(404, "") == "HTTP 404 (no answer within Slack's 3 s)"


class TestOutcomes:
    def test_refusals_are_counted_by_kind_and_sent_again(self) -> None:
        outcomes = Outcomes()
        forms = [Form((b"form-%d" % n, "x")) for n in range(4)]
        again = outcomes.record(forms, [None, TOO_SLOW, TOO_SLOW, TRY_AGAIN])
        assert again == forms[1:]
        assert outcomes.accepted == 1
        assert outcomes.refused == {TOO_SLOW: 2, TRY_AGAIN: 1}
        assert outcomes.given_up == 0

    def test_a_form_refused_every_time_is_given_up(self) -> None:
        outcomes = Outcomes()
        form = Form((b"form", "x"))
        for _ in range(ATTEMPTS - 1):
            assert outcomes.record([form], [TOO_SLOW]) == [form]
        assert outcomes.record([form], [TOO_SLOW]) == []
        assert outcomes.refused == {TOO_SLOW: ATTEMPTS}
        assert outcomes.given_up == 1
