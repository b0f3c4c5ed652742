"""Several Exalate nodes: a request belongs to one site, whose Exalate alone it talks to;
names are unique per site; a retired site takes nothing new but is still followed."""

from __future__ import annotations

import pytest

from bot.approvals.errors import NotAllowed
from bot.approvals.model import Status
from bot.approvals.rules import Draft, Field
from tests.fakes.exalate import FakeExalate
from tests.service.world import ALICE, BOB, make_world

NAME = "acme_to_partner"


async def test_a_request_for_one_site_calls_only_that_sites_exalate() -> None:
    world = make_world({"us": {}, "eu": {}})
    invited = await world.invited(site="us")
    await world.lifecycle.poll(world.site("us"))
    assert invited.fields.site == "us"
    assert f"create {NAME}" in world.exalate("us").calls
    assert world.exalate("eu").calls == []


async def test_the_same_connection_name_may_be_open_on_two_sites() -> None:
    """Each node has its own connections; one site's name is no claim on another's."""
    world = make_world({"us": {}, "eu": {}})
    us = await world.invited(site="us")
    eu = await world.invited(site="eu")
    assert (us.status, eu.status) == (Status.INVITED, Status.INVITED)
    assert [c.name for c in world.exalate("eu").connections.values()] == [NAME]

    again = Draft("acme", "partner", NAME.upper(), "", "SUP", "us")
    refused = await world.requests.submit(again, ALICE, check_within=5)
    assert refused.request is None
    assert Field.NAME in refused.errors


async def test_a_retired_site_takes_nothing_new_yet_follows_its_invitations() -> None:
    """Retiring a site (a restart with ``retired = true``) refuses new submissions and
    approvals there; invitations already sent still move on when the partner accepts."""
    exalates = {"us": FakeExalate(), "old": FakeExalate()}
    before = make_world({"us": {}, "old": {}}, exalates=exalates)
    invited = await before.invited(site="old")
    waiting = await before.submit(site="old", remote="other")

    after = make_world(
        {"us": {}, "old": {"retired": True}},
        exalates=exalates,
        store=before.store,
        notifier=before.notifier,
        clock=before.clock,
        vault=before.vault,
    )
    draft = Draft("acme", "third", "", "", "SUP", "old")
    submission = await after.requests.submit(draft, ALICE, check_within=5)
    assert submission.request is None
    assert Field.SITE in submission.errors
    with pytest.raises(NotAllowed, match="retired"):
        await after.requests.approve(waiting.id, BOB)
    assert (await after.now(waiting)).status is Status.PENDING_APPROVAL

    exalates["old"].set_status(NAME, "ACTIVE")
    await after.lifecycle.poll(after.site("old"))
    assert (await after.now(invited)).status is Status.ACTIVE
    rejected = await after.requests.reject(waiting.id, BOB, "site retired")
    assert rejected.status is Status.REJECTED


async def test_a_draft_without_a_site_is_refused_when_several_sites_are_open() -> None:
    world = make_world({"us": {}, "eu": {}})
    submission = await world.requests.submit(
        Draft("acme", "partner", project_key="SUP"), ALICE, check_within=5
    )
    assert submission.request is None
    assert set(submission.errors) == {Field.SITE}
    assert world.exalate("us").calls == world.exalate("eu").calls == []


async def test_a_draft_without_a_site_goes_to_the_only_open_one() -> None:
    world = make_world({"old": {"retired": True}, "us": {}})
    request = await world.submit()
    assert request.fields.site == "us"


async def test_an_empty_local_short_name_takes_the_sites_own() -> None:
    world = make_world({"us": {"local_short_name": "acme-us"}})
    request = await world.submit(local="")
    assert request.fields.local_short_name == "acme-us"
    assert request.fields.connection_name == "acme-us_to_partner"
