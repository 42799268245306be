"""Entities, relationships, merges, facts, mentions and the full-text searches against the
real stacks: each write read back with the client's consistency token, the fields checked,
the 404s and 400s the services answer, and per-user isolation."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from engram_memory import (
    EntityRef,
    FateStatus,
    InvalidRequestError,
    MemoryClient,
    MessageRole,
    NotFoundError,
    RejectedError,
    SyncMemoryClient,
    ToolCallStatus,
)
from engram_memory._ids import entity_id
from tests.stack.conftest import forget_later, settings
from tests.stack.test_client import Spy

NewUser = Callable[[str], str]


async def test_entities_relationships_mentions_and_merges(new_user: NewUser) -> None:
    sara, liam = new_user("sara"), new_user("liam")
    spy = Spy()
    async with MemoryClient(settings(http_transport=spy)) as c:

        def token_sent() -> str:
            return str(spy.requests[-1].url.params.get("consistency"))

        m = await c.short_term.add_message("s-ent", "user", "Bob joined Acme", user_identifier=sara)
        t = await c.reasoning.start_trace("s-ent", "staff Acme", user_identifier=sara)
        acme = await c.long_term.add_entity(
            "Acme",
            "ORGANIZATION",
            subtype="COMPANY",
            description="A maker of everything",
            aliases=["Acme Inc"],
            attributes={"founded": 1949},
            confidence=0.8,
            user_identifier=sara,
            message_ids=[m.id],
            trace_ids=[t.id],
        )
        # The client derives entity ids as the ingestor does.
        assert acme.id == entity_id(sara, "Acme", "ORGANIZATION")
        got = await c.long_term.get_entity(acme.id or "")  # the owner is remembered
        assert token_sent() == str(c.consistency_token(sara))
        assert got is not None
        assert (got.id, got.name, got.type, got.subtype, got.description) == (
            acme.id,
            "Acme",
            "ORGANIZATION",
            "COMPANY",
            "A maker of everything",
        )
        assert (got.aliases, got.attributes, got.confidence) == (
            ["Acme Inc"],
            {"founded": 1949},
            0.8,
        )
        assert got.created_at is not None and got.recorded_at is not None
        assert got.resolved_from is None and got.merged_ids == []

        bob = await c.long_term.add_entity("Bob", "PERSON", user_identifier=sara)
        since = datetime(2020, 1, 1, tzinfo=UTC)
        works = await c.long_term.add_relationship(
            bob, acme, "WORKS_AT", description="since 2020", confidence=0.9, valid_from=since
        )
        assert works.receipt is not None and works.receipt.user_identifier == sara
        knows = await c.long_term.add_relationship(
            EntityRef(name="Ann", type="PERSON"), bob, "KNOWS", user_identifier=sara
        )
        ann_id = entity_id(sara, "Ann", "PERSON")
        assert (knows.source_id, knows.target_id) == (ann_id, bob.id)

        related = await c.long_term.get_related_entities(acme, depth=2)
        assert token_sent() == str(c.consistency_token(sara))
        assert related.entity.id == acme.id and not related.truncated
        assert [(r.entity.name, r.depth) for r in related.related] == [("Bob", 1), ("Ann", 2)]
        near, far = related.related
        assert near.relationship is not None
        assert (near.relationship.id, near.relationship.type, near.relationship.direction) == (
            works.id,
            "WORKS_AT",
            "in",
        )
        assert (near.relationship.source_id, near.relationship.target_id) == (bob.id, acme.id)
        assert near.relationship.description == "since 2020"
        assert (near.relationship.confidence, near.relationship.valid_from) == (0.9, since)
        assert [(p.id, p.direction) for p in far.path] == [(works.id, "in"), (knows.id, "in")]
        assert far.entity.id == ann_id
        one_hop = await c.long_term.get_related_entities(acme)
        assert [r.entity.name for r in one_hop.related] == ["Bob"]
        typed = await c.long_term.get_related_entities(bob, relationship_types=["KNOWS"])
        assert [r.entity.id for r in typed.related] == [ann_id]
        outgoing = await c.long_term.get_related_entities(bob.id or "", direction="out")
        assert [r.entity.id for r in outgoing.related] == [acme.id]
        cut = await c.long_term.get_related_entities(bob, limit=1)
        assert len(cut.related) == 1 and cut.truncated

        by_alias = await c.long_term.get_entity_by_name("Acme Inc", user_identifier=sara)
        assert by_alias is not None and by_alias.id == acme.id
        exact = await c.long_term.get_entity_by_name(
            "Ann", entity_type="PERSON", user_identifier=sara
        )
        assert exact is not None and exact.id == ann_id
        assert (
            await c.long_term.get_entity_by_name("Ann", entity_type="ORG", user_identifier=sara)
            is None
        )
        assert await c.long_term.get_entity_by_name("Zed", user_identifier=sara) is None
        listed = await c.long_term.list_entities(user_identifier=sara)
        assert [e.name for e in listed] == ["Acme", "Ann", "Bob"]
        people = await c.long_term.list_entities(entity_type="PERSON", user_identifier=sara)
        assert [e.name for e in people] == ["Ann", "Bob"]
        assert len(await c.long_term.list_entities(limit=2, user_identifier=sara)) == 2

        mentions = await c.long_term.get_entity_mentions(acme.id or "")
        assert [(x.id, x.session_id, x.conversation_id) for x in mentions.messages] == [
            (m.id, "s-ent", m.conversation_id)
        ]
        assert mentions.messages[0].role is MessageRole.USER
        assert [x.id for x in mentions.traces] == [t.id] and not mentions.truncated
        of_message = await c.long_term.get_entities_from_message(m.id)
        assert [e.id for e in of_message.entities] == [acme.id]
        assert of_message.message_id == str(m.id)
        of_trace = await c.reasoning.get_trace_entities(t.id)
        assert [e.id for e in of_trace.entities] == [acme.id]

        # A merge: the survivor answers for the merged id and keeps its relationships.
        robert = await c.long_term.add_entity("Robert", "PERSON", user_identifier=sara)
        await c.long_term.add_relationship(robert, acme, "ADVISES")
        merged = await c.long_term.merge_duplicate_entities(robert.id or "", bob.id or "")
        assert merged.user_identifier == sara
        assert (await c.wait_applied(merged)).status is FateStatus.APPLIED
        survivor = await c.long_term.get_entity(robert.id or "")
        assert survivor is not None and survivor.id == bob.id
        assert survivor.resolved_from == robert.id
        assert "Robert" in survivor.aliases and survivor.merged_ids == [robert.id]
        advises = await c.long_term.get_related_entities(bob, relationship_types=["ADVISES"])
        assert [r.entity.id for r in advises.related] == [acme.id]
        found = await c.long_term.get_entity_by_name("Robert", user_identifier=sara)
        assert found is not None and found.id == bob.id

        # Unknown things: None for the entity, 404 for the reads about one.
        ghost = str(uuid.uuid4())
        assert await c.long_term.get_entity(ghost, user_identifier=sara) is None
        for call in (
            c.long_term.get_related_entities(ghost, user_identifier=sara),
            c.long_term.get_entity_mentions(ghost, user_identifier=sara),
            c.long_term.get_entities_from_message(ghost, user_identifier=sara),
            c.reasoning.get_trace_entities(ghost, user_identifier=sara),
        ):
            with pytest.raises(NotFoundError) as nf:
                await call
            assert nf.value.status == 404 and isinstance(nf.value, LookupError)
        # Bad parameters: 400 naming them, from the query service and from the ingestor.
        for bad, field in (
            (c.long_term.get_related_entities(acme, depth=4), "depth"),
            (c.long_term.get_related_entities(acme, direction="sideways"), "direction"),
            (c.long_term.get_entity_mentions("x" * 257, user_identifier=sara), "entity_id"),
            (c.long_term.add_relationship(bob, bob, "SELF"), "target"),
            (c.long_term.add_entity("", "PERSON", user_identifier=sara), "name"),
            (
                c.long_term.add_entity("Eve", "PERSON", confidence=2.0, user_identifier=sara),
                "confidence",
            ),
            (c.long_term.merge_duplicate_entities(bob.id or "", bob.id or ""), "target_id"),
        ):
            with pytest.raises(InvalidRequestError) as e:
                await bad
            assert (e.value.status, e.value.field) == (400, field), e.value

        # Another user sees none of it, and may not merge it.
        assert await c.long_term.get_entity(acme.id or "", user_identifier=liam) is None
        assert await c.long_term.list_entities(user_identifier=liam) == []
        with pytest.raises(NotFoundError):
            await c.long_term.get_related_entities(acme.id or "", user_identifier=liam)
        with pytest.raises(NotFoundError):
            await c.long_term.get_entities_from_message(m.id, user_identifier=liam)
        foreign = await c.long_term.merge_duplicate_entities(
            acme.id or "", ann_id, user_identifier=liam
        )
        with pytest.raises(RejectedError):
            await c.wait_applied(foreign)


async def test_facts(client: MemoryClient, new_user: NewUser) -> None:
    sara, liam = new_user("sara"), new_user("liam")
    now = datetime.now(UTC)
    works = await client.long_term.add_fact(
        "Bob", "works_at", "Acme", confidence=0.9, metadata={"source": "chat"}, user_identifier=sara
    )
    likes = await client.long_term.add_fact(
        "Bob",
        "likes",
        "tea",
        confidence=0.5,
        valid_from=now - timedelta(days=10),
        valid_until=now - timedelta(days=5),
        user_identifier=sara,
    )
    await client.long_term.add_fact("Ann", "likes", "coffee", user_identifier=sara)
    about = await client.long_term.get_facts_about("Bob", user_identifier=sara)
    assert [f.id for f in about] == [works.id, likes.id]  # highest confidence first
    first = about[0]
    assert (first.as_triple, first.confidence, first.metadata) == (
        ("Bob", "works_at", "Acme"),
        0.9,
        {"source": "chat"},
    )
    assert first.valid_from is not None and first.valid_until is None
    assert works.receipt is not None and first.recorded_seq == works.receipt.sequence
    assert first.recorded_at is not None
    assert about[1].valid_until is not None and likes.valid_until is not None
    assert abs(about[1].valid_until - likes.valid_until) < timedelta(milliseconds=1)
    preds = await client.long_term.get_facts(sara, predicate="likes")
    assert sorted(f.object for f in preds) == ["coffee", "tea"]
    was = await client.long_term.get_facts(sara, subject="Bob", as_of=now - timedelta(days=7))
    assert [f.id for f in was] == [likes.id]
    assert await client.long_term.get_facts(sara, known_at=datetime(2000, 1, 1)) == []
    assert len(await client.long_term.get_facts(sara, limit=2)) == 2
    assert await client.long_term.get_facts(liam) == []
    with pytest.raises(InvalidRequestError) as e:
        await client.long_term.add_fact(
            "Bob", "p", "o", valid_from=now, valid_until=now, user_identifier=sara
        )
    assert e.value.field == "valid_until"
    with pytest.raises(InvalidRequestError) as e:
        await client.long_term.get_facts(sara, subject="s" * 1025)
    assert (e.value.status, e.value.field) == (400, "subject")


async def test_full_text_search(new_user: NewUser) -> None:
    sara, liam = new_user("sara"), new_user("liam")
    spy = Spy()
    async with MemoryClient(settings(http_transport=spy)) as c:
        m1 = await c.short_term.add_message(
            "s-1", "user", "Find me a healthcare team", user_identifier=sara
        )
        m2 = await c.short_term.add_message(
            "s-2", "user", "healthcare consultants, healthcare only", user_identifier=sara
        )
        await c.short_term.add_message("s-1", "user", "nothing to see", user_identifier=sara)
        theirs = await c.short_term.add_message(
            "s-1", "user", "Find me a healthcare team", user_identifier=liam
        )
        hits = await c.short_term.search_messages("healthcare", user_identifier=sara)
        assert spy.requests[-1].url.params["consistency"] == str(c.consistency_token(sara))
        assert {h.id for h in hits} == {m1.id, m2.id} and theirs.id not in {h.id for h in hits}
        assert hits[0].id == m2.id and hits[0].score >= hits[1].score > 0  # more of the word
        assert (hits[0].session_id, hits[0].content) == ("s-2", m2.content)
        in_session = await c.short_term.search_messages(
            "healthcare", session_id="s-1", user_identifier=sara
        )
        assert [h.id for h in in_session] == [m1.id]
        assert (
            len(await c.short_term.search_messages("healthcare", limit=1, user_identifier=sara))
            == 1
        )
        assert await c.short_term.search_messages("absent", user_identifier=sara) == []

        p = await c.long_term.add_preference(
            "consultants", "Senior on healthcare clients", context="Q3", user_identifier=sara
        )
        await c.long_term.add_preference("food", "healthcare canteen", user_identifier=sara)
        prefs = await c.long_term.search_preferences(
            "healthcare", category="consultants", user_identifier=sara
        )
        assert [(x.id, x.context) for x in prefs] == [(p.id, "Q3")] and prefs[0].score > 0
        assert len(await c.long_term.search_preferences("healthcare", user_identifier=sara)) == 2
        assert (
            await c.long_term.search_preferences("healthcare", category="x", user_identifier=sara)
            == []
        )

        org = await c.long_term.add_entity(
            "Acme", "ORGANIZATION", description="healthcare maker", user_identifier=sara
        )
        person = await c.long_term.add_entity(
            "Healthcare Hank", "PERSON", description="a healthcare consultant", user_identifier=sara
        )
        ents = await c.long_term.search_entities("healthcare", user_identifier=sara)
        assert {e.id for e in ents} == {org.id, person.id}
        orgs = await c.long_term.search_entities(
            "healthcare", entity_types=["ORGANIZATION"], user_identifier=sara
        )
        assert [(e.id, e.type, e.description) for e in orgs] == [
            (org.id, "ORGANIZATION", "healthcare maker")
        ]
        assert orgs[0].created_at is not None and orgs[0].score > 0
        both = await c.long_term.search_entities(
            "healthcare", entity_types=["ORGANIZATION", "PERSON"], user_identifier=sara
        )
        # One search per type, merged by score (which other tenants' writes may move
        # between the two searches: only the order within the answer is certain).
        assert {e.id for e in both} == {org.id, person.id}
        assert [e.score for e in both] == sorted((e.score for e in both), reverse=True)

        done = await c.reasoning.start_trace("s-1", "staff healthcare", user_identifier=sara)
        s1 = await c.reasoning.add_step(done.id, thought="search healthcare consultants")
        tool = f"py-search-{uuid.uuid4().hex[:8]}"
        forget_later("tool", tool)
        await c.reasoning.record_tool_call(s1.id, tool, {"q": "healthcare"})
        await c.reasoning.complete_trace(done.id, outcome="found", success=True)
        open_trace = await c.reasoning.start_trace("s-1", "other", user_identifier=sara)
        s2 = await c.reasoning.add_step(open_trace.id, observation="healthcare again")
        steps = await c.reasoning.search_steps("healthcare", user_identifier=sara)
        assert [s.id for s in steps] == [s1.id]  # the library's default: successful traces only
        (hit,) = steps
        assert (hit.trace_id, hit.session_id, hit.task, hit.outcome, hit.success) == (
            done.id,
            "s-1",
            "staff healthcare",
            "found",
            True,
        )
        assert hit.step_number == 1 and hit.thought == "search healthcare consultants"
        assert [(x.tool_name, x.status) for x in hit.tool_calls] == [(tool, ToolCallStatus.SUCCESS)]
        every = await c.reasoning.search_steps(
            "healthcare", success_only=False, user_identifier=sara
        )
        assert {s.id for s in every} == {s1.id, s2.id}
        assert await c.reasoning.search_steps("healthcare", user_identifier=liam) == []

        for bad in (
            c.short_term.search_messages("* ()", user_identifier=sara),
            c.long_term.search_preferences("x" * 1001, user_identifier=sara),
            c.long_term.search_entities("", user_identifier=sara),
            c.reasoning.search_steps("\x00", user_identifier=sara),
        ):
            with pytest.raises(InvalidRequestError) as e:
                await bad
            assert (e.value.status, e.value.field) == (400, "q"), e.value


def test_the_sync_facade_for_entities_and_search(new_user: NewUser) -> None:
    sara = new_user("sara")
    with SyncMemoryClient(settings()) as c:
        acme = c.long_term.add_entity("Acme", "ORGANIZATION", user_identifier=sara)
        rel = c.long_term.add_relationship(EntityRef(name="Bob", type="PERSON"), acme, "WORKS_AT")
        related = c.long_term.get_related_entities(acme)
        assert [
            (r.entity.name, r.relationship.id if r.relationship else None) for r in related.related
        ] == [("Bob", rel.id)]
        assert c.long_term.get_entity_by_name("Bob", user_identifier=sara) is not None
        c.long_term.add_fact("Bob", "works_at", "Acme", user_identifier=sara)
        assert [f.object for f in c.long_term.get_facts(sara)] == ["Acme"]
        assert [e.id for e in c.long_term.search_entities("acme", user_identifier=sara)] == [
            acme.id
        ]
        m = c.short_term.add_message("s", "user", "synchronous words", user_identifier=sara)
        assert [h.id for h in c.short_term.search_messages("words", user_identifier=sara)] == [m.id]
        with pytest.raises(NotFoundError):
            c.long_term.get_entity_mentions(str(uuid.uuid4()), user_identifier=sara)


async def test_the_shared_tenants_entities_and_facts() -> None:
    token = uuid.uuid4().hex[:10]
    name = f"Shared Acme {token}"
    async with MemoryClient(settings(open_stack=True, multi_tenant=False)) as c:
        e = await c.long_term.add_entity(name, "ORGANIZATION", description=f"shared {token}")
        forget_later("id", e.id or "")
        assert e.id == entity_id(None, name, "ORGANIZATION") and e.receipt is not None
        assert e.receipt.user_identifier is None
        got = await c.long_term.get_entity(e.id or "")
        assert got is not None and got.name == name
        assert [h.id for h in await c.long_term.search_entities(token)] == [e.id]
        f = await c.long_term.add_fact(name, "made_in", token)
        forget_later("id", str(f.id))
        assert [x.id for x in await c.long_term.get_facts(None, subject=name)] == [f.id]
    # On the production-like stack the shared tenant is not readable.
    async with MemoryClient(settings(multi_tenant=False)) as c:
        with pytest.raises(NotFoundError):
            await c.long_term.get_facts(None)
