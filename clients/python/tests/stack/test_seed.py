"""The seed page's code, every snippet, unchanged but for its import line, against the
production-like stack (multi-tenant mode and authentication on, an API key), with every
answer checked; then what the page's answers imply beyond its own lines (the Healthcare
filter dropping what does not apply, time travel between the writes, transaction time)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engram_memory import MemoryClient, Preference
from tests import seedpage
from tests.stack._renaming import Renaming
from tests.stack.conftest import settings

SEED_USERS = ("sara@omg.com", "liam@omg.com")


async def run(snippet: seedpage.Snippet, ns: dict[str, Any]) -> list[tuple[str, datetime]]:
    """Run a snippet's statements one after another in ``ns`` (so its answers can be
    checked after each); answers each statement's source and when it finished."""
    done: list[tuple[str, datetime]] = []
    for source, module in snippet.statements():
        code = compile(module, f"<seed page line {snippet.line}>", "exec", flags=seedpage.FLAGS)
        result = eval(code, ns)  # noqa: S307 - the seed page's own code
        if result is not None:
            await result
        done.append((source, datetime.now(UTC)))
    return done


def texts(prefs: list[Preference]) -> list[str]:
    return sorted(p.preference for p in prefs)


async def test_seed_page(new_user: Callable[[str], str]) -> None:
    snippets = seedpage.snippets(seedpage.read())
    assert len(snippets) == 5
    renaming = Renaming({u: new_user(u.split("@")[0]) for u in SEED_USERS})
    ns: dict[str, Any] = {
        "settings": settings(credential="api_key", multi_tenant=True, http_transport=renaming)
    }
    exec(seedpage.IMPORT_LINE, ns)  # noqa: S102 - the import line the page leaves out
    assert ns["MemoryClient"] is MemoryClient
    sara, liam = SEED_USERS
    try:
        # Goal: the page's whole example, in its own `async with`.
        await run(snippets[0], ns)
        assert texts(ns["prefs"]) == ["Senior on healthcare clients"]
        (goal_pref,) = ns["prefs"]
        assert goal_pref.category == "consultants"
        assert [(e.name, e.type) for e in goal_pref.applies_to] == [("Healthcare", "Industry")]
        assert goal_pref.valid_until is None and goal_pref.superseded_by is None

        async with MemoryClient(ns["settings"]) as client:
            ns["client"] = client
            stored_sara = await client.users.get_user(sara)
            stored_liam = await client.users.get_user(liam)
            assert stored_sara is not None and stored_sara.attributes == {"role": "manager"}
            assert stored_liam is not None and stored_liam.attributes == {"role": "consultant"}
            saras = await client.short_term.get_conversation(
                "sara-2026-05-01", user_identifier=sara
            )
            liams = await client.short_term.get_conversation(
                "liam-2026-05-01", user_identifier=liam
            )
            assert [m.content for m in saras.messages] == ["Find me a healthcare team"]
            assert [m.content for m in liams.messages] == ["Find me a fintech team"]
            # Scoped: Sara has no conversation of Liam's session, Liam no preference.
            other = await client.short_term.get_conversation(
                "liam-2026-05-01", user_identifier=sara
            )
            assert other.messages == []
            assert await client.long_term.get_preferences_for(liam) == []

            # Step 1: upsert the user (idempotent), with more attributes.
            await run(snippets[1], ns)
            user = ns["user"]
            assert user.identifier == sara
            assert user.id == stored_sara.id  # the same user, not a new one
            assert user.attributes == {"role": "manager", "team": "consulting"}
            stored = await client.users.get_user(sara)
            assert stored is not None and stored.attributes == user.attributes

            # Step 2: user_identifier= on the three kinds of writes.
            await run(snippets[2], ns)
            trace = ns["trace"]
            assert (trace.session_id, trace.task) == ("sara-2026-05-01", "consultant search")
            read_back = await client.reasoning.get_trace(trace.id)
            assert read_back is not None and read_back.task == "consultant search"
            assert await client.reasoning.get_trace(trace.id, user_identifier=liam) is None
            saras = await client.short_term.get_conversation(
                "sara-2026-05-01", user_identifier=sara
            )
            assert [m.content for m in saras.messages] == ["Find me a healthcare team"] * 2

            # The guardrail: a write without user_identifier raises before sending.
            sent = renaming.sent
            with pytest.raises(ValueError, match="user_identifier"):
                await client.short_term.add_message("sara-2026-05-01", "user", "no user")
            assert renaming.sent == sent

            # Step 3: read back with get_preferences_for, statement by statement.
            two = ["Senior on healthcare", "Senior on healthcare clients"]
            step3 = snippets[3].statements()
            answers = []
            for i in range(len(step3)):
                await run(seedpage.Snippet(step3[i][0], snippets[3].line), ns)
                answers.append(texts(ns["prefs"]))
            assert answers == [two, two, two]  # all active; Healthcare; with history
            healthcare = next(s for s, _ in step3 if "applies_to=EntityRef" in s)

            # Step 4: supersede, active only, time travel.
            done = await run(snippets[4], ns)
            old, new = ns["old"], ns["new"]
            assert (old.preference, new.preference) == ("Junior", "Senior")
            assert texts(ns["active"]) == sorted([*two, "Senior"])  # Junior is superseded
            # "What did Sara prefer at that instant", a day ago: nothing yet, as the
            # library answers (every valid_from is now).
            assert ns["snapshot"] == []
            history = {p.id: p for p in await client.long_term.get_preference_history(sara)}
            assert history[old.id].superseded_by == new.id
            assert history[old.id].valid_until is not None
            assert history[new.id].supersedes == [old.id]
            assert sorted(p.preference for p in history.values()) == sorted(
                [*two, "Junior", "Senior"]
            )

            # Beyond the page's lines, the same reads at instants between its writes.
            after_new = next(t for s, t in done if s.startswith("new ="))
            after_supersede = next(t for s, t in done if "supersede_preference" in s)
            between = await client.long_term.get_preferences_for(
                sara, as_of=after_new, active_only=False
            )
            assert texts(between) == sorted([*two, "Junior", "Senior"])
            after = await client.long_term.get_preferences_for(
                sara, as_of=after_supersede, active_only=False
            )
            assert texts(after) == sorted([*two, "Senior"])
            # Transaction time: what the system knew before the supersede was recorded.
            known = await client.long_term.get_preferences_for(sara, known_at=after_new)
            assert texts(known) == sorted([*two, "Junior", "Senior"])
            assert all(p.valid_until is None for p in known)
            before_all = await client.long_term.get_preferences_for(
                sara, known_at=datetime.now(UTC) - timedelta(days=1)
            )
            assert before_all == []

            # The page's Healthcare filter again, now that Sara has unscoped preferences.
            await run(seedpage.Snippet(healthcare, snippets[3].line), ns)
            assert texts(ns["prefs"]) == two
            assert all(
                [(e.name, e.type) for e in p.applies_to] == [("Healthcare", "Industry")]
                for p in ns["prefs"]
            )
    finally:
        await renaming.close()


def test_the_snippets_use_only_the_api_of_this_package() -> None:
    """Every call the page makes is a method of the client this package gives."""
    from engram_memory import LongTermMemory, ReasoningMemory, ShortTermMemory, UserMemory

    parts = {
        "users": UserMemory,
        "short_term": ShortTermMemory,
        "long_term": LongTermMemory,
        "reasoning": ReasoningMemory,
    }
    calls = set()
    for s in seedpage.snippets(seedpage.read()):
        for node in ast.walk(ast.parse(s.source)):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "client"
            ):
                calls.add((node.value.attr, node.attr))
    assert calls
    for part, method in calls:
        assert callable(getattr(parts[part], method)), (part, method)
