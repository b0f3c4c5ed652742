"""The workspace behind the emulator: who exists, where the bot may post, what it may do.

Each Web API method here answers as Slack does, refusals included: a method the bot's
scopes do not cover, a revoked token, a channel it is not in (or that is private or
archived), a user who does not exist or was deactivated, a message that is not there, a
``trigger_id`` that is unknown, stale or spent, a view updated with a stale ``hash``, and
blocks or views that break Block Kit's rules. A fake that accepted these would let a
test pass where production breaks.

Error strings and scopes follow Slack's method reference as slack-ruby/slack-api-ref
records it (``methods/**.json`` and ``docs.slack.dev/methods/*.json``, August 2026).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.slack_emulator.block_kit import block_problems, view_problems

# The bot scopes of manifest.yml (a test keeps the two equal).
MANIFEST_SCOPES = (
    "commands",
    "chat:write",
    "im:write",
    "usergroups:read",
    "users:read",
    "channels:read",
    "groups:read",
)

# The scopes this version added to the manifest (users.info; conversations.info on a
# public and on a private channel). An installation made from the previous manifest
# lacks them until the app is reinstalled: MANIFEST_SCOPES without these.
ADDED_SCOPES = ("users:read", "channels:read", "groups:read")

DEFAULT_SCOPES = MANIFEST_SCOPES
"""What the emulator's bot token is granted unless a test says otherwise."""

TOKEN_REFUSALS = ("token_revoked", "invalid_auth", "account_inactive")
"""How Slack answers every call with a token it no longer honours (status 200)."""

# conversations.info takes any of these, the one a channel's kind needs.
_CONVERSATION_READ_SCOPES = "channels:read,groups:read,im:read,mpim:read"

TRIGGER_LIFETIME = 3.0
"""Seconds a trigger_id may be exchanged for a modal, once."""

RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60.0
"""A response_url takes five posts within thirty minutes."""

# The first message timestamp, in microseconds past this second.
_TS_SECOND = 1_700_000_000


_Method = Callable[[Mapping[str, Any]], dict[str, Any]]
_Scope = str | Callable[[Mapping[str, Any]], str] | None
"""The scope a method needs: none, one, or one that depends on its arguments."""


class Refusal(Exception):
    """Slack's ``ok: false`` answer: ``error`` and any fields that go with it."""

    def __init__(self, error: str, **details: Any) -> None:
        super().__init__(error)
        self.error = error
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.details}


@dataclass
class _ResponseUrl:
    issued_at: float
    uses: int = 0


