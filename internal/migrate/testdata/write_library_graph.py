"""Writes a graph with neo4j-agent-memory's own API, as a user of the library would.

Used by internal/migrate's tests as the source of `memctl import`. Embeddings, extraction,
resolution and the other network-backed layers are switched off, so nothing but the given
Neo4j is contacted. The same script runs with every release the import supports (0.4 to 0.8),
which write the same graph with it. Prints one JSON object on stdout: the identifiers, session ids and ids the
tests ask about, and the entries they expect the import to report.

usage: python write_library_graph.py URI USER PASSWORD SUFFIX
"""

import asyncio
import json
import sys

from neo4j_agent_memory import (
    EmbeddingConfig,
    ExtractionConfig,
    MemoryClient,
    MemoryConfig,
    MemorySettings,
    Neo4jConfig,
    ResolutionConfig,
)
from neo4j_agent_memory.config.settings import EmbeddingProvider, ExtractorType, ResolverStrategy
from neo4j_agent_memory.schema.models import EntityRef

# A pause between writes whose times the tests compare: the library takes every time from the
# database clock (datetime()), and distinct times make the as_of boundaries meaningful.
TICK = 0.02


def settings(uri, user, password):
    return MemorySettings(
        neo4j=Neo4jConfig(uri=uri, username=user, password=password),
        # "custom" without an embedder object builds no embedder at all.
        embedding=EmbeddingConfig(provider=EmbeddingProvider.CUSTOM),
        extraction=ExtractionConfig(extractor_type=ExtractorType.NONE),
        resolution=ResolutionConfig(strategy=ResolverStrategy.NONE),
        memory=MemoryConfig(message_embedding_enabled=False, trace_embedding_enabled=False),
        backend="bolt",
    )


async def tick():
    await asyncio.sleep(TICK)


async def main(uri, user, password, suffix):
    sara = f"sara+{suffix}@omg.com"
    liam = f"liam+{suffix}@omg.com"
    out = {"users": [sara, liam], "sessions": {}, "traces": {}, "preferences": {}}
    async with MemoryClient(settings(uri, user, password)) as c:
        st, lt, rs = c.short_term, c.long_term, c.reasoning

        await c.users.upsert_user(identifier=sara, attributes={"role": "manager", "team": "eng"})
        await tick()
        # The library keeps stored attributes when upserted with {} (coalesce of null).
        await c.users.upsert_user(identifier=sara, attributes={})
        await c.users.upsert_user(identifier=liam)
        await tick()

        s1, s2, s3 = f"s1-{suffix}", f"s2-{suffix}", f"s3-{suffix}"
        out["sessions"] = {sara: [s1, s2], liam: [s3]}
        await st.add_message(s1, "user", "Hello, I manage a healthcare team.", user_identifier=sara,
                             metadata={"channel": "web", "n": 1})
        await tick()
        # An assistant message with empty content: the library stores it as it is.
        await st.add_message(s1, "assistant", "", user_identifier=sara)
        await tick()
        await st.add_message(s1, "user", "Reports should be short.", user_identifier=sara)
        await tick()
        await st.add_message(s2, "system", "You are concise.", user_identifier=sara)
        await tick()
        await st.add_message(s3, "user", "Bonjour", user_identifier=liam)
        await tick()
        # A conversation without a user: Engram cannot say whose it is.
        orphan = f"orphan-{suffix}"
        out["orphan_session"] = orphan
        m = await st.add_message(orphan, "user", "nobody's message")
        out["orphan_message"] = str(m.id)
        await tick()

        healthcare = EntityRef(name="Healthcare", type="Industry")
        p1 = await lt.add_preference("format", "bullet points", user_identifier=sara,
                                     applies_to=[healthcare], context="reports", confidence=0.9,
                                     metadata={"source": "chat"})
        await tick()
        p2 = await lt.add_preference("format", "one short paragraph", user_identifier=sara,
                                     applies_to=[healthcare])
        await tick()
        await lt.supersede_preference(p1.id, p2.id)
        await tick()
        p3 = await lt.add_preference("format", "a table", user_identifier=sara,
                                     applies_to=[healthcare, EntityRef(name="Finance")])
        await tick()
        await lt.supersede_preference(p2.id, p3.id)
        await tick()
        p4 = await lt.add_preference("tone", "formal", user_identifier=sara)
        await tick()
        # Superseded twice: Engram keeps a linear chain, so the second supersede is reported.
        q1 = await lt.add_preference("language", "English", user_identifier=liam)
        await tick()
        q2 = await lt.add_preference("language", "French", user_identifier=liam)
        await tick()
        q3 = await lt.add_preference("language", "German", user_identifier=liam)
        await tick()
        await lt.supersede_preference(q1.id, q2.id)
        await tick()
        await lt.supersede_preference(q1.id, q3.id)
        await tick()
        out["preferences"] = {
            "p1": str(p1.id), "p2": str(p2.id), "p3": str(p3.id), "p4": str(p4.id),
            "q1": str(q1.id), "q2": str(q2.id), "q3": str(q3.id),
        }
        out["second_supersede"] = [str(q1.id), str(q3.id)]

        tool_a, tool_b = f"search-{suffix}", f"calc-{suffix}"
        out["tools"] = [tool_a, tool_b]
        t1 = await rs.start_trace(s1, "write the weekly report", user_identifier=sara,
                                  metadata={"agent": "reporter"})
        await tick()
        step1 = await rs.add_step(t1.id, thought="find the numbers", action="search")
        await tick()
        await rs.record_tool_call(step1.id, tool_a, {"q": "weekly numbers", "k": 3},
                                  result={"hits": [1, 2, 3]}, duration_ms=120)
        await tick()
        await rs.record_tool_call(step1.id, tool_b, {"expr": "1/0"}, status="error",
                                  error="division by zero", duration_ms=5)
        await tick()
        step2 = await rs.add_step(t1.id, thought="summarise", observation="three hits")
        await tick()
        await rs.record_tool_call(step2.id, tool_b, {}, result="42")
        await tick()
        await rs.complete_trace(t1.id, outcome="report written", success=True)
        await tick()
        t2 = await rs.start_trace(s3, "translate", user_identifier=liam)
        await tick()
        await rs.add_step(t2.id, thought="which language?")
        await tick()
        out["traces"] = {sara: [str(t1.id)], liam: [str(t2.id)]}

        # A node of a kind Engram does not model.
        await lt.add_fact("Sara", "works_in", "Healthcare")
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
