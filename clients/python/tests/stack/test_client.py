"""The client against the real stacks: read-your-writes, safe retries, credentials, every
kind of error the service answers, erasure, history, traces, the sync facade and the
shared tenant."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from engram_memory import (
    EntityRef,
    FateStatus,
    ForbiddenError,
    GoneError,
    InvalidRequestError,
    MemoryClient,
    NotFoundError,
    RejectedError,
    SyncMemoryClient,
    ToolCallStatus,
    UnauthenticatedError,
    UnavailableError,
    UserRequiredError,
    WriteReceipt,
)
from tests.stack.conftest import env, forget_later, settings

NewUser = Callable[[str], str]


class Spy(httpx.AsyncBaseTransport):
    """Forwards to the network and keeps every request; ``lose`` drops the answers of the
    next n write requests after the server handled them (a lost response)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []
        self.lose = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        resp = await self.inner.handle_async_request(request)
        if self.lose and request.method != "GET":
            self.lose -= 1
            await resp.aread()
            await resp.aclose()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return resp

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_read_your_writes_sends_the_highest_token_of_the_user(new_user: NewUser) -> None:
    sara, liam = new_user("sara"), new_user("liam")
    spy = Spy()
    async with MemoryClient(settings(http_transport=spy)) as c:
        receipts = []
        for i in range(5):
            p = await c.long_term.add_preference("c", f"p{i}", user_identifier=sara)
            assert p.receipt is not None
            receipts.append(p.receipt)
            # Each read right after its write sees it: the client waits for its own token.
            got = await c.long_term.get_preferences_for(sara)
            assert sorted(x.preference for x in got) == [f"p{j}" for j in range(i + 1)]
        liam_msg = await c.short_term.add_message("s", "user", "hi", user_identifier=liam)
        assert liam_msg.receipt is not None
        assert c.consistency_token(sara) == max(r.sequence for r in receipts)
        assert c.consistency_token(liam) == liam_msg.receipt.sequence
        await c.long_term.get_preferences_for(sara)
        last = spy.requests[-1]
        assert last.url.params["consistency"] == str(c.consistency_token(sara))
        # A user this client never wrote for is read without a token.
        await c.long_term.get_preferences_for(new_user("nobody"))
        assert "consistency" not in spy.requests[-1].url.params
    async with MemoryClient(settings(http_transport=Spy(), read_your_writes=False)) as c:
        await c.long_term.add_preference("c", "x", user_identifier=sara)
        await c.long_term.get_preferences_for(sara)


async def test_a_lost_answer_is_retried_with_the_same_ids_and_stored_once(
    new_user: NewUser,
) -> None:
    sara = new_user("sara")
    spy = Spy()
    async with MemoryClient(settings(http_transport=spy, retry_backoff_seconds=0.01)) as c:
        spy.lose = 1
        p = await c.long_term.add_preference("c", "once", user_identifier=sara)
        writes = [r for r in spy.requests if r.method == "POST"]
        assert len(writes) == 2 and writes[0].content == writes[1].content
        assert p.receipt is not None and p.receipt.duplicate  # the log had it already
        prefs = await c.long_term.get_preferences_for(sara)
        assert [(x.id, x.preference) for x in prefs] == [(p.id, "once")]
        fate = await c.wait_applied(p.receipt)
        assert fate.status is FateStatus.APPLIED and fate.sequence == p.receipt.sequence


async def test_unreachable_service_is_unavailable_after_retries() -> None:
    async with MemoryClient(settings()) as ok:
        assert ok.is_connected
    # A port nothing listens on: connect fails fast with UnavailableError.
    s = settings(ingestor_url="http://127.0.0.1:9", max_retries=1, retry_backoff_seconds=0.01)
    with pytest.raises(UnavailableError):
        async with MemoryClient(s):
            pass
    s = settings(
        ingestor_url="http://127.0.0.1:9",
        validate_on_connect=False,
        max_retries=2,
        retry_backoff_seconds=0.01,
    )
    async with MemoryClient(s) as c:
        with pytest.raises(UnavailableError) as e:
            await c.users.upsert_user(identifier="x@y.z")
        assert e.value.status is None and e.value.op == "upsert_user"


