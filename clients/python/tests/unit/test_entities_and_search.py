"""The entity, relationship, fact, mention and search calls become the documented HTTP
requests, and their answers the client's models (schemas/openapi.yaml,
schemas/query-openapi.yaml, docs/query.md "Entities, relationships and facts", "Search")."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from uuid import UUID

import httpx
import pytest

from engram_memory import (
    Entity,
    EntityDetail,
    EntityRef,
    InvalidRequestError,
    MemoryClient,
    MessageRole,
    NotFoundError,
    SyncLongTermMemory,
    SyncReasoningMemory,
    SyncShortTermMemory,
    ToolCallStatus,
    UserRequiredError,
)
from engram_memory._ids import entity_id
from engram_memory.memory import LongTermMemory, ReasoningMemory, ShortTermMemory
from tests.unit.fake import RELATIONSHIP_ID, Fake

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SARA = "sara@omg.com"
ROOT = b"/v1/users/sara%40omg.com"
ACME = "881782e8-8f41-5091-aafd-7d28ea225088"  # the shared tenant's Acme, ORGANIZATION
BOB = "0196b0a2-5c3e-5d1a-9f00-3c2b1a0e9d01"

ENTITY: dict[str, Any] = {
    "id": ACME,
    "name": "Acme",
    "type": "ORGANIZATION",
    "subtype": "COMPANY",
    "description": "A maker of everything",
    "aliases": ["Acme Inc"],
    "attributes": {"founded": 1949},
    "confidence": 0.8,
    "created_at": "2026-05-01T09:00:00Z",
    "updated_at": "2026-05-01T09:05:00Z",
    "recorded_at": "2026-05-01T09:00:00.004Z",
    "recorded_seq": 17,
    "merged_ids": ["0196b0a2-5c3e-5d1a-9f00-3c2b1a0e9d02"],
    "resolved_from": None,
}


def params(request: httpx.Request) -> list[tuple[str, str]]:
    """The query parameters in order, repeated ones included."""
    return parse_qsl(request.url.query.decode())


def test_entity_ids_are_derived_as_the_ingestor_derives_them() -> None:
    # Golden values from events.EntityID (internal/events/ids.go).
    assert entity_id(SARA, "Healthcare", "Industry") == "df4c2732-519b-5947-881e-2b3565a6cfd5"
    assert entity_id(None, "Acme", "ORGANIZATION") == ACME
    assert entity_id(SARA, "Zoë", None) == "2047a47d-806d-5d72-999b-ff2858a0f7c6"


async def test_entity_writes_become_the_ingestors_commands() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=True) as c:
        e = await c.long_term.add_entity(
            "Acme",
            "ORGANIZATION",
            subtype="COMPANY",
            description="A maker of everything",
            aliases=["Acme Inc"],
            attributes={"founded": 1949},
            confidence=0.8,
            user_identifier=SARA,
            message_ids=[UUID(int=1)],
            trace_ids=["0196b0a2-5c3e-7d1a-9f00-3c2b1a0e9d86"],
        )
        r, b = fake.requests[-1], fake.body()
        assert (r.method, r.url.path) == ("POST", "/v1/entities")
        assert UUID7.match(b["event_id"])
        assert b == {
            "event_id": b["event_id"],
            "user_identifier": SARA,
            "name": "Acme",
            "type": "ORGANIZATION",
            "subtype": "COMPANY",
            "description": "A maker of everything",
            "aliases": ["Acme Inc"],
            "attributes": {"founded": 1949},
            "confidence": 0.8,
            "message_ids": [str(UUID(int=1))],
            "trace_ids": ["0196b0a2-5c3e-7d1a-9f00-3c2b1a0e9d86"],
        }
        assert e.id == entity_id(SARA, "Acme", "ORGANIZATION")
        assert (e.name, e.type, e.subtype, e.aliases, e.confidence) == (
            "Acme",
            "ORGANIZATION",
            "COMPANY",
            ["Acme Inc"],
            0.8,
        )
        assert e.full_type == "ORGANIZATION:COMPANY" and e.display_name == "Acme"
        assert e.receipt is not None and e.receipt.user_identifier == SARA
        plain = await c.long_term.add_entity("Bob", "PERSON", user_identifier=SARA)
        assert set(fake.body()) == {"event_id", "user_identifier", "name", "type"}
        assert plain.confidence == 1.0 and plain.aliases == [] and plain.full_type == "PERSON"

        # An endpoint by id names its owner; by name and type it is derived.
        rel = await c.long_term.add_relationship(
            plain,
            EntityRef(name="Healthcare", type="Industry"),
            "WORKS_IN",
            description="since 2020",
            valid_from=datetime(2020, 1, 1),
            attributes={"team": "a"},
        )
        r, b = fake.requests[-1], fake.body()
        assert r.url.path == "/v1/relationships"
        assert b == {
            "event_id": b["event_id"],
            "user_identifier": SARA,
            "source": {"id": plain.id},
            "target": {"name": "Healthcare", "type": "Industry"},
            "type": "WORKS_IN",
            "confidence": 1.0,
            "description": "since 2020",
            "valid_from": "2020-01-01T00:00:00Z",
            "attributes": {"team": "a"},
        }
        assert (rel.id, rel.source_id, rel.target_id) == (
            RELATIONSHIP_ID,
            plain.id,
            entity_id(SARA, "Healthcare", "Industry"),
        )
        assert rel.valid_from == datetime(2020, 1, 1, tzinfo=UTC) and rel.valid_until is None
        assert rel.receipt is not None and rel.receipt.user_identifier == SARA
        # Ids (str or UUID) and mappings; an entity without an id goes by name and type.
        await c.long_term.add_relationship(
            UUID(str(e.id)),
            Entity(name="Ann", type="PERSON"),
            "EMPLOYS",
            confidence=0.5,
            valid_until=datetime(2027, 1, 1, tzinfo=UTC),
        )
        b = fake.body()
        assert (b["source"], b["target"], b["confidence"], b["valid_until"]) == (
            {"id": e.id},
            {"name": "Ann", "type": "PERSON"},
            0.5,
            "2027-01-01T00:00:00Z",
        )
        await c.long_term.add_relationship(
            {"name": "A"}, {"name": "B"}, "KNOWS", user_identifier=SARA
        )
        assert (fake.body()["source"], fake.body()["target"]) == ({"name": "A"}, {"name": "B"})

        merged = await c.long_term.merge_duplicate_entities(plain.id or "", e.id or "")
        r, b = fake.requests[-1], fake.body()
        assert (r.method, r.url.path) == ("POST", "/v1/entities/merge")
        assert b == {
            "event_id": b["event_id"],
            "source_id": plain.id,
            "target_id": e.id,
            "user_identifier": SARA,
        }
        assert merged.user_identifier == SARA

        f = await c.long_term.add_fact(
            "Bob",
            "works_at",
            "Acme",
            confidence=0.9,
            valid_from=datetime(2026, 5, 1, 9, 0),
            metadata={"source": "chat"},
            user_identifier=SARA,
        )
        r, b = fake.requests[-1], fake.body()
        assert r.url.path == "/v1/facts"
        assert b == {
            "event_id": b["event_id"],
            "fact_id": b["fact_id"],
            "user_identifier": SARA,
            "subject": "Bob",
            "predicate": "works_at",
            "object": "Acme",
            "confidence": 0.9,
            "valid_from": "2026-05-01T09:00:00Z",
            "metadata": {"source": "chat"},
        }
        assert UUID7.match(b["fact_id"]) and f.id == UUID(b["fact_id"])
        assert f.as_triple == ("Bob", "works_at", "Acme") and f.embedding is None
        assert f.valid_from == datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
        assert f.receipt is not None and f.receipt.sequence == fake.seq


async def test_entity_writes_refuse_before_sending() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=True) as c:
        sent = len(fake.requests)
        for call in (
            c.long_term.add_entity("Acme", "ORGANIZATION"),
            c.long_term.add_fact("s", "p", "o"),
            c.long_term.add_relationship(EntityRef(name="A"), EntityRef(name="B"), "KNOWS"),
            c.long_term.add_relationship(str(UUID(int=5)), str(UUID(int=6)), "KNOWS"),
            c.long_term.merge_duplicate_entities(str(UUID(int=5)), str(UUID(int=6))),
            c.long_term.get_entity(str(UUID(int=5))),
            c.long_term.get_entity_by_name("Acme"),
            c.long_term.list_entities(),
            c.long_term.get_facts(None),
            c.long_term.search_entities("acme"),
            c.short_term.search_messages("hi"),
            c.reasoning.search_steps("look"),
        ):
            with pytest.raises(UserRequiredError):
                await call
        with pytest.raises(InvalidRequestError, match="label") as e:
            await c.long_term.add_relationship(
                EntityRef(name="A"),
                EntityRef(name="B", label="Person"),
                "KNOWS",
                user_identifier=SARA,
            )
        assert e.value.field == "target.label"
        with pytest.raises(InvalidRequestError) as e:
            await c.long_term.get_related_entities(Entity(name="Healthcare"), user_identifier=SARA)
        assert e.value.field == "entity_id"
        for bad in (
            c.long_term.search_preferences("x", limit=0, user_identifier=SARA),
            c.long_term.get_facts(SARA, limit=0),
            c.long_term.list_entities(limit=0, user_identifier=SARA),
            c.long_term.get_entity_mentions("e", limit=0, user_identifier=SARA),
        ):
            with pytest.raises(InvalidRequestError) as e:
                await bad
            assert e.value.field == "limit"
        assert len(fake.requests) == sent


async def test_entity_reads_send_the_documented_parameters() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=True) as c:
        e = await c.long_term.add_entity("Acme", "ORGANIZATION", user_identifier=SARA)
        token = str(c.consistency_token(SARA))

        fake.queue(200, {**ENTITY, "id": e.id, "resolved_from": BOB})
        got = await c.long_term.get_entity(e.id or "")  # the owner is remembered
        r = fake.requests[-1]
        assert r.url.raw_path == ROOT + f"/entities/{e.id}?consistency={token}".encode()
        assert isinstance(got, EntityDetail) and got.resolved_from == BOB
        assert (got.subtype, got.aliases, got.attributes, got.confidence) == (
            "COMPANY",
            ["Acme Inc"],
            {"founded": 1949},
            0.8,
        )
        assert got.recorded_seq == 17 and got.merged_ids == ["0196b0a2-5c3e-5d1a-9f00-3c2b1a0e9d02"]
        assert got.created_at == datetime(2026, 5, 1, 9, 0, tzinfo=UTC) and got.receipt is None
        fake.queue(404, {"error": "entity not found"})
        assert await c.long_term.get_entity("a/b", user_identifier=SARA) is None
        assert fake.requests[-1].url.raw_path.startswith(ROOT + b"/entities/a%2Fb?")

        fake.queue(200, {"entities": [ENTITY]})
        by_name = await c.long_term.get_entity_by_name("Acme Inc", user_identifier=SARA)
        r = fake.requests[-1]
        assert r.url.path == "/v1/users/sara@omg.com/entities"
        assert params(r) == [("name", "Acme Inc"), ("limit", "1"), ("consistency", token)]
        assert by_name is not None and by_name.id == ACME
        fake.queue(200, {"entities": []})
        assert await c.long_term.get_entity_by_name("nobody", user_identifier=SARA) is None
        fake.queue(200, ENTITY)
        typed = await c.long_term.get_entity_by_name(
            "Acme", entity_type="ORGANIZATION", user_identifier=SARA
        )
        r = fake.requests[-1]
        assert r.url.path == "/v1/users/sara@omg.com/entities/by-name"
        assert params(r) == [("name", "Acme"), ("type", "ORGANIZATION"), ("consistency", token)]
        assert typed is not None and typed.name == "Acme"
        fake.queue(404, {"error": "entity not found"})
        assert (
            await c.long_term.get_entity_by_name("x", entity_type="PERSON", user_identifier=SARA)
            is None
        )

        # The list follows next_cursor up to the limit.
        fake.queue(200, {"entities": [ENTITY], "next_cursor": "c2"})
        fake.queue(200, {"entities": [{**ENTITY, "id": BOB, "name": "Bob"}], "next_cursor": "c3"})
        listed = await c.long_term.list_entities(
            entity_type="ORGANIZATION", name="Acme", limit=2, user_identifier=SARA
        )
        assert [x.id for x in listed] == [ACME, BOB]
        first, second = fake.requests[-2:]
        assert params(first) == [
            ("type", "ORGANIZATION"),
            ("name", "Acme"),
            ("limit", "2"),
            ("consistency", token),
        ]
        assert dict(params(second))["cursor"] == "c2" and dict(params(second))["limit"] == "1"

        rel: dict[str, Any] = {
            "id": RELATIONSHIP_ID,
            "type": "WORKS_AT",
            "direction": "in",
            "source_id": BOB,
            "target_id": ACME,
            "description": None,
            "confidence": 0.9,
            "valid_from": "2020-01-01T00:00:00Z",
            "valid_until": None,
            "attributes": {},
            "created_at": "2026-05-01T09:00:00Z",
            "updated_at": "2026-05-01T09:00:00Z",
            "recorded_at": "2026-05-01T09:00:00Z",
        }
        fake.queue(
            200,
            {
                "entity": ENTITY,
                "related": [
                    {"entity": {**ENTITY, "id": BOB, "name": "Bob"}, "depth": 1, "path": [rel]}
                ],
                "truncated": True,
            },
        )
        related = await c.long_term.get_related_entities(
            e,
            relationship_types=["WORKS_AT", "KNOWS"],
            depth=2,
            direction="in",
            limit=5,
        )
        r = fake.requests[-1]
        assert r.url.path == f"/v1/users/sara@omg.com/entities/{e.id}/related"
        assert params(r) == [
            ("depth", "2"),
            ("type", "WORKS_AT"),
            ("type", "KNOWS"),
            ("direction", "in"),
            ("limit", "5"),
            ("consistency", token),
        ]
        assert related.entity.id == ACME and related.truncated
        (near,) = related.related
        assert (near.entity.name, near.depth) == ("Bob", 1)
        assert near.relationship is not None and near.relationship.direction == "in"
        assert near.relationship.confidence == 0.9 and near.relationship.source_id == BOB
        fake.queue(200, {"entity": ENTITY, "related": [], "truncated": False})
        await c.long_term.get_related_entities(UUID(ACME), user_identifier=SARA)
        assert params(fake.requests[-1]) == [("consistency", token)]
        fake.queue(404, {"error": "entity not found"})
        with pytest.raises(NotFoundError):
            await c.long_term.get_related_entities("nope", user_identifier=SARA)

        fact: dict[str, Any] = {
            "id": "0196b0a2-5c3e-7d1a-9f00-3c2b1a0e9d90",
            "subject": "Bob",
            "predicate": "works_at",
            "object": "Acme",
            "confidence": 0.9,
            "valid_from": "2026-05-01T09:00:00Z",
            "valid_until": None,
            "created_at": "2026-05-01T09:00:00Z",
            "metadata": {"source": "chat"},
            "recorded_at": "2026-05-01T09:00:00.004Z",
            "recorded_seq": 21,
        }
        fake.queue(200, {"facts": [fact]})
        (f,) = await c.long_term.get_facts(
            SARA,
            subject="Bob",
            predicate="works_at",
            as_of=datetime(2026, 6, 1),
            known_at=datetime(2026, 6, 2),
            limit=5000,
        )
        r = fake.requests[-1]
        assert r.url.path == "/v1/users/sara@omg.com/facts"
        assert params(r) == [
            ("subject", "Bob"),
            ("predicate", "works_at"),
            ("as_of", "2026-06-01T00:00:00Z"),
            ("known_at", "2026-06-02T00:00:00Z"),
            ("limit", "1000"),
            ("consistency", token),
        ]
        assert f.id == UUID(fact["id"]) and f.as_triple == ("Bob", "works_at", "Acme")
        assert (f.confidence, f.metadata, f.recorded_seq, f.valid_until) == (
            0.9,
            {"source": "chat"},
            21,
            None,
        )
        fake.queue(200, {"facts": []})
        assert await c.long_term.get_facts_about("Bob", limit=3, user_identifier=SARA) == []
        assert params(fake.requests[-1]) == [
            ("subject", "Bob"),
            ("limit", "3"),
            ("consistency", token),
        ]


async def test_mentions_are_read_from_both_ends() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=True) as c:
        m = await c.short_term.add_message("s-1", "user", "Bob joined Acme", user_identifier=SARA)
        t = await c.reasoning.start_trace("s-1", "staff", user_identifier=SARA)
        token = str(c.consistency_token(SARA))
        fake.queue(
            200,
            {
                "entity_id": ACME,
                "resolved_from": BOB,
                "messages": [
                    {
                        "id": str(m.id),
                        "role": "user",
                        "content": "Bob joined Acme",
                        "timestamp": "2026-05-01T09:00:00Z",
                        "metadata": {},
                        "recorded_at": "2026-05-01T09:00:00Z",
                        "conversation_id": str(m.conversation_id),
                        "session_id": "s-1",
                    }
                ],
                "traces": [
                    {
                        "id": str(t.id),
                        "session_id": "s-1",
                        "task": "staff",
                        "outcome": None,
                        "success": None,
                        "started_at": "2026-05-01T09:00:00Z",
                        "completed_at": None,
                        "metadata": {},
                        "step_count": 0,
                        "recorded_at": "2026-05-01T09:00:00Z",
                    }
                ],
                "truncated": False,
            },
        )
        mentions = await c.long_term.get_entity_mentions(BOB, limit=7, user_identifier=SARA)
        r = fake.requests[-1]
        assert r.url.path == f"/v1/users/sara@omg.com/entities/{BOB}/mentions"
        assert params(r) == [("limit", "7"), ("consistency", token)]
        assert (mentions.entity_id, mentions.resolved_from, mentions.truncated) == (
            ACME,
            BOB,
            False,
        )
        (msg,) = mentions.messages
        assert (msg.id, msg.role, msg.session_id, msg.conversation_id) == (
            m.id,
            MessageRole.USER,
            "s-1",
            m.conversation_id,
        )
        assert [x.id for x in mentions.traces] == [t.id]

        fake.queue(200, {"message_id": str(m.id), "entities": [ENTITY], "truncated": True})
        of_message = await c.long_term.get_entities_from_message(m.id)  # the owner is remembered
        r = fake.requests[-1]
        assert r.url.path == f"/v1/users/sara@omg.com/messages/{m.id}/entities"
        assert params(r) == [("consistency", token)]
        assert of_message.message_id == str(m.id) and of_message.truncated
        assert [x.id for x in of_message.entities] == [ACME]
        fake.queue(200, {"trace_id": str(t.id), "entities": [], "truncated": False})
        of_trace = await c.reasoning.get_trace_entities(t.id, limit=2)
        r = fake.requests[-1]
        assert r.url.path == f"/v1/users/sara@omg.com/traces/{t.id}/entities"
        assert params(r) == [("limit", "2"), ("consistency", token)]
        assert of_trace.trace_id == str(t.id) and of_trace.entities == []
        fake.queue(404, {"error": "message not found"})
        with pytest.raises(NotFoundError):
            await c.long_term.get_entities_from_message(UUID(int=9), user_identifier=SARA)


HIT_PREF: dict[str, Any] = {
    "id": "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f70",
    "category": "consultants",
    "preference": "Senior on healthcare",
    "context": None,
    "confidence": 0.9,
    "created_at": "2026-05-01T09:00:00Z",
    "valid_from": "2026-05-01T09:00:00Z",
    "valid_until": None,
    "metadata": {},
    "applies_to": [{"id": ACME, "name": "Acme", "type": "ORGANIZATION"}],
    "superseded_by": "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f71",
    "supersedes": [],
    "recorded_at": "2026-05-01T09:00:00Z",
    "recorded_seq": 3,
    "superseded_recorded_at": None,
    "superseded_seq": None,
    "score": 1.5,
}


async def test_searches_send_their_filters_and_answer_hits() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=True) as c:
        fake.queue(
            200,
            {
                "messages": [
                    {
                        "id": "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f90",
                        "role": "assistant",
                        "content": "a healthcare team",
                        "timestamp": "2026-05-01T09:00:00Z",
                        "metadata": {"k": "v"},
                        "recorded_at": "2026-05-01T09:00:00Z",
                        "session_id": "s-1",
                        "score": 2.25,
                    }
                ]
            },
        )
        (mh,) = await c.short_term.search_messages(
            "healthcare team", session_id="s-1", limit=3, user_identifier=SARA
        )
        r = fake.requests[-1]
        assert r.url.path == "/v1/users/sara@omg.com/search/messages"
        assert params(r) == [("q", "healthcare team"), ("session_id", "s-1"), ("limit", "3")]
        assert (mh.content, mh.session_id, mh.score, mh.metadata) == (
            "a healthcare team",
            "s-1",
            2.25,
            {"k": "v"},
        )
        assert mh.role is MessageRole.ASSISTANT and mh.receipt is None

        fake.queue(200, {"preferences": [HIT_PREF]})
        (ph,) = await c.long_term.search_preferences(
            "healthcare", category="consultants", user_identifier=SARA
        )
        r = fake.requests[-1]
        assert r.url.path == "/v1/users/sara@omg.com/search/preferences"
        assert params(r) == [("q", "healthcare"), ("category", "consultants"), ("limit", "10")]
        assert ph.score == 1.5 and ph.superseded_by == UUID(HIT_PREF["superseded_by"])
        assert [x.name for x in ph.applies_to] == ["Acme"] and ph.linked_entities == [UUID(ACME)]

        def entity_hit(id_: str, score: float, typ: str) -> dict[str, Any]:
            return {
                "id": id_,
                "name": "Acme",
                "type": typ,
                "description": None,
                "created_at": "2026-05-01T09:00:00Z",
                "recorded_at": None,
                "score": score,
            }

        fake.queue(200, {"entities": [entity_hit(ACME, 1.0, "ORGANIZATION")]})
        (eh,) = await c.long_term.search_entities(
            "acme", entity_types=["ORGANIZATION"], limit=5, user_identifier=SARA
        )
        assert params(fake.requests[-1]) == [
            ("q", "acme"),
            ("type", "ORGANIZATION"),
            ("limit", "5"),
        ]
        assert (eh.id, eh.type, eh.score, eh.description) == (ACME, "ORGANIZATION", 1.0, None)
        # Several types: one search per type, merged by score, then id, cut at the limit.
        c2, c3 = "0196b0a2-5c3e-5d1a-9f00-3c2b1a0e9d03", "0196b0a2-5c3e-5d1a-9f00-3c2b1a0e9d04"

        def by_type(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/healthz":
                return httpx.Response(200, text="ok")
            typ = request.url.params["type"]
            hits = {
                "ORGANIZATION": [entity_hit(ACME, 1.0, typ), entity_hit(c3, 0.5, typ)],
                "PERSON": [entity_hit(c2, 1.0, typ), entity_hit(BOB, 2.0, typ)],
            }[typ]
            return httpx.Response(200, json={"entities": hits})

        async with MemoryClient(fake.settings(http_transport=httpx.MockTransport(by_type))) as c4:
            merged = await c4.long_term.search_entities(
                "acme", entity_types=["ORGANIZATION", "PERSON", "ORGANIZATION"], limit=3
            )
            assert [(h.id, h.score) for h in merged] == [(BOB, 2.0), (c2, 1.0), (ACME, 1.0)]

        trace_id = "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f80"
        fake.queue(
            200,
            {
                "steps": [
                    {
                        "id": "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f81",
                        "step_number": 2,
                        "order": 2,
                        "thought": "look for healthcare",
                        "action": None,
                        "observation": None,
                        "timestamp": "2026-05-01T09:00:01Z",
                        "tool_calls": [
                            {
                                "id": "01968a8e-4f3c-7b6e-9d1a-2c3b4d5e6f82",
                                "tool_name": "search",
                                "arguments": {"q": "x"},
                                "result": None,
                                "status": "error",
                                "duration_ms": None,
                                "error": "boom",
                                "timestamp": "2026-05-01T09:00:02Z",
                            }
                        ],
                        "trace_id": trace_id,
                        "session_id": "s-1",
                        "task": "staff",
                        "outcome": "done",
                        "success": True,
                        "score": 0.75,
                    }
                ]
            },
        )
        (sh,) = await c.reasoning.search_steps("healthcare", user_identifier=SARA)
        r = fake.requests[-1]
        assert r.url.path == "/v1/users/sara@omg.com/search/steps"
        assert params(r) == [("q", "healthcare"), ("success_only", "true"), ("limit", "10")]
        assert (sh.trace_id, sh.step_number, sh.thought, sh.session_id, sh.task) == (
            UUID(trace_id),
            2,
            "look for healthcare",
            "s-1",
            "staff",
        )
        assert (sh.outcome, sh.success, sh.score) == ("done", True, 0.75)
        (tc,) = sh.tool_calls
        assert tc.status is ToolCallStatus.ERROR and tc.step_id == sh.id
        fake.queue(200, {"steps": []})
        assert await c.reasoning.search_steps("x", success_only=False, user_identifier=SARA) == []
        assert params(fake.requests[-1]) == [("q", "x"), ("limit", "10")]


async def test_without_multi_tenant_mode_entities_and_searches_are_the_shared_tenants() -> None:
    fake = Fake()
    async with fake.client(multi_tenant=False) as c:
        e = await c.long_term.add_entity("Acme", "ORGANIZATION")
        assert "user_identifier" not in fake.body() and e.id == ACME
        rel = await c.long_term.add_relationship(
            EntityRef(name="Bob", type="PERSON"),
            EntityRef(name="Acme", type="ORGANIZATION"),
            "WORKS_AT",
        )
        assert "user_identifier" not in fake.body() and rel.target_id == ACME
        assert rel.receipt is not None and rel.receipt.user_identifier is None
        fake.queue(200, {"entities": []})
        await c.long_term.search_entities("acme")
        r = fake.requests[-1]
        assert r.url.path == "/v1/shared/search/entities"
        assert r.url.params["consistency"] == str(rel.receipt.sequence)
        fake.queue(200, {"facts": []})
        await c.long_term.get_facts(None)
        assert fake.requests[-1].url.path == "/v1/shared/facts"
        fake.queue(200, {**ENTITY})
        await c.long_term.get_entity(ACME)
        assert fake.requests[-1].url.path == f"/v1/shared/entities/{ACME}"


@pytest.mark.parametrize(
    ("sync_cls", "async_cls"),
    [
        (SyncShortTermMemory, ShortTermMemory),
        (SyncLongTermMemory, LongTermMemory),
        (SyncReasoningMemory, ReasoningMemory),
    ],
)
def test_the_sync_facade_has_every_call(sync_cls: type, async_cls: type) -> None:
    calls = {n for n in vars(async_cls) if not n.startswith("_")}
    assert calls and calls <= set(vars(sync_cls))
    for name in calls:
        assert getattr(sync_cls, name).__doc__ == getattr(async_cls, name).__doc__
