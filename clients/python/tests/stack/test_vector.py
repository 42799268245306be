"""Vector search against the real stacks. The production-like stack runs the hashing embedder
(``EMBEDDER=hash:64``): a write without a vector gets the ingestor's, a text searched with
``by_vector=True`` is embedded by the query service, a write with its own vector keeps it and
a search with ``embedding=`` POSTs its vector. Nearest first, thresholds, vectors of another
length never compared, another user's identical writes never found, similar traces, the
400s; the open stack has no embedder."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from uuid import UUID

import pytest

from engram_memory import InvalidRequestError, MemoryClient, MessageRole, SyncMemoryClient
from tests.stack.conftest import forget_later, settings
from tests.stack.test_client import Spy

NewUser = Callable[[str], str]

TEXTS = [
    "book a table at the sushi place",
    "the sushi place was closed on monday",
    "renew the car insurance before june",
]


def hash_embedding(text: str, dims: int = 64) -> list[float]:
    """The stack's embedder (``internal/embed.Hash``) for ASCII text: the lower-cased words
    and their adjacent pairs (weight 0.5), FNV-1a into signed buckets, unit length."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    v = [0.0] * dims

    def add(feature: str, weight: float) -> None:
        h = 0xCBF29CE484222325
        for b in feature.encode():
            h = ((h ^ b) * 0x100000001B3) % 2**64
        v[h % dims] += -weight if h >> 63 else weight

    for i, w in enumerate(words):
        add(w, 1.0)
        if i > 0:
            add(words[i - 1] + " " + w, 0.5)
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


async def test_vector_search_of_messages(new_user: NewUser) -> None:
    sara, liam = new_user("sara"), new_user("liam")
    spy = Spy()
    async with MemoryClient(settings(http_transport=spy)) as c:
        ids: dict[str, list[UUID]] = {sara: [], liam: []}
        for user in (sara, liam):
            for text in TEXTS:
                m = await c.short_term.add_message("s-1", "user", text, user_identifier=user)
                ids[user].append(m.id)
        mine, theirs = ids[sara], ids[liam]
        # Two messages with vectors of their own, of another length than the embedder's.
        near = await c.short_term.add_message(
            "s-1", "user", "the sushi place", user_identifier=sara, embedding=[1.0, 0.0, 0.0]
        )
        far = await c.short_term.add_message(
            "s-2", "user", "sushi place", user_identifier=sara, embedding=[0.0, 1.0, 0.0]
        )
        assert far.embedding == [0.0, 1.0, 0.0]

        # By text, embedded by the query service: sara's three messages of 64 dimensions,
        # the sushi ones first, nearest first; none of liam's identical ones.
        hits = await c.short_term.search_messages(
            "sushi place", by_vector=True, user_identifier=sara
        )
        r = spy.requests[-1]
        assert (r.method, r.url.params["mode"]) == ("GET", "vector")
        assert r.url.params["consistency"] == str(c.consistency_token(sara))
        assert len(hits) == 3, hits
        assert {h.id for h in hits[:2]} == set(mine[:2]) and hits[2].id == mine[2]
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert all(0 <= h.score <= 1 for h in hits) and hits[1].score > hits[2].score
        assert (hits[0].session_id, hits[0].role) == ("s-1", MessageRole.USER)
        # A threshold between the sushi messages and the insurance one drops it.
        cut = (hits[1].score + hits[2].score) / 2
        kept = await c.short_term.search_messages(
            "sushi place", by_vector=True, threshold=cut, user_identifier=sara
        )
        assert [h.id for h in kept] == [h.id for h in hits[:2]]
        one = await c.short_term.search_messages(
            "sushi place", by_vector=True, limit=1, user_identifier=sara
        )
        assert [h.id for h in one] == [hits[0].id]
        theirs_hits = await c.short_term.search_messages(
            "sushi place", by_vector=True, user_identifier=liam
        )
        assert {h.id for h in theirs_hits} == set(theirs)

        # By vector, POSTed: the embedder's own vector of the text finds the same messages
        # in the same order with the same scores.
        by_vec = await c.short_term.search_messages(
            "sushi place", embedding=hash_embedding("sushi place"), user_identifier=sara
        )
        r = spy.requests[-1]
        assert (r.method, list(r.url.params)) == ("POST", ["consistency"])
        assert [h.id for h in by_vec] == [h.id for h in hits]
        assert [h.score for h in by_vec] == pytest.approx([h.score for h in hits], abs=1e-9)

        # A vector of another length is compared with the vectors of that length only.
        three = await c.short_term.search_messages(
            "", embedding=[1.0, 0.0, 0.0], user_identifier=sara
        )
        assert [h.id for h in three] == [near.id, far.id]
        assert [h.score for h in three] == pytest.approx([1.0, 0.5])
        close = await c.short_term.search_messages(
            "", embedding=[1.0, 0.0, 0.0], threshold=0.75, user_identifier=sara
        )
        assert [h.id for h in close] == [near.id]
        in_session = await c.short_term.search_messages(
            "", embedding=[1.0, 0.0, 0.0], session_id="s-2", user_identifier=sara
        )
        assert [(h.id, h.session_id) for h in in_session] == [(far.id, "s-2")]
        assert (
            await c.short_term.search_messages("", embedding=[1.0, 0.0, 0.0], user_identifier=liam)
            == []
        )

        # The default is the full-text search, whatever the vectors.
        words = await c.short_term.search_messages("sushi", user_identifier=sara)
        assert "mode" not in spy.requests[-1].url.params
        assert {h.id for h in words} == {mine[0], mine[1], near.id, far.id}


