"""Property tests (hypothesis): input handling that never breaks, and races that never
reach an invalid state or run a side effect twice."""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import re
import uuid
from dataclasses import replace
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.approvals.errors import ApprovalError
from bot.approvals.model import Status, can_transition
from bot.approvals.routes import Routes, Rule
from bot.approvals.rules import CONNECTION_NAME_MAX, SHORT_NAME_MAX, Draft, check_draft
from bot.approvers import ApproverPolicy
from bot.exalate import BearerToken, ExalateClient
from bot.metrics import Metrics
from bot.sandbox.exalate_simulator import Simulator
from bot.service import OutboxSender, Site, Sites, build_services, utc_now
from bot.site_config import SiteConfig
from bot.vault import Vault
from handlers.blocks import escape
from handlers.payloads import UsageError, parse_command, request_ref
from storage import RequestRepository, make_engine, make_sessionmaker, upgrade_schema
from tests.fakes.notifier import RecordingNotifier

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
ANY_TEXT = st.text(max_size=1200)


class TestInputProperties:
    @given(ANY_TEXT, ANY_TEXT, ANY_TEXT, ANY_TEXT, ANY_TEXT)
    def test_validation_never_breaks_and_admits_only_valid_fields(
        self, local: str, remote: str, name: str, description: str, project: str
    ) -> None:
        """Any text is either refused per field or yields fields that obey every rule."""
        fields, errors = check_draft(Draft(local, remote, name, description, project))
        if fields is None:
            assert errors
            return
        assert not errors
        for value, limit in (
            (fields.local_short_name, SHORT_NAME_MAX),
            (fields.remote_short_name, SHORT_NAME_MAX),
            (fields.connection_name, CONNECTION_NAME_MAX),
        ):
            assert IDENTIFIER.fullmatch(value)
            assert len(value) <= limit
        assert "\x00" not in fields.description
        assert len(fields.description) <= 1000

    @given(ANY_TEXT, st.integers(min_value=2, max_value=3000))
    def test_escaped_text_is_inert_and_bounded(self, text: str, limit: int) -> None:
        """No raw < or >, every & starts an entity, within the limit, and lossless if short."""
        out = escape(text, limit)
        assert "<" not in out
        assert ">" not in out
        assert len(out) <= limit
        assert not re.search(r"&(?!amp;|lt;|gt;)", out)
        if not out.endswith("…"):
            assert html.unescape(out) == text

    @given(ANY_TEXT)
    def test_command_text_parses_or_says_why(self, text: str) -> None:
        """Slash-command text of any content gives a command line or a UsageError."""
        try:
            line = parse_command(text)
        except UsageError:
            return  # answered with the usage, which is the point
        assert line.sub_command == line.sub_command.lower()

    @given(st.text(alphabet=st.sampled_from(" \t\r\n\xa0\u2003=ab-Z1."), max_size=40))
    def test_plain_command_text_splits_as_shlex_does(self, text: str) -> None:
        """Text without quotes skips shlex. A quoted empty word added at its end sends
        the same text through shlex, which must read the rest of it the same way."""
        assume(text.strip(" \t\r\n"))
        plain = parse_command(text)
        assert parse_command(text + ' ""') == replace(plain, words=(*plain.words, ""))

    @given(ANY_TEXT)
    def test_button_values_parse_or_are_refused(self, value: str) -> None:
        """A forged button value never raises; a parsed one is a plain id (+fingerprint)."""
        ref = request_ref(value)
        if ref is not None:
            assert ref.request_id >= 0
            assert ref.seen is None or len(ref.seen) == 16


ACTORS = ("U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY")
Operation = tuple[str, str]
OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["approve", "reject", "retry", "cancel", "resend"]), st.sampled_from(ACTORS)
    ),
    min_size=1,
    max_size=8,
)


class NoGroups:
    async def members(self, group_id: str) -> frozenset[str]:
        return frozenset()


