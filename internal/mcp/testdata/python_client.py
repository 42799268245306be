"""A third-party MCP client for Engram's MCP server: the Python `mcp` package from PyPI.

It starts the server over stdio as a host does, lists its tools, resources and prompts, calls
tools, reads back what it wrote, and prints what it saw as one JSON object for the Go test to
check. It uses the API the package's 1.x and 2.x releases share (ClientSession over stdio_client,
the initialize handshake), and reads results in their wire form (model_dump by alias), so
one script serves both; with 2.x it also connects with the high-level Client, which
negotiates the newest protocol.

usage: python_client.py <server binary> <server environment as JSON> <user> <session>
"""

import asyncio
import json
import sys

import mcp
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def wire(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def call(session, name, args):
    result = wire(await session.call_tool(name, args))
    text = "".join(c.get("text", "") for c in result.get("content", []))
    return {
        "is_error": bool(result.get("isError", False)),
        "structured": result.get("structuredContent"),
        "text": text,
    }


async def main():
    binary, env, user, session_id = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
    params = StdioServerParameters(command=binary, args=[], env=env)
    report = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = wire(await session.initialize())
            report["server"] = init["serverInfo"]["name"]
            report["protocol"] = init["protocolVersion"]
            report["instructions"] = init.get("instructions", "")

            tools = wire(await session.list_tools())["tools"]
            report["tools"] = sorted(t["name"] for t in tools)
            report["schemas"] = {t["name"]: {"input": t["inputSchema"], "output": t.get("outputSchema")} for t in tools}

            report["add_preference"] = await call(session, "memory_add_preference", {
                "user_identifier": user, "category": "consultants", "preference": "Senior on healthcare clients",
                "applies_to": [{"name": "Healthcare", "type": "Industry"}],
            })
            report["add_messages"] = await call(session, "memory_add_messages", {
                "user_identifier": user, "session_id": session_id,
                "messages": [
                    {"role": "user", "content": "Find me a healthcare team"},
                    {"role": "assistant", "content": "Looking for senior consultants."},
                ],
            })
            report["get_preferences"] = await call(session, "memory_get_preferences", {
                "user_identifier": user, "applies_to": {"name": "Healthcare", "type": "Industry"},
            })
            report["get_conversation"] = await call(session, "memory_get_conversation", {
                "user_identifier": user, "session_id": session_id,
            })
            report["search"] = await call(session, "memory_search", {"user_identifier": user, "query": "healthcare"})
            report["bad_confidence"] = await call(session, "memory_add_preference", {
                "user_identifier": user, "category": "c", "preference": "p", "confidence": 7,
            })
            report["no_user"] = await call(session, "memory_add_preference", {"category": "c", "preference": "p"})
            report["after_refusals"] = await call(session, "memory_get_preferences", {"user_identifier": user, "active_only": False})

            templates = wire(await session.list_resource_templates())["resourceTemplates"]
            report["templates"] = sorted(t["uriTemplate"] for t in templates)
            uri = "engram://users/" + "".join(
                c if c.isascii() and (c.isalnum() or c in "-._~") else "".join("%%%02X" % b for b in c.encode())
                for c in user
            ) + "/preferences"
            contents = wire(await session.read_resource(uri))["contents"]
            report["resource"] = {"uri": contents[0]["uri"], "mime": contents[0].get("mimeType"), "text": contents[0]["text"]}

            prompts = wire(await session.list_prompts())["prompts"]
            report["prompts"] = sorted(p["name"] for p in prompts)
            prompt = wire(await session.get_prompt("memory-conversation", {"user_identifier": user, "session_id": session_id}))
            report["prompt"] = prompt["messages"][0]["content"]["text"]

    # The 2.x releases' high-level Client negotiates the newest protocol it shares with the
    # server (2026-07-28: no initialize handshake, every request standalone).
    if hasattr(mcp, "Client"):
        async with mcp.Client(params, mode="auto") as client:
            modern = {"protocol": client.session.protocol_version}
            modern["add_preference"] = await call(client, "memory_add_preference", {
                "user_identifier": user, "category": "tone", "preference": "Brief answers",
            })
            modern["get_preferences"] = await call(client, "memory_get_preferences", {"user_identifier": user})
            report["modern"] = modern
    print(json.dumps(report))


asyncio.run(main())
