"""What the client returns: the library's models with the library's field names, plus
what Engram adds (valid and transaction times, supersede links, receipts).

Models made by a write carry ``receipt`` (where the log stored the write); models read
from the query service carry none. ``receipt`` is not part of ``model_dump()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import EngramError

__all__ = [
    "Conversation",
    "Entity",
    "EntityDetail",
    "EntityHit",
    "EntityMentions",
    "EntityRef",
    "Fact",
    "Fate",
    "FateStatus",
    "MemoryEntry",
    "MentionedEntities",
    "Message",
    "MessageHit",
    "MessageRole",
    "Preference",
    "PreferenceHit",
    "ReasoningStep",
    "ReasoningTrace",
    "Related",
    "RelatedEntity",
    "Relationship",
    "StepHit",
    "ToolCall",
    "ToolCallStatus",
    "ToolStats",
    "TraceHit",
    "User",
    "WriteReceipt",
]


def _now() -> datetime:
    return datetime.now(UTC)


class WriteReceipt(BaseModel):
    """Where the log stored a write: its event id and stream sequence (the consistency
    token). ``duplicate`` is true when the log already held the event (a retry).
    ``user_identifier`` is ``None`` for the shared tenant."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    user_identifier: str | None
    sequence: int
    duplicate: bool = False


class MessageRole(str, Enum):
    """Message role in a conversation."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class ToolCallStatus(str, Enum):
    """Status of a tool call."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


class MemoryEntry(BaseModel):
    """The library's base of every memory entry. ``embedding`` is the vector a write was
    given (``embedding=``); it is ``None`` on what the query service answers (it returns no
    vectors) and where the ingestor's embedder computed the vector."""

    id: UUID = Field(default_factory=uuid4)
    created_at: datetime | None = Field(default_factory=_now)
    updated_at: datetime | None = None
    embedding: list[float] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    receipt: WriteReceipt | None = Field(default=None, exclude=True, repr=False)


class User(BaseModel):
    """A user identity (the library's ``User``); Engram adds when it was created and when
    the system recorded it."""

    id: str
    identifier: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    recorded_at: datetime | None = None
    receipt: WriteReceipt | None = Field(default=None, exclude=True, repr=False)


class EntityRef(BaseModel):
    """A reference to an entity of the user's scope: by ``id``, else by ``name`` and
    ``type``, else by ``name`` (the library's precedence). ``label`` is accepted for the
    library's sake; Engram has no labels and refuses a reference that sets one."""

    label: str | None = None
    name: str | None = None
    type: str | None = None
    id: str | None = None

    @model_validator(mode="after")
    def _require_name_or_id(self) -> EntityRef:
        if not self.name and not self.id:
            raise ValueError("EntityRef requires at least one of 'name' or 'id'")
        return self


class Entity(BaseModel):
    """An entity a preference applies to. ``id`` is Engram's (derived from the user, name
    and type); it is ``None`` on a preference returned by ``add_preference``, before the
    service derived it."""

    id: str | None = None
    name: str
    type: str | None = None


class Message(MemoryEntry):
    """A message of a conversation; ``created_at`` is its timestamp."""

    role: MessageRole
    content: str
    conversation_id: UUID | None = None
    tool_calls: list[dict[str, Any]] | None = None
    session_id: str | None = None
    recorded_at: datetime | None = None


class Conversation(BaseModel):
    """A conversation: one per user and session. ``get_conversation`` of a session without
    messages answers one with no messages, as the library does."""

    id: UUID = Field(default_factory=uuid4)
    session_id: str
    title: str | None = None
    messages: list[Message] = Field(default_factory=list)
    created_at: datetime | None = Field(default_factory=_now)
    updated_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    recorded_at: datetime | None = None
    message_count: int | None = None
    """How many messages it holds, as ``list_conversations`` answers (the library's
    ``list_sessions``); ``None`` where the answer does not say (``get_conversation``)."""


class Preference(MemoryEntry):
    """A user preference (the library's fields first). Engram adds the valid-time interval
    (``valid_from``/``valid_until``), the supersede links and the transaction times
    (``recorded_at``: when the system learned it)."""

    category: str
    preference: str
    context: str | None = None
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    linked_entities: list[UUID] = Field(default_factory=list)
    applies_to: list[Entity] = Field(default_factory=list)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    superseded_by: UUID | None = None
    supersedes: list[UUID] = Field(default_factory=list)
    recorded_at: datetime | None = None
    recorded_seq: int | None = None
    superseded_recorded_at: datetime | None = None
    superseded_seq: int | None = None