async def _race(operations: list[Operation], failures: int, database: Path) -> None:
    """Run every operation at once against one request; check what can never happen."""
    simulator = Simulator(token="t")
    if failures:
        simulator.fail("create", 500, times=failures)
    engine = make_engine(f"sqlite+aiosqlite:///{database}")  # a file: real, separate connections
    await upgrade_schema(engine)
    async with (
        TestServer(simulator.app, host="127.0.0.1") as server,
        aiohttp.ClientSession() as http,
    ):
        url = str(server.make_url(""))
        exalate = ExalateClient(http, url, BearerToken("t"), read_retries=0)
        notifier = RecordingNotifier()
        repository = RequestRepository(make_sessionmaker(engine))
        site = Site.of(SiteConfig("default", url, BearerToken("t")), exalate, list_ttl=60)
        vault = Vault(Fernet.generate_key())
        services = build_services(
            repository=repository,
            queue=repository.outbox,
            sites=Sites([site]),
            vault=vault,
            policy=ApproverPolicy(Routes((), Rule(("U0BOB", "U0CAROL"))), NoGroups()),
            notifier=notifier,
            me="replica-a",
        )
        service = services.requests
        # A second replica's sender, on its own store object: every message is sent once.
        other = OutboxSender(
            RequestRepository(make_sessionmaker(engine)).outbox,
            RequestRepository(make_sessionmaker(engine)),
            notifier,
            vault,
            Metrics(),
            utc_now,
            me="replica-b",
        )
        draft = Draft("acme", "partner", "", "", "SUP")
        submission = await service.submit(draft, "U0ALICE", check_within=5)
        assert submission.request is not None
        request_id = submission.request.id

        async def run(operation: Operation) -> None:
            kind, actor = operation
            calls = {
                "approve": lambda: service.approve(request_id, actor),
                "reject": lambda: service.reject(request_id, actor, "no"),
                "retry": lambda: service.retry(request_id, actor),
                "cancel": lambda: service.cancel(request_id, actor),
                "resend": lambda: services.codes.resend_code(request_id, actor),
            }
            with contextlib.suppress(ApprovalError):  # what a losing or unauthorised click gets
                await calls[kind]()

        await asyncio.gather(*(run(operation) for operation in operations))
        await asyncio.gather(services.outbox.send_due(), other.send_due())
        final = await repository.get(request_id)
        history = await repository.history(request_id)
    await engine.dispose()

    assert final is not None
    transitions = [(e.from_status, e.to_status) for e in history if e.from_status != e.to_status]
    for source, target in transitions[1:]:
        assert source is not None
        assert can_transition(source, target), (source, target)
    for (_, reached), (left, _) in itertools.pairwise(transitions):
        assert reached == left  # one unbroken chain of states
    decisions = [t for t in transitions if t[0] is Status.PENDING_APPROVAL]
    assert len(decisions) <= 1  # one winner
    attempts = sum(1 for _, target in transitions if target is Status.INITIATING)
    assert len(simulator.create_calls) <= attempts  # no create without a won transition
    assert len(simulator.connections) <= 1  # never a second connection
    assert len(notifier.codes) <= 1  # the code is delivered once, or not at all
    if final.status is Status.INVITED:
        assert final.has_invitation_code
        code = next(iter(simulator.connections.values()))["invitationCode"]
        assert notifier.codes == [(final.id, code)]
    if final.decided_by is not None:
        assert final.decided_by in ("U0BOB", "U0CAROL")  # never the requester or an outsider


class TestConcurrencyProperties:
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(operations=OPERATIONS, failures=st.integers(min_value=0, max_value=2))
    def test_random_interleavings_stay_valid(
        self, operations: list[Operation], failures: int, tmp_path: Path
    ) -> None:
        """Any mix of concurrent clicks, with Exalate failing 0-2 times, keeps every rule."""
        asyncio.run(_race(operations, failures, tmp_path / f"race-{uuid.uuid4().hex}.db"))