async def test_credentials(new_user: NewUser) -> None:
    sara = new_user("sara")
    # An API key for every user with read and write.
    async with MemoryClient(settings(credential="api_key")) as c:
        p = await c.long_term.add_preference("c", "by key", user_identifier=sara)
        assert [x.id for x in await c.long_term.get_preferences_for(sara)] == [p.id]
        with pytest.raises(ForbiddenError) as e:
            await c.users.erase_user(sara)  # needs admin
        assert e.value.status == 403
    # A read-only key reads and may not write.
    async with MemoryClient(settings(credential="readonly")) as c:
        assert [x.id for x in await c.long_term.get_preferences_for(sara)] == [p.id]
        with pytest.raises(ForbiddenError):
            await c.long_term.add_preference("c", "x", user_identifier=sara)
    # A JWT for one user: that user only.
    agent = env("ENGRAM_TEST_AGENT_USER")  # the Go test cleans it up
    async with MemoryClient(settings(credential="agent")) as c:
        t = await c.reasoning.start_trace("s", "task", user_identifier=agent)
        assert (await c.reasoning.get_trace(t.id)) is not None
        with pytest.raises(ForbiddenError):
            await c.long_term.add_preference("c", "x", user_identifier=sara)
        with pytest.raises(ForbiddenError):
            await c.long_term.get_preferences_for(sara)
    # A rotating credential: the provider is asked on every request.
    asked = []

    def provider() -> str:
        asked.append(1)
        return env("ENGRAM_TEST_API_KEY")

    s = settings(credential="none", token_provider=provider)
    async with MemoryClient(s) as c:
        await c.long_term.get_preferences_for(sara)
        assert asked
    # No credential, or a bad one: 401.
    async with MemoryClient(settings(credential="none")) as c:
        with pytest.raises(UnauthenticatedError):
            await c.long_term.get_preferences_for(sara)
    async with MemoryClient(settings(credential="none", api_key="engram_not-a-key")) as c:
        with pytest.raises(UnauthenticatedError) as u:
            await c.users.upsert_user(identifier=sara)
        assert u.value.status == 401


async def test_invalid_input_names_the_field(client: MemoryClient, new_user: NewUser) -> None:
    sara = new_user("sara")
    cases = [
        (client.long_term.add_preference("", "x", user_identifier=sara), "category"),
        (client.long_term.add_preference("c", "x", user_identifier=" " + sara), "user_identifier"),
        (
            client.short_term.add_message("s", "user", "x" * 262_145, user_identifier=sara),
            "content",
        ),
        (
            client.long_term.get_preferences_for(sara, applies_to=EntityRef(name="n" * 257)),
            "applies_to_name",
        ),
    ]
    for call, field in cases:
        with pytest.raises(InvalidRequestError) as e:
            await call
        assert e.value.field == field, e.value
        assert isinstance(e.value, ValueError) and e.value.status == 400
    # The client's guardrail is off, the server's is on: still a ValueError naming the field.
    async with MemoryClient(settings(multi_tenant=False)) as c:
        with pytest.raises(InvalidRequestError) as e:
            await c.long_term.add_preference("c", "x")
        assert e.value.field == "user_identifier" and e.value.status == 400
    with pytest.raises(UserRequiredError):
        await client.long_term.add_preference("c", "x")
    with pytest.raises(UserRequiredError):
        await client.long_term.get_preferences_for(None)


async def test_rejected_by_the_projector(client: MemoryClient, new_user: NewUser) -> None:
    sara, liam = new_user("sara"), new_user("liam")
    a = await client.long_term.add_preference("c", "a", user_identifier=sara)
    b = await client.long_term.add_preference("c", "b", user_identifier=sara)
    c = await client.long_term.add_preference("c", "c", user_identifier=sara)
    first = await client.long_term.supersede_preference(a.id, b.id)
    assert first.user_identifier == sara  # the client knew whose preference it was
    assert (await client.wait_applied(first)).status is FateStatus.APPLIED
    # A preference has at most one successor.
    second = await client.long_term.supersede_preference(a.id, c.id)
    with pytest.raises(RejectedError) as e:
        await client.wait_applied(second)
    assert e.value.reason == "conflict" and e.value.kind == "preference_superseded"
    fate = await client.fate(second)
    assert fate.status is FateStatus.DEAD_LETTERED and fate.reason == "conflict"
    # Another user's preference is not Liam's to supersede.
    foreign = await client.long_term.supersede_preference(c.id, b.id, user_identifier=liam)
    with pytest.raises(RejectedError) as e:
        await client.wait_applied(foreign)
    assert e.value.reason in ("foreign_reference", "missing_reference")
    # A fate the log does not hold.
    ghost = WriteReceipt(event_id=str(uuid.uuid4()), user_identifier=sara, sequence=first.sequence)
    with pytest.raises(NotFoundError) as nf:
        await client.fate(ghost)
    assert nf.value.status == 404 and isinstance(nf.value, LookupError)


