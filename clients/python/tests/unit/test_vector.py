"""Vector search: the writes' ``embedding``, the searches by vector (``by_vector=True``: GET
with ``mode=vector``; ``embedding=``: the vector POSTed) and ``get_similar_traces`` become the
documented HTTP requests, and their answers the client's models (schemas/openapi.yaml,
schemas/query-openapi.yaml, docs/query.md "Vector search")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from uuid import UUID

import httpx
import pytest

from engram_memory import (
    EngramError,
    InvalidRequestError,
    MemoryClient,
    SyncMemoryClient,
    TraceHit,
    UserRequiredError,
)
from tests.unit.fake import Fake

SARA = "sara@omg.com"
ACME = "881782e8-8f41-5091-aafd-7d28ea225088"
TRACE: dict[str, Any] = {
    "id": "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f80",
    "session_id": "s-1",
    "task": "find a sushi place for friday",
    "outcome": "found",
    "success": True,
    "started_at": "2026-05-01T09:00:00Z",
    "completed_at": "2026-05-01T09:01:00Z",
    "metadata": {"k": "v"},
    "score": 0.9,
}


def params(request: httpx.Request) -> list[tuple[str, str]]:
    """The query parameters in order, repeated ones included."""
    return parse_qsl(request.url.query.decode())


def posted(request: httpx.Request) -> dict[str, Any]:
    assert (request.method, request.headers["content-type"]) == ("POST", "application/json")
    return dict(json.loads(request.content))


async def test_writes_carry_their_embedding() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=True) as c:
        m = await c.short_term.add_message(
            "s-1", "user", "sushi", user_identifier=SARA, embedding=[0.5, 2, -1.25]
        )
        assert fake.requests[-1].url.path == "/v1/messages"
        assert fake.body()["embedding"] == [0.5, 2.0, -1.25]
        assert m.embedding == [0.5, 2.0, -1.25]
        p = await c.long_term.add_preference(
            "food", "loves sushi", user_identifier=SARA, embedding=[1.0, 0.0]
        )
        assert fake.requests[-1].url.path == "/v1/preferences"
        assert fake.body()["embedding"] == [1.0, 0.0] and p.embedding == [1.0, 0.0]
        e = await c.long_term.add_entity(
            "Acme", "ORGANIZATION", user_identifier=SARA, embedding=[0.0, 1.0]
        )
        assert fake.requests[-1].url.path == "/v1/entities"
        assert fake.body()["embedding"] == [0.0, 1.0] and e.embedding == [0.0, 1.0]
        t = await c.reasoning.start_trace("s-1", "find", user_identifier=SARA, embedding=[3.0])
        assert fake.requests[-1].url.path == "/v1/traces"
        assert fake.body()["embedding"] == [3.0] and t.task_embedding == [3.0]

        # Without one nothing is sent: the ingestor's embedder, when it has one, embeds the
        # text.
        plain = await c.short_term.add_message("s-1", "user", "hi", user_identifier=SARA)
        assert "embedding" not in fake.body() and plain.embedding is None
        await c.long_term.add_preference("food", "noodles", user_identifier=SARA)
        assert "embedding" not in fake.body()
        bob = await c.long_term.add_entity("Bob", "PERSON", user_identifier=SARA)
        assert bob.embedding is None
        assert "embedding" not in fake.body()
        trace = await c.reasoning.start_trace("s-1", "other", user_identifier=SARA)
        assert "embedding" not in fake.body() and trace.task_embedding is None


async def test_a_vector_that_is_no_vector_is_refused_before_sending() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=True) as c:
        sent = len(fake.requests)
        bad: list[Any] = [[float("nan")], [float("inf"), 1.0], "0.5", [None], [[1.0]]]
        for vec in bad:
            for call in (
                c.short_term.add_message("s", "user", "x", user_identifier=SARA, embedding=vec),
                c.long_term.add_preference("c", "p", user_identifier=SARA, embedding=vec),
                c.long_term.add_entity("A", "T", user_identifier=SARA, embedding=vec),
                c.reasoning.start_trace("s", "t", user_identifier=SARA, embedding=vec),
                c.short_term.search_messages("x", user_identifier=SARA, embedding=vec),
                c.reasoning.get_similar_traces("t", user_identifier=SARA, embedding=vec),
            ):
                with pytest.raises(InvalidRequestError) as e:
                    await call
                assert e.value.field == "embedding", vec
        with pytest.raises(UserRequiredError):
            await c.reasoning.get_similar_traces("find")
        with pytest.raises(InvalidRequestError) as e:
            await c.long_term.search_preferences(
                "x", limit=0, embedding=[1.0], user_identifier=SARA
            )
        assert e.value.field == "limit"
        assert len(fake.requests) == sent


async def test_searches_by_the_services_embedder_send_mode_vector() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=True) as c:
        fake.queue(200, {"messages": []})
        await c.short_term.search_messages(
            "sushi place",
            session_id="s-1",
            limit=3,
            threshold=0.5,
            by_vector=True,
            user_identifier=SARA,
        )
        r = fake.requests[-1]
        assert (r.method, r.url.path) == ("GET", "/v1/users/sara@omg.com/search/messages")
        assert params(r) == [
            ("q", "sushi place"),
            ("session_id", "s-1"),
            ("limit", "3"),
            ("mode", "vector"),
            ("threshold", "0.5"),
        ]
        fake.queue(200, {"preferences": []})
        await c.long_term.search_preferences(
            "sushi", category="food", by_vector=True, user_identifier=SARA
        )
        assert params(fake.requests[-1]) == [
            ("q", "sushi"),
            ("category", "food"),
            ("limit", "10"),
            ("mode", "vector"),
        ]
        fake.queue(200, {"entities": []})
        await c.long_term.search_entities(
            "acme", entity_types=["ORGANIZATION"], threshold=1, by_vector=True, user_identifier=SARA
        )
        assert params(fake.requests[-1]) == [
            ("q", "acme"),
            ("type", "ORGANIZATION"),
            ("limit", "10"),
            ("mode", "vector"),
            ("threshold", "1.0"),
        ]
        # The full-text default is unchanged; a threshold there is the service's 400.
        fake.queue(200, {"messages": []})
        await c.short_term.search_messages("sushi", user_identifier=SARA)
        assert params(fake.requests[-1]) == [("q", "sushi"), ("limit", "10")]
        fake.queue(400, {"error": "threshold: only with mode=vector", "field": "threshold"})
        with pytest.raises(InvalidRequestError) as e:
            await c.short_term.search_messages("sushi", threshold=0.5, user_identifier=SARA)
        assert (e.value.status, e.value.field) == (400, "threshold")
        assert params(fake.requests[-1]) == [("q", "sushi"), ("limit", "10"), ("threshold", "0.5")]


async def test_searches_by_a_given_vector_post_it() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=True) as c:
        await c.short_term.add_message("s-1", "user", "sushi", user_identifier=SARA)
        token = str(c.consistency_token(SARA))
        fake.queue(
            200,
            {
                "messages": [
                    {
                        "id": "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f90",
                        "role": "user",
                        "content": "sushi",
                        "timestamp": "2026-05-01T09:00:00Z",
                        "metadata": {},
                        "recorded_at": "2026-05-01T09:00:00Z",
                        "session_id": "s-1",
                        "score": 0.95,
                    }
                ]
            },
        )
        (hit,) = await c.short_term.search_messages(
            "sushi",
            session_id="s-1",
            limit=3,
            threshold=0.25,
            user_identifier=SARA,
            by_vector=True,  # the given vector wins
            embedding=[1, 0.5],
        )
        r = fake.requests[-1]
        assert r.url.path == "/v1/users/sara@omg.com/search/messages"
        assert params(r) == [("consistency", token)]  # the rest is in the body
        assert posted(r) == {
            "embedding": [1.0, 0.5],
            "session_id": "s-1",
            "limit": 3,
            "threshold": 0.25,
        }
        assert (hit.content, hit.session_id, hit.score) == ("sushi", "s-1", 0.95)

        fake.queue(200, {"preferences": []})
        await c.long_term.search_preferences(
            "", category="food", limit=5000, embedding=[0.1], user_identifier=SARA
        )
        r = fake.requests[-1]
        assert r.url.path == "/v1/users/sara@omg.com/search/preferences"
        assert posted(r) == {"embedding": [0.1], "category": "food", "limit": 1000}

        # Several entity types: one POST per type, merged by score.
        bob = "0196b0a2-5c3e-5d1a-9f00-3c2b1a0e9d01"

        def by_type(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/healthz":
                return httpx.Response(200, text="ok")
            typ = posted(request)["type"]
            hit = {"id": ACME if typ == "ORGANIZATION" else bob, "name": "A", "type": typ}
            score = 0.6 if typ == "ORGANIZATION" else 0.8
            return httpx.Response(200, json={"entities": [{**hit, "score": score}]})

        async with MemoryClient(fake.settings(http_transport=httpx.MockTransport(by_type))) as c2:
            hits = await c2.long_term.search_entities(
                "a", entity_types=["ORGANIZATION", "PERSON"], embedding=[1.0, 1.0]
            )
            assert [(h.id, h.type, h.score) for h in hits] == [
                (bob, "PERSON", 0.8),
                (ACME, "ORGANIZATION", 0.6),
            ]

        # A vector search is a read: retried when the service is unavailable, the same body.
        fake.queue(503, {"error": "down"}, {"Retry-After": "0"})
        fake.queue(200, {"entities": []})
        assert await c.long_term.search_entities("a", embedding=[2.0], user_identifier=SARA) == []
        first, second = fake.requests[-2:]
        assert posted(first) == posted(second) == {"embedding": [2.0], "limit": 10}
        assert first.url.path == "/v1/users/sara@omg.com/search/entities"


async def test_similar_traces() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=True) as c:
        fake.queue(200, {"traces": [TRACE]})
        (hit,) = await c.reasoning.get_similar_traces("find a sushi place", user_identifier=SARA)
        r = fake.requests[-1]
        assert (r.method, r.url.path) == ("GET", "/v1/users/sara@omg.com/search/traces")
        # The library's defaults: 5, successful traces only, 0.7.
        assert params(r) == [
            ("q", "find a sushi place"),
            ("success_only", "true"),
            ("limit", "5"),
            ("threshold", "0.7"),
        ]
        assert isinstance(hit, TraceHit)
        assert (hit.id, hit.session_id, hit.task, hit.outcome, hit.success, hit.score) == (
            UUID(TRACE["id"]),
            "s-1",
            "find a sushi place for friday",
            "found",
            True,
            0.9,
        )
        assert hit.started_at == datetime(2026, 5, 1, 9, 0, tzinfo=UTC) == hit.created_at
        assert hit.completed_at == datetime(2026, 5, 1, 9, 1, tzinfo=UTC)
        assert (hit.metadata, hit.steps, hit.step_count, hit.receipt) == (
            {"k": "v"},
            [],
            None,
            None,
        )

        fake.queue(200, {"traces": []})
        await c.reasoning.get_similar_traces(
            "find", limit=2, success_only=False, threshold=0, user_identifier=SARA
        )
        assert params(fake.requests[-1]) == [("q", "find"), ("limit", "2"), ("threshold", "0.0")]
        fake.queue(200, {"traces": [TRACE]})
        (by_vec,) = await c.reasoning.get_similar_traces(
            "find", user_identifier=SARA, embedding=[0.25, 0.75]
        )
        r = fake.requests[-1]
        assert (r.url.path, params(r)) == ("/v1/users/sara@omg.com/search/traces", [])
        assert posted(r) == {
            "embedding": [0.25, 0.75],
            "success_only": True,
            "limit": 5,
            "threshold": 0.7,
        }
        assert by_vec.id == hit.id
        fake.queue(200, {"traces": [{**TRACE, "score": "far"}]})
        with pytest.raises(EngramError, match="unexpected answer"):
            await c.reasoning.get_similar_traces("find", user_identifier=SARA)


async def test_without_multi_tenant_mode_vector_searches_are_the_shared_tenants() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=False) as c:
        m = await c.short_term.add_message("s-1", "user", "sushi", embedding=[1.0, 0.0])
        assert "user_identifier" not in fake.body() and m.receipt is not None
        fake.queue(200, {"messages": []})
        await c.short_term.search_messages("", embedding=[1.0, 0.0])
        r = fake.requests[-1]
        assert r.url.path == "/v1/shared/search/messages"
        assert params(r) == [("consistency", str(m.receipt.sequence))]
        fake.queue(200, {"traces": []})
        await c.reasoning.get_similar_traces("sushi")
        assert fake.requests[-1].url.path == "/v1/shared/search/traces"


def test_the_sync_facade_searches_by_vector() -> None:
    fake = Fake()
    with SyncMemoryClient(fake.settings(multi_tenant=True)) as c:
        fake.queue(200, {"traces": [TRACE]})
        (hit,) = c.reasoning.get_similar_traces("find", threshold=0.5, user_identifier=SARA)
        assert hit.score == 0.9 and params(fake.requests[-1])[-1] == ("threshold", "0.5")
        fake.queue(200, {"preferences": []})
        assert c.long_term.search_preferences("x", embedding=[1.0], user_identifier=SARA) == []
        assert posted(fake.requests[-1]) == {"embedding": [1.0], "limit": 10}
