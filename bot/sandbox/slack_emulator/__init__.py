"""A Slack emulator, as strict as Slack: the Web API and Socket Mode on loopback.

Tests, the demo and ``--simulated-jira`` talk to it instead of Slack. It refuses what
Slack refuses, with Slack's own error strings (`workspace`), checks Block Kit as Slack
does (`block_kit`) and serves it all over real HTTP and WebSocket (`server`).
"""

from bot.sandbox.slack_emulator.block_kit import ack_problems
from bot.sandbox.slack_emulator.rate_limits import SLACK_LIMITS
from bot.sandbox.slack_emulator.server import ACK_DEADLINE, Call, FakeSlack, retry_headers
from bot.sandbox.slack_emulator.workspace import (
    ADDED_SCOPES,
    DEFAULT_SCOPES,
    MANIFEST_SCOPES,
    TOKEN_REFUSALS,
)

__all__ = [
    "ACK_DEADLINE",
    "ADDED_SCOPES",
    "DEFAULT_SCOPES",
    "MANIFEST_SCOPES",
    "SLACK_LIMITS",
    "TOKEN_REFUSALS",
    "Call",
    "FakeSlack",
    "ack_problems",
    "retry_headers",
]
