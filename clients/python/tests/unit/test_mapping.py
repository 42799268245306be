"""Each call of the seed's API becomes the documented HTTP request, and each answer the
library's model (schemas/openapi.yaml, schemas/query-openapi.yaml)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import httpx
import pytest

from engram_memory import (
    EntityRef,
    InvalidRequestError,
    MemoryClient,
    MessageRole,
    NotConnectedError,
    ToolCallStatus,
    UserRequiredError,
)
from tests.unit.fake import Fake

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SARA = "sara@omg.com"


async def test_writes_become_the_ingestors_commands() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=True) as c:
        u = await c.users.upsert_user(identifier="a/b@omg.com", attributes={"role": "manager"})
        r = fake.requests[-1]
        assert (r.method, r.url.raw_path) == ("PUT", b"/v1/users/a%2Fb%40omg.com")
        assert UUID7.match(fake.body()["event_id"])
        assert fake.body()["attributes"] == {"role": "manager"}
        assert (u.identifier, u.attributes) == ("a/b@omg.com", {"role": "manager"})
        assert u.receipt is not None and u.receipt.sequence == 1
        await c.users.upsert_user(identifier=SARA, attributes={})  # {} sends nothing
        assert set(fake.body()) == {"event_id"}

        m = await c.short_term.add_message("s-1", "User", "hi", user_identifier=SARA)
        b = fake.body()
        assert fake.requests[-1].url.path == "/v1/messages"
        assert (b["role"], b["session_id"], b["user_identifier"], b["content"]) == (
            "user",
            "s-1",
            SARA,
            "hi",
        )
        assert m.id == UUID(b["message_id"]) and UUID7.match(b["message_id"])
        assert m.role is MessageRole.USER and m.conversation_id is not None
        assert "metadata" not in b and "timestamp" not in b

        naive = datetime(2026, 5, 1, 9, 0)  # naive: taken as UTC, as the library does
        p = await c.long_term.add_preference(
            "consultants",
            "Senior",
            user_identifier=SARA,
            context="q3",
            applies_to=[EntityRef(name="Healthcare", type="Industry"), {"id": "e-1"}],
            valid_from=naive,
        )
        b = fake.body()
        assert b["applies_to"] == [{"name": "Healthcare", "type": "Industry"}, {"id": "e-1"}]
        assert (b["context"], b["confidence"], b["valid_from"]) == (
            "q3",
            1.0,
            "2026-05-01T09:00:00Z",
        )
        assert p.id == UUID(b["preference_id"]) and p.valid_from == naive.replace(tzinfo=UTC)
        assert [(e.name, e.type) for e in p.applies_to] == [("Healthcare", "Industry"), ("", None)]

        q = await c.long_term.add_preference("consultants", "Junior", user_identifier=SARA)
        rc = await c.long_term.supersede_preference(p.id, q.id)  # the owner is remembered
        r = fake.requests[-1]
        assert r.url.path == f"/v1/preferences/{p.id}/supersede"
        assert fake.body()["new_id"] == str(q.id) and fake.body()["user_identifier"] == SARA
        assert rc.user_identifier == SARA

        t = await c.reasoning.start_trace("s-1", "search", user_identifier=SARA)
        s1 = await c.reasoning.add_step(t.id, thought="look")
        s2 = await c.reasoning.add_step(t.id, action="act")
        assert fake.requests[-1].url.path == f"/v1/traces/{t.id}/steps"
        assert (s1.step_number, s2.step_number, fake.body()["step_number"]) == (1, 2, 2)
        tc = await c.reasoning.record_tool_call(s1.id, "search", {"q": "x"}, duration_ms=5)
        b = fake.body()
        assert fake.requests[-1].url.path == f"/v1/traces/{t.id}/tool-calls"
        assert (b["step_id"], b["status"], b["arguments"], b["duration_ms"]) == (
            str(s1.id),
            "success",
            {"q": "x"},
            5,
        )
        assert tc.status is ToolCallStatus.SUCCESS and tc.step_id == s1.id
        done = await c.reasoning.complete_trace(t.id, outcome="ok", success=True)
        assert fake.requests[-1].url.path == f"/v1/traces/{t.id}/complete"
        assert fake.body() == {
            "event_id": fake.body()["event_id"],
            "user_identifier": SARA,
            "outcome": "ok",
            "success": True,
        }
        assert (done.task, done.session_id, done.step_count) == ("search", "s-1", 2)

        await c.users.erase_user(SARA, reason="asked")
        assert fake.requests[-1].method == "DELETE" and fake.body()["reason"] == "asked"
        await c.users.recreate_user(SARA)
        assert fake.requests[-1].url.raw_path == b"/v1/users/sara%40omg.com/recreate"


async def test_guardrail_raises_before_anything_is_sent() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=True) as c:
        sent = len(fake.requests)
        for call in (
            c.short_term.add_message("s", "user", "x"),
            c.long_term.add_preference("c", "p"),
            c.reasoning.start_trace("s", "t"),
            c.long_term.supersede_preference(str(UUID(int=1)), str(UUID(int=2))),
            c.reasoning.add_step(str(UUID(int=3))),
            c.long_term.get_preferences_for(None),
            c.short_term.get_conversation("s"),
        ):
            with pytest.raises(ValueError, match="user_identifier") as e:
                await call
            assert isinstance(e.value, UserRequiredError) and e.value.field == "user_identifier"
        assert len(fake.requests) == sent
        with pytest.raises(InvalidRequestError):
            await c.short_term.add_message("s", "robot", "x", user_identifier=SARA)
        with pytest.raises(InvalidRequestError, match="label"):
            await c.long_term.add_preference(
                "c", "p", user_identifier=SARA, applies_to=[EntityRef(name="H", label="Client")]
            )
        with pytest.raises(InvalidRequestError, match="trace_id"):
            await c.reasoning.record_tool_call(str(UUID(int=4)), "t", {}, user_identifier=SARA)
        with pytest.raises(InvalidRequestError, match="not JSON"):
            await c.long_term.add_preference(
                "c", "p", user_identifier=SARA, metadata={"when": datetime.now()}
            )
        assert len(fake.requests) == sent


async def test_without_multi_tenant_mode_writes_and_reads_go_to_the_shared_tenant() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=False) as c:
        p = await c.long_term.add_preference("c", "p")
        assert "user_identifier" not in fake.body()
        assert p.receipt is not None and p.receipt.user_identifier is None
        await c.long_term.get_preferences_for(None)
        r = fake.requests[-1]
        assert r.url.path == "/v1/shared/preferences"
        assert r.url.params["consistency"] == str(p.receipt.sequence)


async def test_reads_carry_the_users_highest_token_and_the_seeds_parameters() -> None:
    fake = Fake()
    async with fake.client() as c:
        for _ in range(3):
            await c.long_term.add_preference("c", "p", user_identifier=SARA)
        await c.long_term.add_preference("c", "p", user_identifier="liam@omg.com")
        fake.queue(200, {"preferences": []})
        await c.long_term.get_preferences_for(
            SARA,
            applies_to=EntityRef(name="Healthcare", type="Industry"),
            active_only=False,
            as_of=datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
            known_at=datetime(2026, 5, 2),
        )
        r = fake.requests[-1]
        assert r.url.raw_path.startswith(b"/v1/users/sara%40omg.com/preferences?")
        assert dict(r.url.params) == {
            "applies_to_name": "Healthcare",
            "applies_to_type": "Industry",
            "active_only": "false",
            "as_of": "2026-05-01T10:00:00Z",
            "known_at": "2026-05-02T00:00:00Z",
            "consistency": "3",
        }
        # The library's precedence: id, else name and type, else name.
        refs: list[tuple[EntityRef | dict[str, str], dict[str, str]]] = [
            (EntityRef(id="e1", name="H", type="I"), {"applies_to_id": "e1"}),
            ({"name": "H"}, {"applies_to_name": "H"}),
        ]
        for ref, want in refs:
            await c.long_term.get_preferences_for("nobody", applies_to=ref)
            assert dict(fake.requests[-1].url.params) == want
    fake2 = Fake()
    async with fake2.client(read_your_writes=False) as c:
        await c.long_term.add_preference("c", "p", user_identifier=SARA)
        await c.long_term.get_preferences_for(SARA)
        assert "consistency" not in fake2.requests[-1].url.params


PREF: dict[str, Any] = {
    "id": "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f70",
    "category": "consultants",
    "preference": "Senior",
    "context": None,
    "confidence": 0.9,
    "created_at": "2026-05-01T09:00:00Z",
    "valid_from": "2026-05-01T09:00:00Z",
    "valid_until": "2026-05-02T09:00:00.5Z",
    "metadata": {"k": 1},
    "applies_to": [
        {"id": "0e55d769-d8ea-5c2e-acc2-6e6575258a03", "name": "Healthcare", "type": "Industry"}
    ],
    "superseded_by": "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f71",
    "supersedes": [],
    "recorded_at": "2026-05-01T09:00:00.004Z",
    "recorded_seq": 17,
    "superseded_recorded_at": "2026-05-02T09:00:00.5Z",
    "superseded_seq": 20,
}


async def test_answers_become_the_librarys_models() -> None:
    fake = Fake()
    async with fake.client() as c:
        fake.queue(200, {"preferences": [PREF]})
        (p,) = await c.long_term.get_preferences_for(SARA)
        assert p.id == UUID(PREF["id"]) and p.confidence == 0.9 and p.metadata == {"k": 1}
        assert p.linked_entities == [UUID("0e55d769-d8ea-5c2e-acc2-6e6575258a03")]
        assert p.valid_until == datetime(2026, 5, 2, 9, 0, 0, 500000, tzinfo=UTC)
        assert p.superseded_by == UUID(PREF["superseded_by"]) and p.recorded_seq == 17
        assert p.embedding is None and p.receipt is None

        fake.queue(
            200,
            {
                "id": "u1",
                "identifier": SARA,
                "attributes": {"role": "m"},
                "created_at": "2026-05-01T09:00:00Z",
                "recorded_at": None,
            },
        )
        user = await c.users.get_user(SARA)
        assert user is not None and (user.id, user.attributes) == ("u1", {"role": "m"})
        fake.queue(404, {"error": "user not found"})
        assert await c.users.get_user("nobody") is None

        trace_id = "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f80"
        step_id = "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f81"
        fake.queue(
            200,
            {
                "id": trace_id,
                "session_id": "s",
                "task": "t",
                "outcome": None,
                "success": None,
                "started_at": "2026-05-01T09:00:00Z",
                "completed_at": None,
                "metadata": {},
                "step_count": 1,
                "recorded_at": "2026-05-01T09:00:00Z",
                "steps": [
                    {
                        "id": step_id,
                        "step_number": 1,
                        "order": 1,
                        "thought": "x",
                        "action": None,
                        "observation": None,
                        "timestamp": "2026-05-01T09:00:01Z",
                        "tool_calls": [
                            {
                                "id": "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f82",
                                "tool_name": "search",
                                "arguments": None,
                                "result": [1, 2],
                                "status": "timeout",
                                "duration_ms": 7,
                                "error": "slow",
                                "timestamp": "2026-05-01T09:00:02Z",
                            }
                        ],
                    }
                ],
            },
        )
        t = await c.reasoning.get_trace(trace_id, user_identifier=SARA)
        assert t is not None and t.id == UUID(trace_id) and t.created_at == t.started_at
        (s,) = t.steps
        assert (s.trace_id, s.step_number, s.thought) == (UUID(trace_id), 1, "x")
        (tc,) = s.tool_calls
        assert (tc.status, tc.arguments, tc.result, tc.step_id) == (
            ToolCallStatus.TIMEOUT,
            {},
            [1, 2],
            UUID(step_id),
        )
        assert await c.reasoning.get_trace("not-a-uuid", user_identifier=SARA) is None

        conv_id = "2a9e7c1b-3d4f-5e6a-8b7c-9d0e1f2a3b4c"
        msg = {
            "id": "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f90",
            "role": "assistant",
            "content": "hello",
            "timestamp": "2026-05-01T09:00:00Z",
            "metadata": {},
            "recorded_at": "2026-05-01T09:00:00Z",
        }
        later: dict[str, Any] = {
            **msg,
            "id": "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f91",
            "timestamp": "2026-05-01T10:00:00Z",
        }

        def route(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/messages"):
                if request.url.params.get("cursor") == "c2":
                    return httpx.Response(200, json={"messages": [later]})
                return httpx.Response(200, json={"messages": [msg], "next_cursor": "c2"})
            return httpx.Response(
                200,
                json={
                    "conversations": [
                        {
                            "id": conv_id,
                            "session_id": "s/1",
                            "title": "T",
                            "created_at": "2026-05-01T09:00:00Z",
                            "updated_at": "2026-05-01T10:00:00Z",
                            "recorded_at": "2026-05-01T09:00:00Z",
                        }
                    ]
                },
            )

        fake.answers.clear()
        c2 = MemoryClient(
            fake.settings(http_transport=httpx.MockTransport(route), validate_on_connect=False)
        )
        async with c2:
            conv = await c2.short_term.get_conversation("s/1", user_identifier=SARA)
            assert conv.id == UUID(conv_id) and conv.title == "T"
            assert [m.content for m in conv.messages] == ["hello", "hello"]
            assert conv.messages[0].role is MessageRole.ASSISTANT
            assert conv.messages[0].conversation_id == UUID(conv_id)
            since = await c2.short_term.get_conversation(
                "s/1", user_identifier=SARA, since=datetime(2026, 5, 1, 9, 30)
            )
            assert [m.id for m in since.messages] == [UUID(later["id"])]
            empty_route = httpx.MockTransport(
                lambda r: httpx.Response(200, json={"messages": [], "conversations": []})
            )
        async with MemoryClient(fake.settings(http_transport=empty_route)) as c3:
            empty = await c3.short_term.get_conversation("s", user_identifier=SARA)
            assert empty.session_id == "s" and empty.messages == []


async def test_the_client_must_be_connected() -> None:
    c = Fake().client()
    with pytest.raises(NotConnectedError):
        _ = c.users
    async with c:
        assert c.is_connected
    with pytest.raises(NotConnectedError):
        _ = c.long_term