class ToolCall(MemoryEntry):
    """A tool call made in a reasoning step."""

    tool_name: str
    arguments: Any = Field(default_factory=dict)
    result: Any | None = None
    status: ToolCallStatus = ToolCallStatus.PENDING
    duration_ms: int | None = None
    error: str | None = None
    step_id: UUID | None = None


class ReasoningStep(MemoryEntry):
    """A step of a trace. ``step_number`` is 0 on a step returned by ``add_step`` when the
    client did not know the trace's steps (the projector numbers it; ``get_trace`` shows
    the number)."""

    trace_id: UUID | str
    step_number: int = 0
    thought: str | None = None
    action: str | None = None
    observation: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)


class ReasoningTrace(MemoryEntry):
    """A reasoning trace for a task; ``steps`` are filled by ``get_trace``.
    ``task_embedding`` is the vector ``start_trace`` was given, as ``embedding`` is on the
    other entries."""

    session_id: str
    task: str
    task_embedding: list[float] | None = None
    steps: list[ReasoningStep] = Field(default_factory=list)
    outcome: str | None = None
    success: bool | None = None
    started_at: datetime | None = Field(default_factory=_now)
    completed_at: datetime | None = None
    step_count: int | None = None
    recorded_at: datetime | None = None


class ToolStats(BaseModel):
    """Statistics of a tool (the library's ``ToolStats``)."""

    name: str
    description: str | None = None
    total_calls: int = 0
    successful_calls: int = 0
    failed_calls: int = 0
    success_rate: float = 0.0
    avg_duration_ms: float | None = None
    last_used_at: datetime | None = None


class EntityDetail(Entity):
    """One of the user's entities as read (the library's ``Entity``): ``type`` as written
    (case kept), ``subtype``, ``description``, ``aliases``, ``attributes``, ``confidence``
    (1.0 when never given), plus Engram's times, ``merged_ids`` (the entities merged into
    it) and ``resolved_from`` (the id asked for when it named an entity merged into this
    one). As returned by ``add_entity``: what that call wrote, with the id Engram derived
    (``embedding`` too: the vector given, as on ``MemoryEntry``)."""

    subtype: str | None = None
    description: str | None = None
    aliases: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    recorded_at: datetime | None = None
    recorded_seq: int | None = None
    merged_ids: list[str] = Field(default_factory=list)
    resolved_from: str | None = None
    embedding: list[float] | None = None
    receipt: WriteReceipt | None = Field(default=None, exclude=True, repr=False)

    @property
    def display_name(self) -> str:
        """The library's display name: Engram keeps no canonical name, so the name."""
        return self.name

    @property
    def full_type(self) -> str:
        """The type with its subtype, ``OBJECT:VEHICLE``, as the library writes it."""
        return f"{self.type}:{self.subtype}" if self.subtype else self.type or ""


class Relationship(BaseModel):
    """A ``RELATED_TO`` edge between two of the user's entities (the library's
    ``Relationship``); ``id`` is derived from the user, the endpoints and the type.
    ``direction`` is set on reads: how the walk crossed it (``out`` from source to target,
    ``in`` against it)."""

    id: str
    type: str
    direction: str | None = None
    source_id: str
    target_id: str
    description: str | None = None
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    recorded_at: datetime | None = None
    receipt: WriteReceipt | None = Field(default=None, exclude=True, repr=False)


class RelatedEntity(BaseModel):
    """An entity ``get_related_entities`` reached, at its shortest distance ``depth``, with
    the relationships of the path that first reached it."""

    entity: EntityDetail
    depth: int
    path: list[Relationship] = Field(default_factory=list)

    @property
    def relationship(self) -> Relationship | None:
        """The last relationship of the path, the one that joins the entity to it (the
        library's ``(entity, relationship)`` pair)."""
        return self.path[-1] if self.path else None


class Related(BaseModel):
    """The answer of ``get_related_entities``: the entity asked about (its survivor when it
    was merged), those related to it, nearest first, and whether more were within reach
    than the limit let through."""

    entity: EntityDetail
    related: list[RelatedEntity] = Field(default_factory=list)
    truncated: bool = False