async def test_erasure_then_gone_then_recreated(client: MemoryClient, new_user: NewUser) -> None:
    sara = new_user("sara")
    await client.users.upsert_user(identifier=sara, attributes={"role": "manager"})
    await client.short_term.add_message("s", "user", "hello", user_identifier=sara)
    p = await client.long_term.add_preference("c", "x", user_identifier=sara)
    t = await client.reasoning.start_trace("s", "task", user_identifier=sara)
    erased = await client.users.erase_user(sara, reason="the user asked")
    assert (await client.wait_applied(erased)).status is FateStatus.APPLIED
    assert await client.users.get_user(sara) is None
    assert await client.long_term.get_preferences_for(sara) == []
    assert await client.long_term.get_preference_history(sara) == []
    assert await client.short_term.list_conversations(user_identifier=sara) == []
    assert (await client.short_term.get_conversation("s", user_identifier=sara)).messages == []
    assert await client.reasoning.get_trace(t.id) is None
    assert p.receipt is not None
    with pytest.raises(NotFoundError):
        await client.fate(p.receipt)  # the erasure purged the user's events
    with pytest.raises(GoneError) as g:
        await client.long_term.add_preference("c", "after", user_identifier=sara)
    assert g.value.status == 410
    again = await client.users.recreate_user(sara)
    await client.wait_applied(again)
    q = await client.long_term.add_preference("c", "new life", user_identifier=sara)
    assert [x.id for x in await client.long_term.get_preferences_for(sara)] == [q.id]


async def test_conversations_and_users(client: MemoryClient, new_user: NewUser) -> None:
    sara = new_user("sara")
    u = await client.users.upsert_user(identifier=sara, attributes={"role": "manager"})
    assert u.attributes == {"role": "manager"}
    again = await client.users.upsert_user(identifier=sara)  # keeps the attributes
    assert again.id == u.id and again.attributes == {}
    stored = await client.users.get_user(sara)
    assert stored is not None and stored.attributes == {"role": "manager"}
    cleared = await client.users.upsert_user(identifier=sara, clear_attributes=True)
    assert cleared.receipt is not None
    stored = await client.users.get_user(sara)
    assert stored is not None and stored.attributes == {}
    t0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    m1 = await client.short_term.add_message(
        "s-1", "user", "first", user_identifier=sara, timestamp=t0, title="Staffing"
    )
    m2 = await client.short_term.add_message(
        "s-1",
        "assistant",
        "second",
        user_identifier=sara,
        metadata={"k": "v"},
        timestamp=t0.replace(minute=1),
    )
    await client.short_term.add_message("s-2", "user", "other", user_identifier=sara)
    assert m1.conversation_id == m2.conversation_id
    conv = await client.short_term.get_conversation("s-1", user_identifier=sara)
    assert conv.id == m1.conversation_id and conv.title == "Staffing"
    assert [(m.id, m.role.value, m.content) for m in conv.messages] == [
        (m1.id, "user", "first"),
        (m2.id, "assistant", "second"),
    ]
    assert conv.messages[0].created_at == t0 and conv.messages[1].metadata == {"k": "v"}
    assert [
        m.content
        for m in (
            await client.short_term.get_conversation("s-1", user_identifier=sara, limit=1)
        ).messages
    ] == ["first"]
    assert [
        m.content
        for m in (
            await client.short_term.get_conversation(
                "s-1", user_identifier=sara, since=t0.replace(minute=1)
            )
        ).messages
    ] == ["second"]
    convs = await client.short_term.list_conversations(user_identifier=sara)
    assert sorted(c.session_id for c in convs) == ["s-1", "s-2"]
    assert {c.session_id: c.message_count for c in convs} == {"s-1": 2, "s-2": 1}
    listed = await client.users.list_users(limit=1000)
    assert sara in {x.identifier for x in listed}


