"""A Slack emulator, as strict as Slack: the Web API and Socket Mode on loopback.

Tests, the demo and ``--simulated-jira`` talk to it instead of Slack. It refuses what
Slack refuses, with Slack's own error strings (`workspace`), checks Block Kit as Slack
does (`block_kit`) and serves it all over real HTTP and WebSocket (`server`).
"""

from bot.sandbox.slack_emulator.block_kit import ack_problems
from bot.sandbox.slack_emulator.server import ACK_DEADLINE, Call, FakeSlack
from bot.sandbox.slack_emulator.workspace import MANIFEST_SCOPES

__all__ = [
    "ACK_DEADLINE",
    "MANIFEST_SCOPES",
    "Call",
    "FakeSlack",
    "ack_problems",
]