class Fact(MemoryEntry):
    """A subject-predicate-object fact of the user (the library's ``Fact``), valid from
    ``valid_from`` until ``valid_until``; Engram adds when it was recorded."""

    subject: str
    predicate: str
    object: str
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    recorded_at: datetime | None = None
    recorded_seq: int | None = None

    @property
    def as_triple(self) -> tuple[str, str, str]:
        """The fact as ``(subject, predicate, object)``."""
        return (self.subject, self.predicate, self.object)


class EntityMentions(BaseModel):
    """The messages (newest first, each with its conversation and session) and reasoning
    traces (latest started first) that mention an entity; ``entity_id`` is the survivor's
    when the id asked for (``resolved_from``) was merged. ``truncated``: either list had
    more than the limit."""

    entity_id: str
    resolved_from: str | None = None
    messages: list[Message] = Field(default_factory=list)
    traces: list[ReasoningTrace] = Field(default_factory=list)
    truncated: bool = False


class MentionedEntities(BaseModel):
    """The entities a message or a trace mentions, by name then id; ``truncated``: it
    mentions more than the limit."""

    message_id: str | None = None
    trace_id: str | None = None
    entities: list[EntityDetail] = Field(default_factory=list)
    truncated: bool = False


class MessageHit(Message):
    """A message a search found, with its ``session_id`` and ``score``: by full text
    Lucene's BM25, comparable within one answer only; by vector the cosine similarity
    ``(1 + cos θ) / 2``, from 0 to 1."""

    score: float = 0.0


class PreferenceHit(Preference):
    """A preference a search found (superseded ones too: ``superseded_by``), with its
    ``score``."""

    score: float = 0.0


class EntityHit(Entity):
    """An entity a search found, with its ``description``, times and ``score``."""

    description: str | None = None
    created_at: datetime | None = None
    recorded_at: datetime | None = None
    score: float = 0.0


class StepHit(ReasoningStep):
    """A reasoning step a search found, with its tool calls, its trace's ``session_id``,
    ``task``, ``outcome`` and ``success`` (the library's step with context), and ``score``."""

    session_id: str = ""
    task: str = ""
    outcome: str | None = None
    success: bool | None = None
    score: float = 0.0


class TraceHit(ReasoningTrace):
    """A reasoning trace ``get_similar_traces`` found (without its steps), with its
    ``score``, the cosine similarity ``(1 + cos θ) / 2`` of its task's vector and the
    query's."""

    score: float = 0.0


class FateStatus(str, Enum):
    """What became of a write the log stored."""

    STORED = "stored"
    APPLIED = "applied"
    DEAD_LETTERED = "dead_lettered"
    REFUSED = "refused"


class Fate(BaseModel):
    """The fate of one write: ``stored`` (the projector has not reached it), ``applied``,
    ``dead_lettered`` (refused by the projector: ``reason``, ``error``) or ``refused``
    (stored after its user's erasure and dropped)."""

    event_id: str
    sequence: int
    kind: str
    stored_at: datetime | None = None
    status: FateStatus
    reason: str | None = None
    error: str | None = None
    dead_lettered_at: datetime | None = None


# --- mapping from the query service's JSON -------------------------------------------------

_F = TypeVar("_F", bound=Callable[..., Any])


