"""Made-up project keys against the running bot: a text that cannot be a key never
reaches Jira, a key Jira lacks is asked about once, distinct ones a bounded number of
times, none is preselected in the form, and none becomes a metric label."""

from __future__ import annotations

import pytest

from tests.e2e.harness import Harness

HOSTILE = ["..", "../serverInfo", "%2e%2e", "SUP/../..", "a b", "1ABC", "K" * 256, "SÜP"]


def _lookups(harness: Harness) -> list[str]:
    """The calls Jira received about one project."""
    return [r.path for r in harness.simulator.requests if r.path.startswith("/rest/api/2/project/")]


async def _series(harness: Harness) -> set[str]:
    """The bot's own series on /metrics: name and labels, without the values."""
    async with harness.http.get(harness.url.replace("/slack/events", "/metrics")) as response:
        text = await response.text()
    lines = [line for line in text.splitlines() if line.startswith("exalate_bot_")]
    return {line.rsplit(" ", 1)[0] for line in lines}


class TestMadeUpKeys:
    async def test_a_text_that_is_no_key_never_reaches_jira(self, harness: Harness) -> None:
        """The finding: ``..`` made the bot GET /rest/api/2/. Now each is refused in the
        form, and Jira is asked nothing about any of them."""
        for key in HOSTILE:
            reply = await harness.submit_request(project_key=key)
            assert "project_key" in reply.body["errors"], key
        assert _lookups(harness) == []
        assert all(r.path.rstrip("/") != "/rest/api/2" for r in harness.simulator.requests)

    async def test_a_key_jira_lacks_is_asked_about_once(self, harness: Harness) -> None:
        """Fifty submissions of one made-up key: one call to Jira, nothing stored."""
        for _ in range(50):
            reply = await harness.submit_request(project_key="NOPE")
            assert reply.body["errors"] == {"project_key": "Jira has no project with the key NOPE."}
        assert _lookups(harness) == ["/rest/api/2/project/NOPE"]
        await harness.settle()
        assert harness.slack.calls_to("chat.postMessage") == []

    async def test_many_made_up_keys_cost_a_bounded_number_of_calls_and_no_series(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The finding: 400 submissions, 400 calls to Jira, 0 rows, /metrics 100 times
        larger. Now Jira is asked about the first 30 keys (the window made an hour, so
        a slow machine counts the same), the rest are told to come back, nothing is
        stored, and /metrics has the series it had after the first key."""
        monkeypatch.setattr("bot.service.checks.UNLISTED_WINDOW", 3600.0)
        await harness.submit_request(project_key="FIRSTMADEUP")
        before = await _series(harness)
        replies = [await harness.submit_request(project_key=f"MADEUP{n}") for n in range(120)]
        assert len(_lookups(harness)) == 30
        assert "submit again in a minute" in replies[-1].body["errors"]["project_key"]
        after = await _series(harness)
        assert after == before
        assert not any(series.startswith("exalate_bot_requests{") for series in after)
        assert any("/rest/api/2/project/{key}" in series for series in after)

    async def test_connect_preselects_only_a_project_the_list_has(self, harness: Harness) -> None:
        """With over 100 projects the select loads options as one types; a key given in
        ``connect project=…`` is preselected only if Jira's list has it, and otherwise
        the form opens without it and says so."""
        harness.simulator.set_project_count(150)
        harness.site().projects.invalidate()
        await harness.site().projects.get(wait=2)
        await harness.command("connect project=ANYTHING")
        first = await harness.slack.wait_for("views.open")
        made_up = first.args["view"]["blocks"][-1]
        assert made_up["element"]["type"] == "external_select"
        assert "initial_option" not in made_up["element"]
        assert made_up["hint"]["text"].startswith("ANYTHING is not among the projects")
        await harness.command("connect project=p0042")
        second = await harness.slack.wait_for("views.open", lambda call: call is not first)
        listed = second.args["view"]["blocks"][-1]
        assert listed["element"]["initial_option"]["value"] == "P0042"
        assert "hint" not in listed
