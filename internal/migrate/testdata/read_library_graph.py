"""Answers neo4j-agent-memory's own reads on a graph, without writing to it.

Used by internal/migrate's tests on the library's source graph and on the graph Engram
projected from the imported log: the two answers are compared call by call. The memory classes
are built on the library's Neo4jClient directly, not through MemoryClient.connect(), which
would create the library's schema (constraints, indexes, ontology nodes) in the database read.
It runs with every release the import supports (0.4 to 0.8); a read a release lacks
(list_conversations before 0.5) is left out of its answers.

usage: python read_library_graph.py URI USER PASSWORD MANIFEST_JSON
Prints one JSON object: call -> answer.
"""

import asyncio
import json
import sys
from datetime import timedelta

from pydantic import SecretStr

from neo4j_agent_memory.config.settings import Neo4jConfig
from neo4j_agent_memory.graph.client import Neo4jClient
from neo4j_agent_memory.memory.long_term import LongTermMemory
from neo4j_agent_memory.memory.reasoning import ReasoningMemory
from neo4j_agent_memory.memory.short_term import ShortTermMemory
from neo4j_agent_memory.memory.users import UserMemory
from neo4j_agent_memory.schema.models import EntityRef


def t(v):
    return v.isoformat() if v is not None else None


def pref(p):
    return {"id": str(p.id), "category": p.category, "preference": p.preference, "context": p.context,
            "confidence": p.confidence, "created_at": t(p.created_at), "metadata": p.metadata}


def prefs(ps):
    return sorted((pref(p) for p in ps), key=lambda p: p["id"])


async def main(uri, user, password, manifest):
    m = json.loads(manifest)
    client = Neo4jClient(Neo4jConfig(uri=uri, username=user, password=SecretStr(password), database="neo4j"))
    await client.connect()
    st, lt, rs, us = ShortTermMemory(client), LongTermMemory(client), ReasoningMemory(client), UserMemory(client)
    out = {}
    try:
        for u in m["users"]:
            got = await us.get_user(u)
            out[f"get_user({u})"] = {"id": str(got.id), "identifier": got.identifier, "attributes": got.attributes}

            out[f"get_preferences_for({u})"] = prefs(await lt.get_preferences_for(u))
            every = await lt.get_preferences_for(u, active_only=False)
            out[f"get_preferences_for({u}, active_only=False)"] = prefs(every)
            # Every boundary of every preference's validity, and a millisecond either side.
            rows = await client.execute_read(
                "MATCH (:User {identifier: $u})-[:HAS_PREFERENCE]->(p:Preference) "
                "RETURN p.valid_from AS f, p.valid_until AS t", {"u": u})
            instants = set()
            for r in rows:
                for v in (r["f"], r["t"]):
                    if v is not None:
                        v = v.to_native()
                        instants.update({v - timedelta(milliseconds=1), v, v + timedelta(milliseconds=1)})
            for at in sorted(instants):
                for active in (True, False):
                    out[f"get_preferences_for({u}, active_only={active}, as_of={at.isoformat()})"] = prefs(
                        await lt.get_preferences_for(u, active_only=active, as_of=at))
            for ref in (EntityRef(name="Healthcare", type="Industry"), EntityRef(name="Healthcare"),
                        EntityRef(name="Finance")):
                out[f"get_preferences_for({u}, applies_to={ref.name}/{ref.type})"] = prefs(
                    await lt.get_preferences_for(u, applies_to=ref, active_only=False))

            if hasattr(st, "list_conversations"):  # 0.5 and later
                convs = await st.list_conversations(user_identifier=u)
                out[f"list_conversations({u})"] = [
                    {"id": str(c.id), "session_id": c.session_id, "title": c.title,
                     "created_at": t(c.created_at), "updated_at": t(c.updated_at)} for c in convs]
            for s in m["sessions"].get(u, []):
                # Not scoped to a user, so asked per session (the session ids are the test's own).
                out[f"list_sessions(prefix={s})"] = [
                    {"session_id": x.session_id, "title": x.title, "created_at": t(x.created_at),
                     "updated_at": t(x.updated_at), "message_count": x.message_count,
                     "first_message_preview": x.first_message_preview,
                     "last_message_preview": x.last_message_preview}
                    for x in await st.list_sessions(prefix=s)]
                c = await st.get_conversation(s)
                out[f"get_conversation({s})"] = {
                    "id": str(c.id), "session_id": c.session_id, "title": c.title,
                    "messages": [{"id": str(x.id), "role": x.role.value, "content": x.content,
                                  "created_at": t(x.created_at), "metadata": x.metadata} for x in c.messages]}
                traces = await rs.get_session_traces(s)
                out[f"get_session_traces({s})"] = sorted(str(x.id) for x in traces)
            for tid in m["traces"].get(u, []):
                tr = await rs.get_trace(tid)
                out[f"get_trace({tid})"] = {
                    "id": str(tr.id), "session_id": tr.session_id, "task": tr.task, "outcome": tr.outcome,
                    "success": tr.success, "started_at": t(tr.started_at), "completed_at": t(tr.completed_at),
                    "steps": [{"id": str(s.id), "step_number": s.step_number, "thought": s.thought,
                               "action": s.action, "observation": s.observation,
                               "tool_calls": sorted(({"id": str(c.id), "tool_name": c.tool_name,
                                                      "arguments": c.arguments, "result": c.result,
                                                      "status": c.status.value, "duration_ms": c.duration_ms,
                                                      "error": c.error} for c in s.tool_calls),
                                                    key=lambda c: c["id"])}
                              for s in tr.steps]}
        # get_trace of 0.4 shows no tool calls (it groups them by a step_id property that its
        # record_tool_call does not write); the tools' aggregates show them in every release.
        for name in m.get("tools", []):
            out[f"get_tool_stats({name})"] = [
                {"name": x.name, "total_calls": x.total_calls, "successful_calls": x.successful_calls,
                 "failed_calls": x.failed_calls, "success_rate": x.success_rate,
                 "avg_duration_ms": x.avg_duration_ms} for x in await rs.get_tool_stats(name)]
    finally:
        await client.close()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
