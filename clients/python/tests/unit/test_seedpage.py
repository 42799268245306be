"""The extraction of the seed page's snippets finds all of its code and nothing else."""

from __future__ import annotations

import ast

from tests import seedpage


def test_every_code_line_of_the_page_is_in_a_snippet() -> None:
    text = seedpage.read()
    found = seedpage.snippets(text)
    covered = {line for s in found for line in s.source.split("\n")}
    code_lines = [
        line
        for line in text.split("\n")
        if "await client." in line or line.startswith(("async with", "from datetime"))
    ]
    assert code_lines
    missing = [line for line in code_lines if line not in covered]
    assert missing == []
    # Each snippet is code that compiles, and no prose got in.
    for s in found:
        compile(s.source, "<seed>", "exec", flags=seedpage.FLAGS, dont_inherit=True)
        assert "Steps" not in s.source.split("\n")
        assert "Schema" not in s.source.split("\n")


def test_the_page_has_the_goal_block_and_four_steps() -> None:
    found = seedpage.snippets(seedpage.read())
    assert len(found) == 5
    assert found[0].source.startswith("async with MemoryClient(settings) as client:")
    goal = ast.parse(found[0].source).body
    assert len(goal) == 1 and isinstance(goal[0], ast.AsyncWith)
    # The goal block keeps its body across the page's blank lines: 6 awaits and prefs.
    assert found[0].source.count("await client.") == 6
    assert [len(s.statements()) for s in found[1:]] == [1, 3, 3, 6]


def test_the_import_line_names_what_the_page_uses() -> None:
    used = {
        n.id
        for s in seedpage.snippets(seedpage.read())
        for n in ast.walk(ast.parse(s.source))
        if isinstance(n, ast.Name)
    }
    imported = {a.asname or a.name for a in ast.parse(seedpage.IMPORT_LINE).body[0].names}  # type: ignore[attr-defined]
    # settings and client are what the page leaves to the reader; the rest is imported.
    assert {"EntityRef", "MemoryClient"} <= imported
    assert used - imported - {"settings", "client"} <= {
        "user",
        "prefs",
        "trace",
        "old",
        "new",
        "active",
        "snapshot",
        "datetime",
        "timedelta",
    }
