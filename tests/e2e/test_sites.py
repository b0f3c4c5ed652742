"""Three Exalate nodes served by one bot, end to end: two sign in with a token, one with
basic auth, each behind its own simulator on loopback.

A request for one site asks that site's Jira only; names are unique per site; a site
that is down slows and blocks no other, and ``/readyz`` names it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.approvals.model import Status
from bot.cli.doctor import run_checks
from bot.config import Settings, SettingsError
from bot.exalate import BasicAuth
from bot.runtime.app import Runtime
from bot.sandbox.exalate_simulator import Simulator
from bot.sandbox.slack_emulator import FakeSlack
from handlers.ids import Action, View
from tests.e2e.conftest import Clock
from tests.e2e.harness import (
    ADMINS_GROUP,
    ALICE,
    APPROVAL_CHANNEL,
    BOB,
    Harness,
    serving,
    settings_from_file,
)

TOKENS = {"eu": "eu-personal-token", "apac": "apac-personal-token"}
US_LOGIN = ("exalate-bot", "us-password")
SITES_FILE = """
[sites.eu]
jira_url = "{eu}"
token_env = "JIRA_TOKEN_EU"
local_short_name = "acme-eu"

[sites.us]
jira_url = "{us}"
username = "exalate-bot"
password_env = "JIRA_PASSWORD_US"
local_short_name = "acme-us"

[sites.apac]
jira_url = "{apac}"
token_env = "JIRA_TOKEN_APAC"
local_short_name = "acme-apac"
"""


@dataclass
class Node:
    """One site's simulated Jira with Exalate, and the server it answers on."""

    simulator: Simulator
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def calls(self, path: str) -> int:
        return sum(1 for r in self.simulator.requests if r.path.endswith(path))


@pytest.fixture(name="nodes")
async def _nodes() -> AsyncIterator[dict[str, Node]]:
    simulators = {
        "eu": Simulator(token=TOKENS["eu"]),
        "us": Simulator(basic=US_LOGIN),
        "apac": Simulator(token=TOKENS["apac"]),
    }
    servers = {name: TestServer(sim.app, host="127.0.0.1") for name, sim in simulators.items()}
    for server in servers.values():
        await server.start_server()
    try:
        yield {name: Node(simulators[name], servers[name]) for name in simulators}
    finally:
        for server in servers.values():
            await server.close()


def _sites_settings(
    nodes: dict[str, Node],
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    slack: FakeSlack,
    database_url: str,
    text: str = SITES_FILE,
) -> Settings:
    path = folder / "exalate-bot.toml"
    path.write_text(text.format(**{name: node.url for name, node in nodes.items()}))
    monkeypatch.setenv("JIRA_TOKEN_EU", TOKENS["eu"])
    monkeypatch.setenv("JIRA_TOKEN_APAC", TOKENS["apac"])
    monkeypatch.setenv("JIRA_PASSWORD_US", US_LOGIN[1])
    return settings_from_file(path, slack, database_url, approvers=f"{BOB},{ADMINS_GROUP}")


@pytest.fixture(name="harness")
async def _harness(
    nodes: dict[str, Node],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slack: FakeSlack,
    bot_database_url: str,
    clock: Clock,
) -> AsyncIterator[Harness]:
    settings = _sites_settings(nodes, tmp_path, monkeypatch, slack, bot_database_url)
    async with serving(settings, slack, nodes["eu"].simulator, clock) as harness:
        yield harness


async def _invite_on(harness: Harness, site: str, remote: str = "partner") -> int:
    """Open the form for ``site``, submit it, have Bob approve; returns the request id."""
    cards = len(_cards(harness))
    await harness.command(f"connect site={site}")
    opened = await harness.slack.wait_for(
        "views.open", lambda call: call.args["view"].get("private_metadata") == site
    )
    assert opened.args["view"]["callback_id"] == View.REQUEST.value
    reply = await harness.submit(
        site=site,
        remote_short_name=remote,
        local_short_name="",
        connection_name="",
        description="Support tickets",
        project_key="SUP",
    )
    assert reply.body == {}, reply.body
    await harness.settle()
    request_id = await harness.request_id(cards)
    await harness.click(Action.APPROVE, request_id, BOB)
    await harness.settle()
    return request_id