async def test_vector_search_of_preferences_and_entities(new_user: NewUser) -> None:
    sara, liam = new_user("sara"), new_user("liam")
    async with MemoryClient(settings()) as c:
        food = {}
        for user in (sara, liam):
            p = await c.long_term.add_preference("food", "loves sushi", user_identifier=user)
            food[user] = p.id
            await c.long_term.add_preference("travel", "prefers aisle seats", user_identifier=user)
        own = await c.long_term.add_preference(
            "food", "a vector of my own", user_identifier=sara, embedding=[0.6, 0.8]
        )
        prefs = await c.long_term.search_preferences("sushi", by_vector=True, user_identifier=sara)
        assert [(p.category, p.preference) for p in prefs] == [
            ("food", "loves sushi"),
            ("travel", "prefers aisle seats"),
        ]
        assert prefs[0].id == food[sara] and prefs[0].score > prefs[1].score
        travel = await c.long_term.search_preferences(
            "sushi", category="travel", by_vector=True, user_identifier=sara
        )
        assert [p.category for p in travel] == ["travel"]
        near = await c.long_term.search_preferences(
            "sushi", by_vector=True, threshold=prefs[0].score, user_identifier=sara
        )
        assert [p.id for p in near] == [food[sara]]
        mine = await c.long_term.search_preferences("", embedding=[3, 4], user_identifier=sara)
        assert [p.id for p in mine] == [own.id] and mine[0].score == pytest.approx(1.0)
        assert (
            await c.long_term.search_preferences("", embedding=[3, 4], user_identifier=liam) == []
        )

        sushi = {}
        for user in (sara, liam):
            e = await c.long_term.add_entity(
                "Sushi Place",
                "ORGANIZATION",
                description="the sushi place by the station",
                user_identifier=user,
            )
            sushi[user] = e.id
        acme = await c.long_term.add_entity("Acme Insurance", "ORGANIZATION", user_identifier=sara)
        ann = await c.long_term.add_entity(
            "Ann", "PERSON", user_identifier=sara, embedding=[0.0, 1.0]
        )
        ents = await c.long_term.search_entities(
            "sushi place", by_vector=True, user_identifier=sara
        )
        assert [e.id for e in ents] == [sushi[sara], acme.id]
        assert ents[0].description == "the sushi place by the station" and ents[0].score > 0.5
        people = await c.long_term.search_entities(
            "sushi place", entity_types=["PERSON"], by_vector=True, user_identifier=sara
        )
        assert people == []  # Ann's vector has another length
        both = await c.long_term.search_entities(
            "",
            entity_types=["ORGANIZATION", "PERSON"],
            embedding=[0.1, 1.0],
            user_identifier=sara,
        )
        assert [(e.id, e.type) for e in both] == [(ann.id, "PERSON")]
        theirs = await c.long_term.search_entities(
            "sushi place", by_vector=True, user_identifier=liam
        )
        assert [e.id for e in theirs] == [sushi[liam]]