async def test_reasoning(client: MemoryClient, new_user: NewUser) -> None:
    sara = new_user("sara")
    tool = f"py-tool-{uuid.uuid4().hex[:8]}"
    forget_later("tool", tool)
    t = await client.reasoning.start_trace(
        "s", "staff a team", user_identifier=sara, metadata={"agent": "a1"}
    )
    s1 = await client.reasoning.add_step(t.id, thought="look", action="search")
    s2 = await client.reasoning.add_step(t.id, observation="found 3")
    assert (s1.step_number, s2.step_number) == (1, 2)
    ok = await client.reasoning.record_tool_call(
        s1.id, tool, {"industry": "healthcare"}, result={"n": 3}, duration_ms=120
    )
    bad = await client.reasoning.record_tool_call(
        s1.id, tool, {"industry": "x"}, status=ToolCallStatus.FAILURE, error="boom"
    )
    done = await client.reasoning.complete_trace(t.id, outcome="found three", success=True)
    assert (done.session_id, done.task, done.success) == ("s", "staff a team", True)
    got = await client.reasoning.get_trace(t.id)
    assert got is not None
    assert (got.outcome, got.success, got.metadata) == ("found three", True, {"agent": "a1"})
    assert got.completed_at is not None
    assert [(s.id, s.step_number, s.thought, s.observation) for s in got.steps] == [
        (s1.id, 1, "look", None),
        (s2.id, 2, None, "found 3"),
    ]
    calls = got.steps[0].tool_calls
    assert [(c.id, c.status, c.arguments, c.result, c.error) for c in calls] == [
        (ok.id, ToolCallStatus.SUCCESS, {"industry": "healthcare"}, {"n": 3}, None),
        (bad.id, ToolCallStatus.FAILURE, {"industry": "x"}, None, "boom"),
    ]
    assert [x.id for x in await client.reasoning.list_traces(user_identifier=sara)] == [t.id]
    assert [x.id for x in await client.reasoning.get_session_traces("s", user_identifier=sara)] == [
        t.id
    ]
    assert await client.reasoning.list_traces(session_id="other", user_identifier=sara) == []
    (stats,) = await client.reasoning.get_tool_stats(tool, user_identifier=sara)
    assert (stats.name, stats.total_calls, stats.successful_calls, stats.failed_calls) == (
        tool,
        2,
        1,
        1,
    )
    assert stats.success_rate == 0.5
    (glob,) = await client.reasoning.get_tool_stats(tool)  # the global counters (admin)
    assert glob.total_calls == 2
    # Another user's reads never show Sara's trace.
    other = new_user("liam")
    assert await client.reasoning.get_trace(t.id, user_identifier=other) is None
    assert await client.reasoning.get_tool_stats(tool, user_identifier=other) == []