def _cards(harness: Harness) -> list[object]:
    return [
        c
        for c in harness.slack.calls_to("chat.postMessage")
        if c.args.get("channel") == APPROVAL_CHANNEL and "thread_ts" not in c.args
    ]


async def test_a_request_for_each_site_ends_with_its_code_and_only_its_site_is_asked(
    harness: Harness, nodes: dict[str, Node]
) -> None:
    """eu (token), us (basic auth), apac (token): each request is created on its own
    node with that node's short name, the code reaches Alice, and no simulator sees
    another site's create."""
    ids = {site: await _invite_on(harness, site) for site in ("eu", "us", "apac")}
    for site, request_id in ids.items():
        request = await harness.repository_request(request_id)
        assert request.status is Status.INVITED
        assert request.fields.site == site
        (create,) = nodes[site].simulator.create_calls
        assert create["localInstanceShortName"] == f"acme-{site}"
        assert create["name"] == f"acme-{site}_to_partner"
        code = nodes[site].simulator.named(f"acme-{site}_to_partner")["invitationCode"]
        await harness.dm(ALICE, code)
    basic = "Basic " + base64.b64encode(":".join(US_LOGIN).encode()).decode()
    assert {r.headers["Authorization"] for r in nodes["us"].simulator.requests} == {basic}
    assert {r.headers["Authorization"] for r in nodes["eu"].simulator.requests} == {
        f"Bearer {TOKENS['eu']}"
    }


async def test_two_sites_may_each_have_a_connection_of_the_same_name(
    harness: Harness, nodes: dict[str, Node]
) -> None:
    """acme_to_partner on eu and on us: both created; status and history tell them apart
    by site, and a name two sites share must be given with its site."""
    for site in ("eu", "us"):
        await harness.command(f"connect site={site}")
        reply = await harness.submit(
            site=site,
            local_short_name="acme",
            remote_short_name="partner",
            connection_name="",
            description="",
            project_key="SUP",
        )
        assert reply.body == {}, reply.body
        await harness.settle()
    eu_id, us_id = await harness.request_id(0), await harness.request_id(1)
    for request_id in (eu_id, us_id):
        await harness.click(Action.APPROVE, request_id, BOB)
        await harness.settle()
    for site in ("eu", "us"):
        assert nodes[site].simulator.named("acme_to_partner")["status"] == "PENDING"
    ambiguous = await harness.command("status acme_to_partner", user=BOB)
    assert "each have a request named acme_to_partner" in json.dumps(ambiguous.body)
    history = await harness.command("status acme_to_partner site=us", user=BOB)
    assert f"(request #{us_id})" in json.dumps(history.body) or "us" in json.dumps(history.body)
    listing = json.dumps((await harness.command("status", user=BOB)).body)
    assert "acme_to_partner (eu)" in listing
    assert "acme_to_partner (us)" in listing
    assert listing.count("*Site us*") == 1  # grouped by site, newest site's group first
    assert listing.index("*Site us*") < listing.index("*Site eu*")
    only_us = json.dumps((await harness.command("status site=us", user=BOB)).body)
    assert "acme_to_partner (us)" in only_us
    assert "acme_to_partner (eu)" not in only_us


async def test_the_form_asks_for_the_site_first_and_site_prefills_it(
    harness: Harness, nodes: dict[str, Node]
) -> None:
    """Several sites: the first input is a select labelled Site; ``site=us`` pre-fills it
    with us's short name and us's projects; a submission naming no site is refused
    under the Site field with nothing stored."""
    await harness.command("connect")
    opened = await harness.slack.wait_for("views.open")
    site_block = opened.args["view"]["blocks"][1]
    assert site_block["label"]["text"] == "Site"
    assert [o["value"] for o in site_block["element"]["options"]] == ["eu", "us", "apac"]
    assert "initial_option" not in site_block["element"]
    refused = await harness.submit(
        remote_short_name="partner", connection_name="", description="", project_key="SUP"
    )
    assert "Choose the site" in refused.body["errors"]["site"]
    await nodes_projects_loaded(harness, "us")
    await harness.command("connect site=us")
    prefilled = await harness.slack.wait_for(
        "views.open", lambda call: call.args["view"].get("private_metadata") == "us"
    )
    blocks = {b.get("block_id"): b for b in prefilled.args["view"]["blocks"]}
    assert blocks["site"]["element"]["initial_option"]["value"] == "us"
    assert blocks["local_short_name"]["element"]["initial_value"] == "acme-us"
    assert blocks["project_key"]["element"]["type"] == "static_select"
    unknown = await harness.command("connect site=mars")
    assert "There is no site mars; the sites are eu, us, apac." in unknown.body["text"]


