"""The seed page (``seed/multi-tenant-memory.txt``, neo4j-agent-memory v0.4's multi-tenant
page, copied byte for byte) and its code snippets, found by compiling the page's
paragraphs: a snippet is the longest run of paragraphs that compiles as Python (top-level
``await`` allowed) and does more than name something (the page's headings, such as
``Steps``, compile too)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PAGE = Path(__file__).parent / "seed" / "multi-tenant-memory.txt"

# The import line the page leaves out; the only line of the seed's code a user changes.
IMPORT_LINE = "from engram_memory import EntityRef, MemoryClient, MemorySettings"

FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


@dataclass(frozen=True)
class Snippet:
    """One code block of the page: its source and the page line it starts on."""

    source: str
    line: int

    def statements(self) -> list[tuple[str, ast.Module]]:
        """Its top-level statements, each with its source, to run one at a time."""
        tree = ast.parse(self.source)
        return [
            (ast.get_source_segment(self.source, st) or "", ast.Module(body=[st], type_ignores=[]))
            for st in tree.body
        ]


def _compiles(src: str) -> bool:
    try:
        compile(src, "<seed>", "exec", flags=FLAGS, dont_inherit=True)
    except SyntaxError:
        return False
    return True


def _does_something(src: str) -> bool:
    body = ast.parse(src).body
    return any(not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Name)) for s in body)


def _paragraphs(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    lines: list[str] = []
    start = 0
    for n, line in enumerate([*text.split("\n"), ""], start=1):
        if line.strip():
            if not lines:
                start = n
            lines.append(line)
        elif lines:
            out.append((start, "\n".join(lines)))
            lines = []
    return out


def snippets(text: str) -> list[Snippet]:
    paras = _paragraphs(text)
    found: list[Snippet] = []
    i = 0
    while i < len(paras):
        first = paras[i][1]
        if not (_compiles(first) and _does_something(first)):
            i += 1
            continue
        best = i
        for j in range(i + 1, len(paras)):
            if not _compiles("\n\n".join(p for _, p in paras[i : j + 1])):
                break
            if paras[j][1].startswith((" ", "\t")) or _does_something(paras[j][1]):
                best = j
        found.append(Snippet("\n\n".join(p for _, p in paras[i : best + 1]), paras[i][0]))
        i = best + 1
    return found


def read() -> str:
    return PAGE.read_text(encoding="utf-8")