@dataclass
class Workspace:
    """One Slack workspace with the bot installed, and the Web API methods it answers."""

    socket_mode_url: Callable[[], str]
    """The ``ws://`` address ``apps.connections.open`` hands out, once it is known."""
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)
    """People who exist; group members and the bot are added to them."""
    deactivated: set[str] = field(default_factory=set)
    member_of: set[str] = field(default_factory=set)
    """Channels the bot was invited to; it may post only there and in DMs it opened."""
    private: set[str] = field(default_factory=set)
    """``C…`` channels that are private: to a bot outside them they do not exist (any
    ``G…`` id is private too)."""
    archived: set[str] = field(default_factory=set)
    """Channels archived: nothing may be posted there, or edited."""
    scopes: set[str] = field(default_factory=lambda: set(DEFAULT_SCOPES))
    bot_user_id: str = "UBOT"
    team_id: str = "T1"
    clock: Callable[[], float] = time.monotonic

    messages: dict[tuple[str, str], dict[str, Any]] = field(init=False, default_factory=dict)
    """What is in each channel, by (channel, ts), as last posted or updated."""
    unread: dict[tuple[str, str], dict[str, Any]] = field(init=False, default_factory=dict)
    """Messages posted to a deactivated person's DM, by (channel, ts): Slack takes them,
    nobody will read them. They are in ``messages`` too."""
    revoked: dict[str | None, str] = field(init=False, default_factory=dict)
    """Refused tokens and how Slack refuses them; ``None`` stands for every bot token."""
    _dms: dict[str, str] = field(init=False, default_factory=dict)
    _views: dict[str, str] = field(init=False, default_factory=dict)
    """Each view Slack shows, by id: its current hash."""
    _view_ids: dict[str, str] = field(init=False, default_factory=dict)
    """View ids by ``external_id``, and Home tabs' by ``home:<user>``."""
    _triggers: dict[str, float] = field(init=False, default_factory=dict)
    _spent_triggers: set[str] = field(init=False, default_factory=set)
    _response_urls: dict[str, _ResponseUrl] = field(init=False, default_factory=dict)
    _counter: Iterator[int] = field(init=False, default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.users |= {user for members in self.usergroups.values() for user in members}
        self.users.add(self.bot_user_id)
        # Each method the emulator answers: the bot scope it needs, as Slack names it in
        # a missing_scope answer's ``needed`` (None: any bot token may call it), and how.
        self._methods: dict[str, tuple[_Scope, _Method]] = {
            "auth.test": (None, self._auth_test),
            "apps.connections.open": (None, self._apps_connections_open),  # an app token's
            "chat.postMessage": ("chat:write", self._chat_post_message),
            "chat.postEphemeral": ("chat:write", self._chat_post_ephemeral),
            "chat.update": ("chat:write", self._chat_update),
            "conversations.open": ("im:write", self._conversations_open),
            "conversations.info": (self._conversation_read_scope, self._conversations_info),
            "usergroups.users.list": ("usergroups:read", self._usergroups_users_list),
            "users.info": ("users:read", self._users_info),
            "views.open": (None, self._views_open),
            "views.push": (None, self._views_open),
            "views.update": (None, self._views_update),
            "views.publish": (None, self._views_publish),
        }

    # ------------------------------------------------------------ what Slack hands out

    def issue_trigger(self) -> str:
        """A new trigger_id, as a command, a click or a submission carries one."""
        trigger = f"{self._next()}.{self._next()}.trigger"
        self._triggers[trigger] = self.clock()
        return trigger

    def issue_response_url(self, name: str) -> None:
        """Start the life of the response_url called ``name`` (once per name)."""
        self._response_urls.setdefault(name, _ResponseUrl(self.clock()))

    def use_response_url(self, name: str) -> None:
        """Count one post to a response_url; Refusal when Slack would refuse it."""
        url = self._response_urls.get(name)
        if url is None:
            raise Refusal("no_active_hooks")
        if self.clock() - url.issued_at > RESPONSE_URL_LIFETIME:
            raise Refusal("Expired url")  # sic: Slack's own words, space and all
        if url.uses >= RESPONSE_URL_USES:
            raise Refusal("used_url")  # the answer to a sixth use is not documented
        url.uses += 1

    def deactivate(self, user_id: str) -> None:
        """The person leaves the workspace: users.info says ``deleted``, a new DM with
        them is refused, and posts to a DM already open go to `unread`."""
        self.deactivated.add(user_id)

    def reactivate(self, user_id: str) -> None:
        """The person is back."""
        self.deactivated.discard(user_id)

    def archive(self, channel: str) -> None:
        """Archive a channel: posts are refused with ``is_archived``, edits with
        ``is_inactive``, and conversations.info says ``is_archived``."""
        if channel.startswith("D"):
            raise ValueError(f"{channel}: Slack archives channels, not DMs")
        self.archived.add(channel)

    def unarchive(self, channel: str) -> None:
        """Bring an archived channel back; the bot's membership is as it was."""
        self.archived.discard(channel)

    def revoke(self, reason: str = "token_revoked", token: str | None = None) -> None:
        """Refuse every call with ``token`` (None: every bot token) with ``reason``."""
        if reason not in TOKEN_REFUSALS:
            raise ValueError(f"reason must be one of {TOKEN_REFUSALS}, not {reason!r}")
        self.revoked[token] = reason

    def restore(self, token: str | None = None) -> None:
        """Honour ``token`` again (None: every token, each one revoked included)."""
        if token is None:
            self.revoked.clear()
        else:
            self.revoked.pop(token, None)

    # ------------------------------------------------------------ the Web API

    def answer(self, method: str, args: Mapping[str, Any], token: str | None) -> dict[str, Any]:
        """Slack's answer to ``method``: its result, or the refusal Slack would give."""
        if method not in self._methods:
            raise Refusal("unknown_method", req_method=method)
        if not token:
            raise Refusal("not_authed")
        if not token.startswith("xapp-"):
            # Revoked, uninstalled or its user deactivated: one refusal for every method.
            reason = self.revoked.get(token) or self.revoked.get(None)
            if reason is not None:
                raise Refusal(reason)
        if token.startswith("xapp-") != (method == "apps.connections.open"):
            raise Refusal("not_allowed_token_type")
        scope, handler = self._methods[method]
        needed = scope(args) if callable(scope) else scope
        if needed is not None and needed not in self.scopes:
            raise Refusal("missing_scope", needed=needed, provided=self.granted())
        return handler(args)

    def granted(self) -> str:
        """The ``x-oauth-scopes`` header: the bot token's scopes, comma-separated."""
        return ",".join(sorted(self.scopes))

    def accepted(self, method: str) -> str:
        """The ``x-accepted-oauth-scopes`` header: the scopes ``method`` accepts, if any."""
        scope = (self._methods.get(method) or (None,))[0]
        if callable(scope):
            return _CONVERSATION_READ_SCOPES
        return scope or ""

    def _auth_test(self, _args: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://exalate-test.slack.com/",
            "team": "Exalate Test",
            "user": "exalate",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B1",
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, _args: Mapping[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.socket_mode_url()}

    def _chat_post_message(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._postable(args)
        _check_message(args)
        ts = self._next_ts()
        message = {"type": "message", "user": self.bot_user_id, "bot_id": "B1", **args, "ts": ts}
        message.pop("channel", None)
        self.messages[(channel, ts)] = message
        if self._dms.get(channel) in self.deactivated:
            self.unread[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_post_ephemeral(self, args: Mapping[str, Any]) -> dict[str, Any]:
        self._postable(args)
        _check_message(args)
        if str(args.get("user", "")) not in self.users:
            raise Refusal("user_not_found")
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        if channel in self.archived and not self._hidden(channel):
            # chat.update documents is_inactive ("within a frozen, archived or deleted
            # channel"), not is_archived, which is chat.postMessage's.
            raise Refusal("is_inactive")
        if (channel, ts) not in self.messages:
            raise Refusal("message_not_found")
        _check_message(args)
        update = {k: v for k, v in args.items() if k not in {"channel", "ts"}}
        self.messages[(channel, ts)] |= update
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": args.get("text", ""),
            "message": update,
        }

    def _conversations_open(self, args: Mapping[str, Any]) -> dict[str, Any]:
        if "channel" in args:
            return {"ok": True, "channel": {"id": args["channel"]}}
        users = [u for u in str(args.get("users", "")).split(",") if u]
        if not users:
            raise Refusal("users_list_not_supplied")
        for user in users:
            if user not in self.users:
                raise Refusal("user_not_found")
            if user in self.deactivated:
                raise Refusal("user_disabled")
        # One user is a DM ("D..."); several make a group DM ("G...").
        channel = f"D{users[0]}" if len(users) == 1 else "G" + "".join(users)
        self._dms[channel] = users[0]
        return {"ok": True, "channel": {"id": channel}}

    def _conversation_read_scope(self, args: Mapping[str, Any]) -> str:
        """The scope conversations.info needs for this channel's kind."""
        channel = str(args.get("channel", ""))
        if channel.startswith("D"):
            return "im:read"
        return "groups:read" if self._is_private(channel) else "channels:read"

    def _conversations_info(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if self._hidden(channel):
            raise Refusal("channel_not_found")
        if channel.startswith("D"):
            info = {"id": channel, "is_im": True, "user": self._dms[channel], "is_open": True}
            return {"ok": True, "channel": info}
        info = {
            "id": channel,
            "is_channel": True,
            "is_im": False,
            "is_private": self._is_private(channel),
            "is_archived": channel in self.archived,
            "is_member": channel in self.member_of,
        }
        return {"ok": True, "channel": info}

    def _users_info(self, args: Mapping[str, Any]) -> dict[str, Any]:
        user = str(args.get("user", ""))
        if user not in self.users:
            raise Refusal("user_not_found")
        name = "exalate" if user == self.bot_user_id else user.lower()
        profile = {"real_name": name, "display_name": name}
        return {
            "ok": True,
            "user": {
                "id": user,
                "team_id": self.team_id,
                "name": name,
                "real_name": name,
                "deleted": user in self.deactivated,
                "is_bot": user == self.bot_user_id,
                "is_app_user": False,
                "profile": profile,
            },
        }

    def _usergroups_users_list(self, args: Mapping[str, Any]) -> dict[str, Any]:
        users = self.usergroups.get(str(args.get("usergroup")))
        if users is None:
            raise Refusal("no_such_subteam")
        return {"ok": True, "users": list(users)}

    def _views_open(self, args: Mapping[str, Any]) -> dict[str, Any]:
        self._exchange_trigger(str(args.get("trigger_id", "")))
        return self._shown_view(args, "modal", None)

    def _views_update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not (view_id or external_id):
            raise Refusal("invalid_arguments", response_metadata={"messages": _MISSING_VIEW_ID})
        if not view_id:
            view_id = self._view_ids.get(f"external:{external_id}")
            if view_id is None:
                raise Refusal("not_found")
        # A view id the emulator never handed out (a test's payload may carry one) is
        # taken as Slack's: its first update sets its hash.
        self._check_hash(str(view_id), args)
        return self._shown_view(args, "modal", str(view_id))

    def _views_publish(self, args: Mapping[str, Any]) -> dict[str, Any]:
        if not args.get("user_id"):
            raise Refusal("invalid_arguments", response_metadata={"messages": _MISSING_USER_ID})
        user = str(args["user_id"])
        if user not in self.users:
            raise Refusal("user_not_found")
        home = self._view_ids.get(f"home:{user}")
        if home is not None:
            self._check_hash(home, args)
        return self._shown_view(args, "home", home, key=f"home:{user}")

    # ------------------------------------------------------------ rules

    def _postable(self, args: Mapping[str, Any]) -> str:
        """The channel named in ``args``, if the bot may post there."""
        channel = str(args.get("channel", ""))
        if channel in self._dms:
            # Even with its person deactivated: Slack takes the post (the DM's history
            # lives on; python-slack-sdk#1156), and nobody reads it (`unread`).
            return channel
        if self._hidden(channel):
            # A public channel's existence is no secret; a private one's or a DM's is.
            raise Refusal("channel_not_found")
        if channel in self.archived:
            raise Refusal("is_archived")
        if channel in self.member_of:
            return channel
        raise Refusal("not_in_channel")

    def _is_private(self, channel: str) -> bool:
        return channel in self.private or channel.startswith("G")

    def _hidden(self, channel: str) -> bool:
        """Whether the bot cannot know ``channel`` exists: a private channel it is not
        in, or a DM it did not open."""
        if channel.startswith("D"):
            return channel not in self._dms
        return self._is_private(channel) and channel not in self.member_of

    def _check_hash(self, view_id: str, args: Mapping[str, Any]) -> None:
        """A ``hash`` given must be the view's current one: an older one means the view
        changed since the caller read it."""
        given, current = args.get("hash"), self._views.get(view_id)
        if given and current is not None and given != current:
            raise Refusal("hash_conflict")

    def _exchange_trigger(self, trigger: str) -> None:
        issued = self._triggers.get(trigger)
        if issued is None:
            raise Refusal("invalid_trigger_id")
        if trigger in self._spent_triggers:
            raise Refusal("exchanged_trigger_id")
        if self.clock() - issued > TRIGGER_LIFETIME:
            raise Refusal("expired_trigger_id")
        self._spent_triggers.add(trigger)

    def _shown_view(
        self, args: Mapping[str, Any], kind: str, view_id: str | None, *, key: str | None = None
    ) -> dict[str, Any]:
        """Check ``view`` and show it as ``view_id`` (None: a new view), with a new hash."""
        view = args.get("view")
        problems = view_problems(view, kind=kind)
        if problems:
            raise Refusal("invalid_arguments", response_metadata={"messages": problems})
        assert isinstance(view, dict)
        n = self._next()
        view_id = view_id or f"V{n}"
        view_hash = f"{_TS_SECOND + n}.{n:08x}"  # Slack's look: "156772938.1827394"
        self._views[view_id] = view_hash
        if view.get("external_id"):
            self._view_ids[f"external:{view['external_id']}"] = view_id
        if key is not None:
            self._view_ids[key] = view_id
        return {
            "ok": True,
            "view": {**view, "id": view_id, "hash": view_hash, "team_id": self.team_id},
        }

    def _next(self) -> int:
        return next(self._counter)

    def _next_ts(self) -> str:
        n = self._next() * 100
        return f"{_TS_SECOND + n // 1_000_000}.{n % 1_000_000:06d}"


_MISSING_VIEW_ID = ["[ERROR] missing required field: view_id or external_id"]
_MISSING_USER_ID = ["[ERROR] missing required field: user_id"]


def _check_message(args: Mapping[str, Any]) -> None:
    """A message needs text or blocks, and its blocks must pass Block Kit's rules."""
    blocks: Sequence[Any] | None = args.get("blocks")
    if not args.get("text") and not blocks and not args.get("attachments"):
        raise Refusal("no_text")
    if blocks is not None:
        problems = block_problems(blocks)
        if problems:
            raise Refusal("invalid_blocks", response_metadata={"messages": problems})
