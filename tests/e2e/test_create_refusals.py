"""Refusals, end to end through the real HTTP client and the simulator: a create call
Exalate refuses for the bot's credentials (401/403) or does not take as sent (400/415),
and a connection list it does not give whole."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.approvals.model import Status
from bot.cli.doctor import run_checks
from bot.cli.doctor_slack import Check
from bot.config import Settings
from handlers.ids import Action
from tests.e2e.harness import ALICE, BOB, CAROL, Harness

NAME = "acme_to_partner"


async def _approved(harness: Harness) -> int:
    """A request submitted and approved by Bob; its id."""
    assert (await harness.submit_request()).body == {}
    request_id = await harness.request_id()
    await harness.click(Action.APPROVE, request_id, BOB)
    return request_id


async def _probe(harness: Harness, path: str) -> tuple[int, dict[str, Any]]:
    async with harness.http.get(harness.url.replace("/slack/events", path)) as response:
        return response.status, await response.json()


async def _doctor(settings: Settings) -> dict[str, Check]:
    return {check.name: check async for check in run_checks(settings, http_mode=True)}


class TestCredentialsRefused:
    @pytest.mark.parametrize("status", [401, 403])
    async def test_approvers_are_told_which_setting_and_the_probes_and_doctor_show_it(
        self, harness: Harness, settings: Settings, status: int
    ) -> None:
        """The card names the token's variable and offers Retry; the requester is told
        where to read why; /readyz and doctor show the refusal until a create works."""
        harness.simulator.fail("create", status, message="Not an Exalate admin")
        request_id = await _approved(harness)
        card = await harness.card("failed")
        text = json.dumps(card.args["blocks"])
        assert "Exalate refused to let the bot create connections" in text
        assert "JIRA_TOKEN" in text
        assert "Not an Exalate admin" in text
        assert card.args["blocks"][-1]["elements"][0]["action_id"] == Action.RETRY.value
        told = await harness.dm(ALICE, "the approvers see its answer on the card")
        assert "JIRA_TOKEN" not in json.dumps(told.args)

        await harness.tick()  # a poll reads the list fine: the refusal stays
        code, ready = await _probe(harness, "/readyz")
        refused = ready["sites"]["default"]["create_refused"]
        assert (code, refused["status"]) == (503, status)  # nothing can be created here
        assert refused["credentials"] == "the personal access token in JIRA_TOKEN"
        doctor = (await _doctor(settings))["Exalate create"]
        assert doctor.ok is False
        assert f"#{request_id}" in doctor.detail
        assert "JIRA_TOKEN" in doctor.detail

        await harness.click(Action.RETRY, request_id, CAROL)  # an admin fixed it
        await harness.card("invited")
        code, ready = await _probe(harness, "/readyz")
        assert (code, "create_refused" in ready["sites"]["default"]) == (200, False)
        assert "Exalate create" not in await _doctor(settings)


class TestCallNotTaken:
    @pytest.mark.parametrize("status", [400, 415])
    async def test_the_approver_is_guided_to_the_console_and_told_how_to_switch(
        self, harness: Harness, status: int
    ) -> None:
        """No Retry that would fail again: the console's values and Paste code at once,
        and the card says how to send the site's requests there from the start."""
        harness.simulator.fail("create", status, message="Unrecognized field")
        request_id = await _approved(harness)
        card = await harness.card("assisted")
        text = json.dumps(card.args["blocks"])
        assert "Exalate did not take the bot's create call" in text
        assert "Unrecognized field" in text
        assert 'initiation = \\"assisted\\"' in text
        assert "[sites.default]" in text
        assert "EXALATE_INITIATION=assisted" in text
        assert card.args["blocks"][-1]["elements"][0]["action_id"] == Action.PASTE_CODE.value
        await harness.dm(BOB, "Copy Invitation Code")
        assert len(harness.simulator.create_calls) == 1

        harness.simulator.create_in_console(NAME, code="CODE-FROM-CONSOLE")
        assert (await harness.paste(request_id, "CODE-FROM-CONSOLE", BOB)).body == {}
        await harness.dm(ALICE, "CODE-FROM-CONSOLE")
        await harness.card("invited")


class TestIncompleteList:
    async def test_a_node_that_pages_is_read_whole_and_the_approval_succeeds(
        self, harness: Harness, settings: Settings
    ) -> None:
        for n in range(5):
            harness.simulator.create_in_console(f"older_{n}")
        harness.simulator.set_paging(2)
        request_id = await _approved(harness)
        await harness.card("invited")
        assert (await harness.repository_request(request_id)).status is Status.INVITED
        assert (await _doctor(settings))["Exalate REST API"].ok is True

    async def test_a_node_that_does_not_page_fails_the_approval_and_doctor_warns(
        self, harness: Harness, settings: Settings
    ) -> None:
        """Its first page cannot prove the name free: nothing is created, Retry waits,
        and doctor warns about the node."""
        for n in range(5):
            harness.simulator.create_in_console(f"older_{n}")
        harness.simulator.set_paging(2, None)
        request_id = await _approved(harness)
        card = await harness.card("failed")
        assert "incomplete" in json.dumps(card.args["blocks"])
        assert harness.simulator.create_calls == []
        api = (await _doctor(settings))["Exalate REST API"]
        assert api.ok is None
        assert api.detail.startswith("warning: reachable, but the connection list is incomplete")
        assert "2 of 5 connection(s)" in api.detail

        harness.simulator.set_paging(None)
        await harness.click(Action.RETRY, request_id, CAROL)
        await harness.card("invited")