async def nodes_projects_loaded(harness: Harness, site: str) -> None:
    await harness.site(site).projects.get(wait=2)


async def test_type_ahead_and_checks_ask_the_chosen_site_only(
    harness: Harness, nodes: dict[str, Node]
) -> None:
    """Projects offered as one types, a project newer than the list, and the name check
    all go to the form's site: eu's Jira is never asked about a request for us."""
    nodes["us"].simulator.projects.append(("USONLY", "Only on us"))
    suggested = await harness.suggest("USON", site="us")
    assert [o["value"] for o in suggested.body["options"]] == ["USONLY"]
    harness.site("eu").projects.invalidate()  # stale: a warm-up of eu would show
    harness.site("eu").connections.invalidate()
    before = len(nodes["eu"].simulator.requests)
    await harness.command("connect site=us")
    await harness.slack.wait_for(
        "views.open", lambda c: c.args["view"].get("private_metadata") == "us"
    )
    reply = await harness.submit(
        site="us",
        remote_short_name="partner",
        connection_name="",
        description="",
        project_key="USONLY",
    )
    assert reply.body == {}, reply.body
    await harness.settle()
    assert len(nodes["eu"].simulator.requests) == before


async def test_with_one_site_down_the_others_work_and_readyz_names_it(
    harness: Harness, nodes: dict[str, Node]
) -> None:
    """apac stops answering: eu and us still take, approve and deliver requests; the
    poll backs off apac alone, and /readyz is 503 naming apac."""
    apac = harness.site("apac")
    await apac.projects.get(wait=2)  # the lists loading since the start are in: a server
    await apac.connections.get(wait=2)  # closing mid-answer would hold them for 10 s
    await nodes["apac"].server.close()
    await harness.tick()
    base = harness.url.replace("/slack/events", "")
    async with harness.http.get(f"{base}/readyz") as response:
        assert response.status == 503
        ready = await response.json()
    assert ready["sites"]["eu"]["reachable"] is True
    assert ready["sites"]["us"]["reachable"] is True
    assert ready["sites"]["apac"] == {
        "reachable": False,
        "last_answer": None,
        "last_error": "ExalateNotSent",
    }
    for site in ("eu", "us"):
        request_id = await _invite_on(harness, site)
        assert (await harness.repository_request(request_id)).status is Status.INVITED
    assert harness.site("apac").backoff.failures == 1
    assert harness.site("eu").backoff.failures == 0


async def test_one_poll_per_site_per_tick_however_many_are_pending(
    harness: Harness, nodes: dict[str, Node]
) -> None:
    """Each tick reads each site's connection list once, whether nothing or many
    invitations wait there."""
    for site in nodes:
        await harness.site(site).connections.get(wait=2)  # the start's warm-up is in
    before = {name: node.calls("/connections") for name, node in nodes.items()}
    await harness.tick()
    after = {name: node.calls("/connections") for name, node in nodes.items()}
    assert {name: after[name] - before[name] for name in nodes} == {"eu": 1, "us": 1, "apac": 1}
    for n in range(3):
        await _invite_on(harness, "eu", remote=f"p{n}")
    before = {name: node.calls("/connections") for name, node in nodes.items()}
    await harness.tick()
    after = {name: node.calls("/connections") for name, node in nodes.items()}
    assert {name: after[name] - before[name] for name in nodes} == {"eu": 1, "us": 1, "apac": 1}


