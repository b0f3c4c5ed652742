"""How Exalate refuses the create call decides what comes next: the credentials or their
rights (401/403) fail the request, naming the setting, and mark the site's health; a
call the node does not take as the bot sends it (400/415) goes to the console at once."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from bot.approvals.model import CreateOutcome, Problem, Status
from bot.exalate import (
    BasicAuth,
    ConnectionSpec,
    CreatedConnection,
    ExalateAuthError,
    ExalateCallNotTaken,
    ExalateError,
)
from bot.service import SiteHealth
from tests.fakes.exalate import FakeExalate
from tests.service.world import BOB, CAROL, World, make_world

NAME = "acme_to_partner"


def refusal(status: int) -> ExalateError:
    """What the client raises for a create call Exalate answered ``status``."""
    if status in (401, 403):
        return ExalateAuthError(f"Jira refused this call (HTTP {status}).", status=status)
    return ExalateCallNotTaken(f"Exalate did not take the call (HTTP {status}).", status=status)


async def approved_after(world: World, status: int) -> int:
    """A request approved while Exalate answers the create call ``status``; its id."""
    request = await world.submit()
    world.exalate().fail("create", refusal(status))
    await world.requests.approve(request.id, BOB)
    await world.flush()
    return request.id


@dataclass
class TakenMeanwhile(FakeExalate):
    """Another admin creates the name in the console as the bot's create call comes
    in, and Exalate answers the call 400."""

    async def create_connection(self, spec: ConnectionSpec) -> CreatedConnection:
        self.calls.append(f"create {spec.name}")
        self.add(spec.name)
        raise refusal(400)


def creates(exalate: FakeExalate) -> int:
    return sum(call.startswith("create") for call in exalate.calls)


class TestCredentialsRefused:
    @pytest.mark.parametrize("status", [401, 403])
    async def test_the_request_fails_naming_the_setting_and_retry_works_once_fixed(
        self, status: int
    ) -> None:
        world = make_world()
        request_id = await approved_after(world, status)

        failed = await world.store.get(request_id)
        assert failed is not None
        assert (failed.status, failed.problem) == (Status.FAILED, Problem.CREATE_REFUSED)
        assert failed.last_attempt is CreateOutcome.REFUSED  # nothing was created
        assert failed.error_detail == f"Jira refused this call (HTTP {status})."
        assert ("update_card", request_id, "failed") in world.notifier.events
        refused = world.site().create_refused
        assert refused is not None
        assert (refused.status, refused.at) == (status, world.clock())
        assert refused.credentials == "the personal access token in JIRA_TOKEN"

        invited = await world.requests.retry(request_id, CAROL)  # the admin fixed it
        assert invited.status is Status.INVITED
        assert world.site().create_refused is None
        assert creates(world.exalate()) == 2

    async def test_the_refusal_outlasts_polls_that_read_the_list_fine(self) -> None:
        """A poll's fresh health (as the jobs write it) keeps the refusal: the list
        reads fine while every create is refused."""
        world = make_world()
        await approved_after(world, 403)
        site = world.site()
        await world.lifecycle.poll(site)
        site.health = SiteHealth(reachable=True, last_answer=world.clock())

        assert site.health.reachable is True
        shown = site.health_json()
        assert shown["create_refused"] == {
            "status": 403,
            "at": world.clock().isoformat(),
            "credentials": "the personal access token in JIRA_TOKEN",
        }

    async def test_a_healthy_site_shows_no_refusal(self) -> None:
        world = make_world()
        await world.invited()
        assert "create_refused" not in world.site().health_json()

    async def test_basic_auth_names_its_user_and_password_variable(self) -> None:
        world = make_world(
            {
                "us": {
                    "credentials": BasicAuth("exalate-bot", "pw"),
                    "credentials_from": "JIRA_PASSWORD_US",
                }
            }
        )
        request = await world.submit(site="us")
        world.exalate("us").fail("create", refusal(403))
        await world.requests.approve(request.id, BOB)
        refused = world.site("us").create_refused
        assert refused is not None
        assert refused.credentials == (
            "the Jira user exalate-bot (its password is in JIRA_PASSWORD_US)"
        )

    async def test_the_log_names_the_setting_never_the_secret(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        world = make_world()
        with caplog.at_level(logging.ERROR, logger="bot.service.initiation"):
            await approved_after(world, 401)
        [line] = [r.getMessage() for r in caplog.records if "create_refused" in r.getMessage()]
        assert "site=default status=401" in line
        assert "JIRA_TOKEN" in line
        assert "default-token" not in line


class TestCallNotTaken:
    @pytest.mark.parametrize("status", [400, 415])
    async def test_the_approver_creates_it_in_the_console_at_once(self, status: int) -> None:
        world = make_world()
        request_id = await approved_after(world, status)

        assisted = await world.store.get(request_id)
        assert assisted is not None
        assert (assisted.status, assisted.problem) == (Status.ASSISTED, Problem.CREATE_NOT_TAKEN)
        assert assisted.error_detail == f"Exalate did not take the call (HTTP {status})."
        assert ("guide_approver", request_id, "assisted") in world.notifier.events
        assert world.site().create_refused is None
        assert creates(world.exalate()) == 1

        world.exalate().add(NAME)  # the approver made it in the console
        await world.lifecycle.poll(world.site())
        appeared = await world.store.get(request_id)
        assert appeared is not None
        assert appeared.exalate_connection_id is not None

    async def test_the_log_says_how_to_switch_the_site_to_assisted(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        world = make_world()
        with caplog.at_level(logging.WARNING, logger="bot.service.initiation"):
            await approved_after(world, 415)
        [line] = [r.getMessage() for r in caplog.records if "create_not_taken" in r.getMessage()]
        assert 'initiation = "assisted" in [sites.default]' in line
        assert "EXALATE_INITIATION=assisted" in line

    async def test_a_name_taken_meanwhile_is_the_name_taken_path(self) -> None:
        """A 400 for a name someone took since the check: never the console, never ours."""
        world = make_world(exalates={"default": TakenMeanwhile()})
        request = await world.submit()
        failed = await world.requests.approve(request.id, BOB)
        assert (failed.status, failed.name_taken) == (Status.FAILED, True)
        assert failed.problem is Problem.NAME_TAKEN

    async def test_a_project_gone_since_the_check_fails_for_a_retry(self) -> None:
        world = make_world()
        request = await world.submit()
        world.exalate().fail("create", refusal(400))
        world.exalate().projects = []  # deleted in Jira after the request was checked
        failed = await world.requests.approve(request.id, BOB)
        assert (failed.status, failed.problem) == (Status.FAILED, Problem.EXALATE)
        assert failed.last_attempt is CreateOutcome.REFUSED
        assert failed.error_detail is not None
        assert failed.error_detail.startswith("The incoming project SUP is gone from Jira")

    async def test_when_jira_cannot_say_about_the_project_the_console_takes_it(self) -> None:
        world = make_world()
        request = await world.submit()
        world.exalate().fail("create", refusal(400))
        world.exalate().fail("project", ExalateError("Jira is down"))
        assisted = await world.requests.approve(request.id, BOB)
        assert assisted.status is Status.ASSISTED