async def test_similar_traces(new_user: NewUser) -> None:
    sara, liam = new_user("sara"), new_user("liam")
    async with MemoryClient(settings()) as c:
        done = {}
        for user in (sara, liam):
            t = await c.reasoning.start_trace(
                "s-1", "find a sushi place for friday", user_identifier=user
            )
            await c.reasoning.complete_trace(t.id, outcome="booked", success=True)
            done[user] = t.id
        ins = await c.reasoning.start_trace(
            "s-1", "compare car insurance offers", user_identifier=sara
        )
        await c.reasoning.complete_trace(ins.id, outcome="compared", success=True)
        still_open = await c.reasoning.start_trace(
            "s-2", "find a sushi place for saturday", user_identifier=sara
        )
        own = await c.reasoning.start_trace(
            "s-3", "a task of my own", user_identifier=sara, embedding=[1.0, 0.0]
        )
        assert own.task_embedding == [1.0, 0.0]
        await c.reasoning.complete_trace(own.id, success=True)

        # The library's defaults: successful traces only, scores of 0.7 and up.
        (hit,) = await c.reasoning.get_similar_traces("find a sushi place", user_identifier=sara)
        assert (hit.id, hit.session_id, hit.task, hit.outcome, hit.success) == (
            done[sara],
            "s-1",
            "find a sushi place for friday",
            "booked",
            True,
        )
        assert 0.7 <= hit.score <= 1 and hit.metadata == {} and hit.steps == []
        assert hit.started_at is not None and hit.completed_at is not None
        every = await c.reasoning.get_similar_traces(
            "find a sushi place", success_only=False, threshold=0, user_identifier=sara
        )
        assert {t.id for t in every[:2]} == {done[sara], still_open.id}
        assert [t.id for t in every[2:]] == [ins.id]  # the 2-dimensional one is not compared
        assert [t.score for t in every] == sorted((t.score for t in every), reverse=True)
        first = await c.reasoning.get_similar_traces(
            "find a sushi place", limit=1, success_only=False, threshold=0, user_identifier=sara
        )
        assert [t.id for t in first] == [every[0].id]
        by_vec = await c.reasoning.get_similar_traces(
            "find a sushi place",
            embedding=hash_embedding("find a sushi place"),
            user_identifier=sara,
        )
        assert [t.id for t in by_vec] == [hit.id]
        assert by_vec[0].score == pytest.approx(hit.score, abs=1e-9)
        mine = await c.reasoning.get_similar_traces("", embedding=[1, 0.1], user_identifier=sara)
        assert [t.id for t in mine] == [own.id]
        theirs = await c.reasoning.get_similar_traces("find a sushi place", user_identifier=liam)
        assert [t.id for t in theirs] == [done[liam]]


def test_the_sync_facade_searches_by_vector(new_user: NewUser) -> None:
    sara = new_user("sara")
    with SyncMemoryClient(settings()) as c:
        m = c.short_term.add_message("s", "user", "synchronous sushi", user_identifier=sara)
        hits = c.short_term.search_messages("sushi", by_vector=True, user_identifier=sara)
        assert [h.id for h in hits] == [m.id]
        t = c.reasoning.start_trace("s", "a synchronous task", user_identifier=sara)
        c.reasoning.complete_trace(t.id, success=True)
        assert [
            x.id for x in c.reasoning.get_similar_traces("synchronous task", user_identifier=sara)
        ] == [t.id]


async def test_vector_search_refusals(client: MemoryClient, new_user: NewUser) -> None:
    sara = new_user("sara")
    zero = [0.0, 0.0, 0.0]
    for call, field in (
        (client.short_term.search_messages("", embedding=zero, user_identifier=sara), "embedding"),
        (
            client.long_term.search_entities("", embedding=[1.0] * 4097, user_identifier=sara),
            "embedding",
        ),
        (client.reasoning.get_similar_traces("", embedding=[], user_identifier=sara), "embedding"),
        (
            client.short_term.add_message("s", "user", "x", user_identifier=sara, embedding=zero),
            "embedding",
        ),
        (
            client.long_term.add_preference("c", "p", user_identifier=sara, embedding=[]),
            "embedding",
        ),
        (client.long_term.add_entity("A", "T", user_identifier=sara, embedding=zero), "embedding"),
        (client.reasoning.start_trace("s", "t", user_identifier=sara, embedding=zero), "embedding"),
        (
            client.short_term.search_messages(
                "x", by_vector=True, threshold=2, user_identifier=sara
            ),
            "threshold",
        ),
        # A threshold is for vector searches: a full-text score has no fixed scale.
        (
            client.long_term.search_preferences("x", threshold=0.5, user_identifier=sara),
            "threshold",
        ),
        (client.reasoning.get_similar_traces("* ()", user_identifier=sara), "q"),
    ):
        with pytest.raises(InvalidRequestError) as e:
            await call
        assert (e.value.status, e.value.field) == (400, field), e.value

    # The open stack has no embedder: a text cannot be searched by vector there, a vector can.
    token = uuid.uuid4().hex
    vec = [int(token[i : i + 2], 16) + 1.0 for i in range(0, 14, 2)]  # 7 dimensions
    async with MemoryClient(settings(open_stack=True, multi_tenant=False)) as c:
        for call in (
            c.short_term.search_messages("sushi", by_vector=True),
            c.reasoning.get_similar_traces("sushi"),
        ):
            with pytest.raises(InvalidRequestError) as e:
                await call
            assert (e.value.status, e.value.field) == (400, "mode"), e.value
        p = await c.long_term.add_preference("shared", f"vector {token}", embedding=vec)
        forget_later("id", str(p.id))
        hits = await c.long_term.search_preferences("", embedding=vec, limit=1)
        assert [h.id for h in hits] == [p.id] and hits[0].score == pytest.approx(1.0)
    # A vector search is a read: a read-only key may do it.
    async with MemoryClient(settings(credential="readonly")) as c:
        assert await c.long_term.search_entities("", embedding=[1.0], user_identifier=sara) == []