def _answer(fn: _F) -> _F:
    """An answer that does not have the documented shape is an ``EngramError``, not a
    ``KeyError`` from deep inside the client."""

    @functools.wraps(fn)
    def parse(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (KeyError, TypeError, ValueError) as e:
            raise EngramError(f"unexpected answer from Engram ({fn.__name__}): {e!r}") from e

    return parse  # type: ignore[return-value]


def _uuid_or_none(value: Any) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(str(value))
    except ValueError:
        return None


@_answer
def user_from(d: dict[str, Any]) -> User:
    attrs = d.get("attributes")
    return User(
        id=str(d["id"]),
        identifier=str(d["identifier"]),
        attributes=attrs if isinstance(attrs, dict) else {},
        created_at=d.get("created_at"),
        recorded_at=d.get("recorded_at"),
    )


@_answer
def entity_from(d: dict[str, Any]) -> Entity:
    return Entity(id=d.get("id"), name=str(d.get("name") or ""), type=d.get("type"))


@_answer
def preference_from(d: dict[str, Any]) -> Preference:
    applies = [entity_from(e) for e in d.get("applies_to") or []]
    linked = [u for u in (_uuid_or_none(e.id) for e in applies) if u is not None]
    supersedes = [u for u in (_uuid_or_none(s) for s in d.get("supersedes") or []) if u]
    confidence = d.get("confidence")
    return Preference(
        id=UUID(str(d["id"])),
        category=str(d["category"]),
        preference=str(d["preference"]),
        context=d.get("context"),
        confidence=1.0 if confidence is None else float(confidence),
        created_at=d.get("created_at"),
        metadata=d.get("metadata") or {},
        linked_entities=linked,
        applies_to=applies,
        valid_from=d.get("valid_from"),
        valid_until=d.get("valid_until"),
        superseded_by=_uuid_or_none(d.get("superseded_by")),
        supersedes=supersedes,
        recorded_at=d.get("recorded_at"),
        recorded_seq=d.get("recorded_seq"),
        superseded_recorded_at=d.get("superseded_recorded_at"),
        superseded_seq=d.get("superseded_seq"),
    )


@_answer
def message_from(
    d: dict[str, Any], *, conversation_id: UUID | None = None, session_id: str | None = None
) -> Message:
    return Message(
        id=UUID(str(d["id"])),
        role=MessageRole(d["role"]),
        content=str(d.get("content") or ""),
        created_at=d.get("timestamp"),
        metadata=d.get("metadata") or {},
        conversation_id=conversation_id,
        session_id=d.get("session_id", session_id),
        recorded_at=d.get("recorded_at"),
    )


@_answer
def conversation_from(d: dict[str, Any], messages: list[Message] | None = None) -> Conversation:
    return Conversation(
        id=UUID(str(d["id"])),
        session_id=str(d["session_id"]),
        title=d.get("title"),
        messages=messages or [],
        created_at=d.get("created_at"),
        updated_at=d.get("updated_at"),
        recorded_at=d.get("recorded_at"),
        message_count=d.get("message_count"),
    )


@_answer
def tool_call_from(d: dict[str, Any], step_id: UUID | None) -> ToolCall:
    args = d.get("arguments")
    return ToolCall(
        id=UUID(str(d["id"])),
        tool_name=str(d["tool_name"]),
        arguments={} if args is None else args,
        result=d.get("result"),
        status=ToolCallStatus(d.get("status") or "success"),
        duration_ms=d.get("duration_ms"),
        error=d.get("error"),
        step_id=step_id,
        created_at=d.get("timestamp"),
    )


@_answer
def step_from(d: dict[str, Any], trace_id: UUID | str) -> ReasoningStep:
    step_id = UUID(str(d["id"]))
    return ReasoningStep(
        id=step_id,
        trace_id=trace_id,
        step_number=d.get("step_number") or 0,
        thought=d.get("thought"),
        action=d.get("action"),
        observation=d.get("observation"),
        created_at=d.get("timestamp"),
        tool_calls=[tool_call_from(t, step_id) for t in d.get("tool_calls") or []],
    )


@_answer
def trace_from(d: dict[str, Any]) -> ReasoningTrace:
    trace_id = UUID(str(d["id"]))
    return ReasoningTrace(
        id=trace_id,
        session_id=str(d["session_id"]),
        task=str(d["task"]),
        outcome=d.get("outcome"),
        success=d.get("success"),
        started_at=d.get("started_at"),
        created_at=d.get("started_at"),
        completed_at=d.get("completed_at"),
        metadata=d.get("metadata") or {},
        step_count=d.get("step_count"),
        recorded_at=d.get("recorded_at"),
        steps=[step_from(s, trace_id) for s in d.get("steps") or []],
    )


@_answer
def tool_stats_from(d: dict[str, Any]) -> ToolStats:
    return ToolStats.model_validate(
        {k: d.get(k) for k in ToolStats.model_fields if d.get(k) is not None}
    )


@_answer
def fate_from(d: dict[str, Any]) -> Fate:
    return Fate.model_validate(d)


def _score(d: dict[str, Any]) -> float:
    return float(d["score"])


def _confidence(d: dict[str, Any]) -> float:
    confidence = d.get("confidence")
    return 1.0 if confidence is None else float(confidence)


@_answer
def entity_detail_from(d: dict[str, Any]) -> EntityDetail:
    attrs = d.get("attributes")
    return EntityDetail(
        id=str(d["id"]),
        name=str(d["name"]),
        type=d.get("type"),
        subtype=d.get("subtype"),
        description=d.get("description"),
        aliases=[str(a) for a in d.get("aliases") or []],
        attributes=attrs if isinstance(attrs, dict) else {},
        confidence=_confidence(d),
        created_at=d.get("created_at"),
        updated_at=d.get("updated_at"),
        recorded_at=d.get("recorded_at"),
        recorded_seq=d.get("recorded_seq"),
        merged_ids=[str(i) for i in d.get("merged_ids") or []],
        resolved_from=d.get("resolved_from"),
    )


@_answer
def relationship_from(d: dict[str, Any]) -> Relationship:
    attrs = d.get("attributes")
    return Relationship(
        id=str(d["id"]),
        type=str(d["type"]),
        direction=d.get("direction"),
        source_id=str(d["source_id"]),
        target_id=str(d["target_id"]),
        description=d.get("description"),
        confidence=_confidence(d),
        valid_from=d.get("valid_from"),
        valid_until=d.get("valid_until"),
        attributes=attrs if isinstance(attrs, dict) else {},
        created_at=d.get("created_at"),
        updated_at=d.get("updated_at"),
        recorded_at=d.get("recorded_at"),
    )


@_answer
def related_from(d: dict[str, Any]) -> Related:
    return Related(
        entity=entity_detail_from(d["entity"]),
        related=[
            RelatedEntity(
                entity=entity_detail_from(r["entity"]),
                depth=int(r["depth"]),
                path=[relationship_from(p) for p in r.get("path") or []],
            )
            for r in d.get("related") or []
        ],
        truncated=bool(d.get("truncated", False)),
    )


@_answer
def fact_from(d: dict[str, Any]) -> Fact:
    return Fact(
        id=UUID(str(d["id"])),
        subject=str(d["subject"]),
        predicate=str(d["predicate"]),
        object=str(d["object"]),
        confidence=_confidence(d),
        valid_from=d.get("valid_from"),
        valid_until=d.get("valid_until"),
        created_at=d.get("created_at"),
        metadata=d.get("metadata") or {},
        recorded_at=d.get("recorded_at"),
        recorded_seq=d.get("recorded_seq"),
    )


@_answer
def entity_mentions_from(d: dict[str, Any]) -> EntityMentions:
    return EntityMentions(
        entity_id=str(d["entity_id"]),
        resolved_from=d.get("resolved_from"),
        messages=[
            message_from(m, conversation_id=_uuid_or_none(m.get("conversation_id")))
            for m in d.get("messages") or []
        ],
        traces=[trace_from(t) for t in d.get("traces") or []],
        truncated=bool(d.get("truncated", False)),
    )


@_answer
def mentioned_entities_from(d: dict[str, Any]) -> MentionedEntities:
    return MentionedEntities(
        message_id=d.get("message_id"),
        trace_id=d.get("trace_id"),
        entities=[entity_detail_from(e) for e in d.get("entities") or []],
        truncated=bool(d.get("truncated", False)),
    )


@_answer
def message_hit_from(d: dict[str, Any]) -> MessageHit:
    return MessageHit(**dict(message_from(d)), score=_score(d))


@_answer
def preference_hit_from(d: dict[str, Any]) -> PreferenceHit:
    return PreferenceHit(**dict(preference_from(d)), score=_score(d))


@_answer
def entity_hit_from(d: dict[str, Any]) -> EntityHit:
    return EntityHit(
        id=d.get("id"),
        name=str(d.get("name") or ""),
        type=d.get("type"),
        description=d.get("description"),
        created_at=d.get("created_at"),
        recorded_at=d.get("recorded_at"),
        score=_score(d),
    )


@_answer
def trace_hit_from(d: dict[str, Any]) -> TraceHit:
    return TraceHit(**dict(trace_from(d)), score=_score(d))


@_answer
def step_hit_from(d: dict[str, Any]) -> StepHit:
    return StepHit(
        **dict(step_from(d, UUID(str(d["trace_id"])))),
        session_id=str(d.get("session_id") or ""),
        task=str(d.get("task") or ""),
        outcome=d.get("outcome"),
        success=d.get("success"),
        score=_score(d),
    )