async def test_a_partner_accepting_on_one_site_settles_that_sites_request_only(
    harness: Harness, nodes: dict[str, Node]
) -> None:
    """The same connection name accepted on us leaves eu's invitation pending."""
    eu_id = await _invite_on(harness, "eu", remote="partner")
    us_id = await _invite_on(harness, "us", remote="partner")
    nodes["us"].simulator.accept("acme-us_to_partner")
    await harness.tick()
    assert (await harness.repository_request(us_id)).status is Status.ACTIVE
    assert (await harness.repository_request(eu_id)).status is Status.INVITED


async def test_a_retired_site_takes_no_request_but_its_invitations_are_followed(
    nodes: dict[str, Node],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slack: FakeSlack,
    bot_database_url: str,
    clock: Clock,
) -> None:
    """Retiring a site keeps its pending invitation followed to the end, hides it from
    the form and refuses ``connect site=`` it; removing it outright is refused at start,
    naming the open request."""
    settings = _sites_settings(nodes, tmp_path, monkeypatch, slack, bot_database_url)
    async with serving(settings, slack, nodes["eu"].simulator, clock) as harness:
        request_id = await _invite_on(harness, "apac")

    without_apac = SITES_FILE.split("[sites.apac]")[0]
    settings = _sites_settings(nodes, tmp_path, monkeypatch, slack, bot_database_url, without_apac)
    with pytest.raises(
        SettingsError,
        match="site 'apac' is not configured but has open requests: acme-apac_to_partner",
    ):
        await Runtime.start(settings, http_mode=True, clock=clock)

    retired = SITES_FILE.replace(
        'local_short_name = "acme-apac"', 'local_short_name = "acme-apac"\nretired = true'
    )
    settings = _sites_settings(nodes, tmp_path, monkeypatch, slack, bot_database_url, retired)
    async with serving(settings, slack, nodes["eu"].simulator, clock) as harness:
        refused = await harness.command("connect site=apac")
        assert "The site apac is retired" in refused.body["text"]
        await harness.command("connect")
        opened = await harness.slack.wait_for(
            "views.open", lambda c: c.args["view"].get("private_metadata") == ""
        )
        offered = [o["value"] for o in opened.args["view"]["blocks"][1]["element"]["options"]]
        assert offered == ["eu", "us"]
        nodes["apac"].simulator.accept("acme-apac_to_partner")
        await harness.tick()
        assert (await harness.repository_request(request_id)).status is Status.ACTIVE


async def test_doctor_checks_each_site_with_its_own_credentials(
    nodes: dict[str, Node],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slack: FakeSlack,
    bot_database_url: str,
) -> None:
    """Each site's URL, token or login, Jira version, Exalate API and projects, named with
    the site; a wrong password fails us's login alone, naming its variable."""
    settings = _sites_settings(nodes, tmp_path, monkeypatch, slack, bot_database_url)
    wrong = replace(settings.sites[1], credentials=BasicAuth(US_LOGIN[0], "wrong"))
    settings._sites = (settings.sites[0], wrong, settings.sites[2])
    checks = {check.name: check async for check in run_checks(settings, http_mode=True)}
    for site in ("eu", "apac"):
        assert checks[f"Site {site}: Jira token"].ok is True
        assert checks[f"Site {site}: Projects"].detail == "5 open for incoming sync"
    assert checks["Site us: Jira login"].ok is False
    assert "Jira refuses JIRA_PASSWORD_US" in checks["Site us: Jira login"].detail
    assert checks["Site us: Exalate REST API"].ok is False
    assert checks["Sites file"].ok is True


async def test_a_site_switched_in_the_form_gets_its_own_short_name(
    harness: Harness, nodes: dict[str, Node]
) -> None:
    """The form opened for eu is pre-filled with eu's short name; switched to us before
    submitting, the request is us's with us's short name, not eu's."""
    await harness.command("connect site=eu")
    await harness.slack.wait_for(
        "views.open", lambda call: call.args["view"].get("private_metadata") == "eu"
    )
    reply = await harness.submit(
        site="us",
        local_short_name="acme-eu",  # what the form showed, untouched
        remote_short_name="partner",
        connection_name="",
        description="",
        project_key="SUP",
    )
    assert reply.body == {}, reply.body
    await harness.settle()
    request = await harness.repository_request(await harness.request_id(0))
    assert (request.fields.site, request.fields.local_short_name) == ("us", "acme-us")
    assert request.fields.connection_name == "acme-us_to_partner"