async def test_deletions(client: MemoryClient, new_user: NewUser) -> None:
    sara, liam = new_user("sara"), new_user("liam")
    msgs = [
        await client.short_term.add_message("s-del", "user", text, user_identifier=sara)
        for text in ("first", "second", "third")
    ]
    gone = await client.short_term.delete_message(msgs[1].id)  # the owner is remembered
    assert gone.user_identifier == sara
    assert (await client.wait_applied(gone)).status is FateStatus.APPLIED
    conv = await client.short_term.get_conversation("s-del", user_identifier=sara)
    assert [m.content for m in conv.messages] == ["first", "third"]
    nothing = await client.short_term.delete_message(uuid.uuid4(), user_identifier=sara)
    assert (await client.wait_applied(nothing)).status is FateStatus.APPLIED
    foreign = await client.short_term.delete_message(msgs[0].id, user_identifier=liam)
    with pytest.raises(RejectedError):
        await client.wait_applied(foreign)
    cleared = await client.short_term.clear_session("s-del", user_identifier=sara)
    assert (await client.wait_applied(cleared)).status is FateStatus.APPLIED
    convs = await client.short_term.list_conversations(user_identifier=sara)
    assert "s-del" not in {c.session_id for c in convs}
    with pytest.raises(UserRequiredError):
        await client.short_term.clear_session("s-del")

    healthcare = EntityRef(name="Healthcare", type="Industry")
    await client.long_term.add_preference(
        "consultants", "Senior", user_identifier=sara, applies_to=[healthcare]
    )
    [p] = await client.long_term.get_preferences_for(sara, applies_to=healthcare)
    entity_id = p.applies_to[0].id
    assert entity_id is not None
    deleted = await client.long_term.delete_entity(entity_id, user_identifier=sara)
    assert (await client.wait_applied(deleted)).status is FateStatus.APPLIED
    assert await client.long_term.get_preferences_for(sara, applies_to=healthcare) == []
    assert [x.preference for x in await client.long_term.get_preferences_for(sara)] == ["Senior"]
    with SyncMemoryClient(settings()) as c:
        r = c.short_term.delete_message(uuid.uuid4(), user_identifier=sara)
        assert c.wait_applied(r).status is FateStatus.APPLIED


def test_the_sync_facade(new_user: NewUser) -> None:
    sara = new_user("sara")
    with SyncMemoryClient(settings()) as c:
        old = c.long_term.add_preference(
            "consultants",
            "Junior",
            user_identifier=sara,
            applies_to=[EntityRef(name="Healthcare", type="Industry")],
        )
        new = c.long_term.add_preference("consultants", "Senior", user_identifier=sara)
        r = c.long_term.supersede_preference(old.id, new.id)
        assert c.wait_applied(r).status is FateStatus.APPLIED
        assert [p.preference for p in c.long_term.get_preferences_for(sara)] == ["Senior"]
        scoped = c.long_term.get_preferences_for(
            sara, applies_to=EntityRef(name="Healthcare", type="Industry"), active_only=False
        )
        assert [p.id for p in scoped] == [old.id]
        with pytest.raises(ValueError, match="user_identifier"):
            c.short_term.add_message("s", "user", "x")
        t = c.reasoning.start_trace("s", "task", user_identifier=sara)
        c.reasoning.complete_trace(t.id, success=False)
        got = c.reasoning.get_trace(t.id)
        assert got is not None and got.success is False


async def test_the_shared_tenant_with_multi_tenant_mode_off() -> None:
    token = uuid.uuid4().hex[:10]
    async with MemoryClient(settings(open_stack=True, multi_tenant=False)) as c:
        p = await c.long_term.add_preference("shared", f"no user {token}")
        forget_later("id", str(p.id))
        assert p.receipt is not None and p.receipt.user_identifier is None
        m = await c.short_term.add_message(f"s-{token}", "user", "shared hello")
        forget_later("id", str(m.id))
        forget_later("id", str(m.conversation_id))
        prefs = await c.long_term.get_preferences_for(None)
        assert p.id in {x.id for x in prefs}
        conv = await c.short_term.get_conversation(f"s-{token}")
        assert [x.id for x in conv.messages] == [m.id]
        assert (await c.wait_applied(p.receipt)).status is FateStatus.APPLIED
        t = await c.reasoning.start_trace(f"s-{token}", "shared task")
        forget_later("id", str(t.id))
        got = await c.reasoning.get_trace(t.id)
        assert got is not None and got.task == "shared task"
    # On the production-like stack the shared tenant is not readable.
    async with MemoryClient(settings(multi_tenant=False)) as c:
        with pytest.raises(NotFoundError):
            await c.long_term.get_preferences_for(None)


async def test_concurrent_writes_of_many_users(client: MemoryClient, new_user: NewUser) -> None:
    users = [new_user(f"u{i}") for i in range(8)]

    async def one(u: str) -> None:
        for i in range(3):
            await client.long_term.add_preference("c", f"{u}-{i}", user_identifier=u)
        got = await client.long_term.get_preferences_for(u)
        assert sorted(p.preference for p in got) == [f"{u}-{i}" for i in range(3)]

    await asyncio.gather(*(one(u) for u in users))
