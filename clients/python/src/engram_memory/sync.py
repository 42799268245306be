"""``SyncMemoryClient``: the same API without ``await``, for scripts and frameworks that
call memory from synchronous code.

It runs a :class:`~engram_memory.MemoryClient` on an event loop of its own, in a thread of
its own, so it also works where the calling thread already runs a loop (notebooks)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar

from .client import MemoryClient
from .memory import LongTermMemory, ReasoningMemory, ShortTermMemory, UserMemory
from .models import Fate, WriteReceipt
from .settings import MemorySettings

__all__ = [
    "SyncLongTermMemory",
    "SyncMemoryClient",
    "SyncReasoningMemory",
    "SyncShortTermMemory",
    "SyncUserMemory",
]

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M")


class _Portal:
    """An event loop running in a daemon thread; ``call`` runs a coroutine on it."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="engram-memory", daemon=True
        )
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, R]) -> R:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a SyncMemoryClient cannot be called from its own loop")
        if self._loop.is_closed():
            coro.close()
            raise RuntimeError("the SyncMemoryClient is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class _Part(Generic[M]):
    def __init__(self, inner: M, portal: _Portal) -> None:
        self._inner = inner
        self._portal = portal


def _blocking(
    method: Callable[Concatenate[M, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[_Part[M], P], R]:
    """The blocking twin of an async method, with the same signature and docs."""

    @functools.wraps(method)
    def call(self: _Part[M], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._portal.call(method(self._inner, *args, **kwargs))

    return call


class SyncUserMemory(_Part[UserMemory]):
    """``client.users`` without ``await``."""

    upsert_user = _blocking(UserMemory.upsert_user)
    get_user = _blocking(UserMemory.get_user)
    list_users = _blocking(UserMemory.list_users)
    erase_user = _blocking(UserMemory.erase_user)
    recreate_user = _blocking(UserMemory.recreate_user)


class SyncShortTermMemory(_Part[ShortTermMemory]):
    """``client.short_term`` without ``await``."""

    add_message = _blocking(ShortTermMemory.add_message)
    get_conversation = _blocking(ShortTermMemory.get_conversation)
    list_conversations = _blocking(ShortTermMemory.list_conversations)
    delete_message = _blocking(ShortTermMemory.delete_message)
    clear_session = _blocking(ShortTermMemory.clear_session)
    search_messages = _blocking(ShortTermMemory.search_messages)


class SyncLongTermMemory(_Part[LongTermMemory]):
    """``client.long_term`` without ``await``."""

    add_preference = _blocking(LongTermMemory.add_preference)
    supersede_preference = _blocking(LongTermMemory.supersede_preference)
    delete_entity = _blocking(LongTermMemory.delete_entity)
    get_preferences_for = _blocking(LongTermMemory.get_preferences_for)
    get_preference_history = _blocking(LongTermMemory.get_preference_history)
    search_preferences = _blocking(LongTermMemory.search_preferences)
    add_entity = _blocking(LongTermMemory.add_entity)
    get_entity = _blocking(LongTermMemory.get_entity)
    get_entity_by_name = _blocking(LongTermMemory.get_entity_by_name)
    list_entities = _blocking(LongTermMemory.list_entities)
    search_entities = _blocking(LongTermMemory.search_entities)
    get_related_entities = _blocking(LongTermMemory.get_related_entities)
    merge_duplicate_entities = _blocking(LongTermMemory.merge_duplicate_entities)
    add_relationship = _blocking(LongTermMemory.add_relationship)
    add_fact = _blocking(LongTermMemory.add_fact)
    get_facts = _blocking(LongTermMemory.get_facts)
    get_facts_about = _blocking(LongTermMemory.get_facts_about)
    get_entity_mentions = _blocking(LongTermMemory.get_entity_mentions)
    get_entities_from_message = _blocking(LongTermMemory.get_entities_from_message)


class SyncReasoningMemory(_Part[ReasoningMemory]):
    """``client.reasoning`` without ``await``."""

    start_trace = _blocking(ReasoningMemory.start_trace)
    add_step = _blocking(ReasoningMemory.add_step)
    record_tool_call = _blocking(ReasoningMemory.record_tool_call)
    complete_trace = _blocking(ReasoningMemory.complete_trace)
    get_trace = _blocking(ReasoningMemory.get_trace)
    list_traces = _blocking(ReasoningMemory.list_traces)
    get_session_traces = _blocking(ReasoningMemory.get_session_traces)
    get_tool_stats = _blocking(ReasoningMemory.get_tool_stats)
    search_steps = _blocking(ReasoningMemory.search_steps)
    get_similar_traces = _blocking(ReasoningMemory.get_similar_traces)
    get_trace_entities = _blocking(ReasoningMemory.get_trace_entities)


class SyncMemoryClient:
    """A blocking :class:`~engram_memory.MemoryClient`::

        with SyncMemoryClient(settings) as client:
            client.users.upsert_user(identifier="sara@omg.com")

    Safe for use from several threads at once. ``close()`` (or leaving the ``with``)
    stops its thread."""

    def __init__(self, settings: MemorySettings | None = None) -> None:
        self._client = MemoryClient(settings)
        self._portal: _Portal | None = None
        self._lock = threading.Lock()

    @property
    def settings(self) -> MemorySettings:
        return self._client.settings

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        with self._lock:
            if self._portal is None:
                self._portal = _Portal()
            portal = self._portal
        try:
            portal.call(self._client.connect())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        with self._lock:
            portal, self._portal = self._portal, None
        if portal is not None:
            try:
                portal.call(self._client.close())
            finally:
                portal.stop()

    def _p(self) -> _Portal:
        portal = self._portal
        if portal is None:
            self._client.users  # raises NotConnectedError  # noqa: B018
            raise AssertionError("unreachable")
        return portal

    @property
    def users(self) -> SyncUserMemory:
        return SyncUserMemory(self._client.users, self._p())

    @property
    def short_term(self) -> SyncShortTermMemory:
        return SyncShortTermMemory(self._client.short_term, self._p())

    @property
    def long_term(self) -> SyncLongTermMemory:
        return SyncLongTermMemory(self._client.long_term, self._p())

    @property
    def reasoning(self) -> SyncReasoningMemory:
        return SyncReasoningMemory(self._client.reasoning, self._p())

    def consistency_token(self, user_identifier: str | None) -> int:
        """The highest consistency token this client holds for the user (0: none)."""
        return self._client.consistency_token(user_identifier)

    def fate(self, receipt: WriteReceipt) -> Fate:
        """What became of a write (``MemoryClient.fate``)."""
        return self._p().call(self._client.fate(receipt))

    def wait_applied(self, receipt: WriteReceipt, *, timeout: float | None = 60.0) -> Fate:
        """Wait until the projector decided about a write (``MemoryClient.wait_applied``)."""
        return self._p().call(self._client.wait_applied(receipt, timeout=timeout))
