"""The doctor's Slack checks that the default approvers and every route share: a channel
the bot posts cards to, and a list of approvers."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

CHANNEL_SCOPES = ("channels:read", "groups:read")  # conversations.info: public, private


@dataclass(frozen=True)
class Check:
    """One verdict: ``ok`` is True, False, or None when it could not be checked."""

    name: str
    ok: bool | None
    detail: str

    def line(self) -> str:
        mark = {True: "✓", False: "✗", None: "!"}[self.ok]
        return f"{mark} {self.name}: {self.detail}"


@dataclass
class Slack:
    """The Slack checks' client, and what the token check learnt for the others."""

    client: AsyncWebClient
    bot_name: str = "exalate"  # the manifest's, until auth.test names the bot
    refused: str | None = None
    """Slack's error when auth.test refused the token: nothing else can be looked at."""


async def channel_check(slack: Slack, name: str, channel: str, setting: str) -> Check:
    """conversations.info on ``channel`` (given by ``setting``): it exists, is not
    archived, and the bot is in it; each way it is not names its fix."""
    invite = f"/invite @{slack.bot_name}"
    try:
        response = await slack.client.conversations_info(channel=channel)
    except SlackApiError as error:
        code = error.response.get("error")
        if code == "missing_scope":
            lacking = " and ".join(_lacking_channel_scopes(error, channel))
            return Check(
                name,
                None,
                f"{channel}: cannot look: the bot token lacks {lacking}; reinstall the app "
                "from manifest.yml, which asks for it.",
            )
        if code == "channel_not_found":
            return Check(
                name,
                False,
                f"{channel}: channel_not_found: check {setting} (a channel id "
                "such as C0123456789), or it is a private channel the bot is not in: invite "
                f"it: {invite} in that channel.",
            )
        return Check(
            name,
            False,
            f"{channel}: {code}; check {setting} (a channel id such as C0123456789).",
        )
    info = response.get("channel") or {}
    label = f"{channel} (#{info['name']})" if info.get("name") else channel
    if info.get("is_archived"):
        return Check(
            name,
            False,
            f"{label} is archived: unarchive it in Slack (channel settings) or point "
            f"{setting} at another channel.",
        )
    if not info.get("is_member"):
        return Check(
            name,
            False,
            f"{label}: the bot is not a member; invite the bot: {invite} in that channel.",
        )
    kind = "private" if info.get("is_private") else "public"
    return Check(name, True, f"{label}, {kind}, not archived, the bot is a member")


def _lacking_channel_scopes(error: SlackApiError, channel: str) -> list[str]:
    """Which of channels:read and groups:read a missing_scope answer asks for and the
    token lacks (Slack's ``needed`` may name one, or every scope the method accepts)."""
    body = error.response
    provided = set(str(body.get("provided") or "").split(","))
    needed = [s for s in str(body.get("needed") or "").split(",") if s in CHANNEL_SCOPES]
    if not needed:
        needed = ["groups:read" if channel.startswith("G") else "channels:read"]
    return [s for s in needed if s not in provided] or needed


async def approvers_check(slack: Slack, name: str, ids: tuple[str, ...], setting: str) -> Check:
    """Each approver group resolves; each approver user exists and is not deactivated."""
    groups = [a for a in ids if a.startswith("S")]
    users = [a for a in ids if not a.startswith("S")]
    for group in groups:
        try:
            await slack.client.usergroups_users_list(usergroup=group)
        except SlackApiError as error:
            return Check(
                name,
                False,
                f"user group {group}: {error.response.get('error')}; check {setting}.",
            )
    deactivated: list[str] = []
    for user in users:
        try:
            response = await slack.client.users_info(user=user)
        except SlackApiError as error:
            code = error.response.get("error")
            if code == "missing_scope":
                return Check(
                    name,
                    None,
                    f"{len(groups)} group(s) resolvable; {len(users)} user id(s) not looked "
                    "up: the bot token lacks users:read; reinstall the app from manifest.yml.",
                )
            return Check(name, False, f"user {user}: {code}; check {setting}.")
        if (response.get("user") or {}).get("deleted"):
            deactivated.append(user)
    if deactivated:
        return Check(
            name,
            False,
            f"{', '.join(deactivated)} deactivated in Slack: take them out of "
            f"{setting}, and add whoever decides in their place.",
        )
    return Check(
        name, True, f"{len(groups)} group(s) resolvable; {len(users)} user(s) active in Slack"
    )
