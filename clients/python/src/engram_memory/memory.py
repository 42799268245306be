"""The four memories of the seed page: ``client.users``, ``client.short_term``,
``client.long_term`` and ``client.reasoning``, with the library's names and arguments."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from ._ids import entity_id, uuid7
from ._transport import Owners, Transport, segment, user_path
from .errors import InvalidRequestError, NotFoundError, UserRequiredError
from .models import (
    Conversation,
    Entity,
    EntityDetail,
    EntityHit,
    EntityMentions,
    EntityRef,
    Fact,
    MentionedEntities,
    Message,
    MessageHit,
    MessageRole,
    Preference,
    PreferenceHit,
    ReasoningStep,
    ReasoningTrace,
    Related,
    Relationship,
    StepHit,
    ToolCall,
    ToolCallStatus,
    ToolStats,
    TraceHit,
    User,
    WriteReceipt,
    conversation_from,
    entity_detail_from,
    entity_hit_from,
    entity_mentions_from,
    fact_from,
    mentioned_entities_from,
    message_from,
    message_hit_from,
    preference_from,
    preference_hit_from,
    related_from,
    step_hit_from,
    tool_stats_from,
    trace_from,
    trace_hit_from,
    user_from,
)

__all__ = ["LongTermMemory", "ReasoningMemory", "ShortTermMemory", "UserMemory"]

_PAGE = 1000  # the query service's default MAX_LIMIT

# What names an entity: an entity read or written (by its id, else its name and type), a
# reference, or an id.
EntityLike = Entity | EntityRef | Mapping[str, Any] | UUID | str


def _utc(t: datetime) -> datetime:
    """``t`` in UTC; a naive datetime is taken as UTC, as the library's Neo4j
    ``datetime($as_of)`` takes it (``datetime.utcnow()`` is naive)."""
    return (t.replace(tzinfo=UTC) if t.tzinfo is None else t).astimezone(UTC)


def rfc3339(t: datetime) -> str:
    """A datetime as RFC 3339 in UTC (naive: taken as UTC)."""
    return _utc(t).isoformat().replace("+00:00", "Z")


def _receipt(acc: Mapping[str, Any], user: str | None) -> WriteReceipt:
    return WriteReceipt(
        event_id=str(acc["event_id"]),
        user_identifier=user,
        sequence=int(acc["sequence"]),
        duplicate=bool(acc.get("duplicate", False)),
    )


def _put(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value


@dataclass
class _TraceInfo:
    user: str | None
    session_id: str
    task: str
    started_at: datetime
    metadata: dict[str, Any]
    steps: int = 0


@dataclass(frozen=True)
class _StepInfo:
    user: str | None
    trace_id: str


class _Memory:
    def __init__(self, transport: Transport, owners: Owners, multi_tenant: bool) -> None:
        self._t = transport
        self._owners = owners
        self._multi_tenant = multi_tenant

    def _writer(self, op: str, user_identifier: str | None, what: str) -> str | None:
        """The multi-tenant guardrail of the library: a write without ``user_identifier``
        raises before anything is sent."""
        if user_identifier is None:
            if self._multi_tenant:
                raise UserRequiredError(
                    "MemorySettings.memory.multi_tenant=True but no user_identifier was "
                    f"supplied. Pass user_identifier= to scope this {what}.",
                    op=op,
                    field="user_identifier",
                )
            return None
        return _identifier(op, user_identifier, "user_identifier")

    def _owner(self, op: str, user_identifier: str | None, *ids: str) -> str | None:
        """The user a call about existing objects is for: the one given, else the owner
        this client remembers for one of ``ids``, else the shared tenant when multi-tenant
        mode is off."""
        if user_identifier is not None:
            return _identifier(op, user_identifier, "user_identifier")
        for i in ids:
            info = self._owners.get(i)
            if info is not Owners.MISSING:
                user: str | None = info.user if isinstance(info, _TraceInfo | _StepInfo) else info
                return user
        if self._multi_tenant:
            raise UserRequiredError(
                "MemorySettings.memory.multi_tenant=True and this client did not create "
                f"{', '.join(ids) or 'it'}: pass user_identifier= to say whose it is.",
                op=op,
                field="user_identifier",
            )
        return None

    def _reader(self, op: str, user_identifier: str | None) -> str | None:
        if user_identifier is None:
            if self._multi_tenant:
                raise UserRequiredError(
                    "MemorySettings.memory.multi_tenant=True: pass user_identifier= to "
                    "say whose memory to read.",
                    op=op,
                    field="user_identifier",
                )
            return None
        return _identifier(op, user_identifier, "user_identifier")

    async def _pages(
        self,
        op: str,
        user: str | None,
        path: str,
        key: str,
        params: dict[str, str],
        limit: int,
        *,
        consistent: bool = True,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` items of a list read, following ``next_cursor``."""
        if limit < 1:
            raise InvalidRequestError(f"limit {limit}: at least 1", op=op, field="limit")
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(out) < limit:
            q = dict(params)
            q["limit"] = str(min(_PAGE, limit - len(out)))
            if cursor:
                q["cursor"] = cursor
            page = await self._t.read(op, user, path, q, consistent=consistent)
            out.extend(page.get(key) or [])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return out[:limit]

    async def _search(
        self,
        op: str,
        user: str | None,
        kind: str,
        query: str,
        filters: dict[str, str | bool],
        limit: int,
        *,
        by_vector: bool = False,
        threshold: float | None = None,
        embedding: list[float] | None = None,
    ) -> list[dict[str, Any]]:
        """The hits of the search of one kind, best first: the full-text search of the
        words of ``query``, any of which matches (docs/query.md, "Search"); or by vector
        (docs/query.md, "Vector search"): ``embedding`` POSTed (``query`` is not sent),
        else with ``by_vector`` the query service's embedder's vector of ``query``.
        ``threshold`` is the vector searches' (a 400 with full text)."""
        path = f"{user_path(user)}/search/{kind}"
        n = _limit(op, limit)
        vec = _embedding(op, embedding)
        if vec is not None:
            body: dict[str, Any] = {"embedding": vec, **filters, "limit": int(n)}
            _put(body, "threshold", threshold)
            out = await self._t.read(op, user, path, body=body)
        else:
            q = {"q": query, **{k: _param(v) for k, v in filters.items()}, "limit": n}
            if by_vector:
                q["mode"] = "vector"
            if threshold is not None:
                q["threshold"] = _param(threshold)
            out = await self._t.read(op, user, path, q)
        return list(out.get(kind) or [])


def _limit(op: str, limit: int) -> str:
    """A ``limit`` parameter: at least 1, at most one answer of the service."""
    if limit < 1:
        raise InvalidRequestError(f"limit {limit}: at least 1", op=op, field="limit")
    return str(min(limit, _PAGE))


def _param(value: str | bool | float) -> str:
    """A query parameter's text: ``true``/``false`` for a flag, the shortest exact text of
    a number."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(float(value))


def _embedding(op: str, value: list[float] | None) -> list[float] | None:
    """A vector given with a write or a search, as JSON numbers; the services refuse one
    that is empty, longer than 4096 or all zeros (docs/query.md, "Vector search")."""
    if value is None:
        return None
    try:
        if isinstance(value, str | bytes):
            raise TypeError(f"{type(value).__name__} is not a sequence of numbers")
        vec = [float(x) for x in value]
    except (TypeError, ValueError) as e:
        raise InvalidRequestError(f"embedding: {e}", op=op, field="embedding") from e
    if not all(math.isfinite(x) for x in vec):
        raise InvalidRequestError("embedding: must hold finite numbers", op=op, field="embedding")
    return vec


def _identifier(op: str, value: Any, field: str) -> str:
    if not isinstance(value, str) or value == "":
        raise InvalidRequestError(f"{value!r} is not an identifier", op=op, field=field)
    return value


def _id(value: UUID | str) -> str:
    return str(value)


def _write_path(user: str | None, rest: str) -> str:
    """The ingestor's path of a write about ``rest`` of ``user`` (``None``: the shared tenant,
    whose routes name no user)."""
    if user is None:
        return "/v1" + rest
    return "/v1/users/" + segment(user) + rest


class UserMemory(_Memory):
    """User identities (the seed's ``client.users``)."""

    async def upsert_user(
        self,
        *,
        identifier: str,
        attributes: dict[str, Any] | None = None,
        clear_attributes: bool = False,
    ) -> User:
        """Create the user if missing; a non-empty ``attributes`` replaces the stored ones
        wholesale, ``None`` or ``{}`` keeps them (as the library). Idempotent: safe on
        every request or session start.

        Answers as soon as the log stored the write: ``attributes`` is what this call
        wrote (``{}`` when it wrote none); ``get_user`` reads what is stored. Engram adds
        ``clear_attributes=True`` to clear them."""
        op = "upsert_user"
        ident = _identifier(op, identifier, "identifier")
        body: dict[str, Any] = {"event_id": uuid7()}
        if attributes:
            body["attributes"] = attributes
        if clear_attributes:
            body["clear_attributes"] = True
        acc = await self._t.write(op, ident, "PUT", "/v1/users/" + segment(ident), body)
        return User(
            id=str(acc["user_id"]),
            identifier=ident,
            attributes=dict(attributes or {}),
            receipt=_receipt(acc, ident),
        )

    async def get_user(self, identifier: str) -> User | None:
        """The user, or ``None`` when there is none."""
        op = "get_user"
        ident = _identifier(op, identifier, "identifier")
        try:
            return user_from(await self._t.read(op, ident, user_path(ident)))
        except NotFoundError:
            return None

    async def list_users(self, *, limit: int = 100) -> list[User]:
        """Every user, newest first (reads across tenants: the admin scope for every user
        when authentication is on)."""
        rows = await self._pages(
            "list_users", None, "/v1/users", "users", {}, limit, consistent=False
        )
        return [user_from(r) for r in rows]

    async def erase_user(self, identifier: str, *, reason: str | None = None) -> WriteReceipt:
        """Forget the user (admin scope): the projector deletes everything they own and
        the log keeps only a tombstone. Writes naming them are refused (``GoneError``)
        until ``recreate_user``. ``client.wait_applied(receipt)`` waits for the erasure."""
        op = "erase_user"
        ident = _identifier(op, identifier, "identifier")
        body: dict[str, Any] = {"event_id": uuid7()}
        _put(body, "reason", reason)
        acc = await self._t.write(op, ident, "DELETE", "/v1/users/" + segment(ident), body)
        return _receipt(acc, ident)

    async def recreate_user(self, identifier: str, *, reason: str | None = None) -> WriteReceipt:
        """Let an erased user's writes in again (admin scope); ``ConflictError`` for a user
        never erased."""
        op = "recreate_user"
        ident = _identifier(op, identifier, "identifier")
        body: dict[str, Any] = {"event_id": uuid7()}
        _put(body, "reason", reason)
        path = "/v1/users/" + segment(ident) + "/recreate"
        return _receipt(await self._t.write(op, ident, "POST", path, body), ident)


class ShortTermMemory(_Memory):
    """Conversations (the seed's ``client.short_term``)."""

    async def add_message(
        self,
        session_id: str,
        role: MessageRole | str,
        content: str,
        *,
        metadata: dict[str, Any] | None = None,
        user_identifier: str | None = None,
        timestamp: datetime | None = None,
        title: str | None = None,
        embedding: list[float] | None = None,
    ) -> Message:
        """Append a message to the user's conversation of ``session_id`` (one conversation
        per user and session). Engram adds ``timestamp`` (default: when the ingestor took
        it), ``title`` (the conversation's) and ``embedding``: the content's vector for
        vector search (without it, the ingestor's embedder's, when it has one)."""
        op = "add_message"
        user = self._writer(op, user_identifier, "conversation")
        sid = _identifier(op, session_id, "session_id")
        vec = _embedding(op, embedding)
        try:
            role = MessageRole(role.lower() if isinstance(role, str) else role)
        except ValueError as e:
            raise InvalidRequestError(str(e), op=op, field="role") from e
        message_id = uuid7()
        body: dict[str, Any] = {
            "event_id": uuid7(),
            "message_id": message_id,
            "session_id": sid,
            "role": role.value,
            "content": content,
        }
        _put(body, "user_identifier", user)
        if metadata:
            body["metadata"] = metadata
        if timestamp is not None:
            body["timestamp"] = rfc3339(timestamp)
        _put(body, "title", title)
        _put(body, "embedding", vec)
        acc = await self._t.write(op, user, "POST", "/v1/messages", body)
        self._owners.put(message_id, user)
        return Message(
            id=UUID(message_id),
            role=role,
            content=content,
            conversation_id=UUID(str(acc["conversation_id"])),
            metadata=dict(metadata or {}),
            session_id=sid,
            created_at=_utc(timestamp) if timestamp is not None else datetime.now(UTC),
            embedding=vec,
            receipt=_receipt(acc, user),
        )

    async def delete_message(
        self, message_id: UUID | str, *, user_identifier: str | None = None
    ) -> WriteReceipt:
        """Delete a message (the library's ``delete_message``): it leaves its conversation,
        whose order is mended around it. The user is the one given, or the one this client
        added the message for. A message that does not exist is no error; another user's is
        refused by the projector (``client.wait_applied(receipt)`` raises ``RejectedError``).
        Engram's log keeps the deletion, and the content in the earlier event until the user
        is erased."""
        op = "delete_message"
        mid = _id(message_id)
        user = self._owner(op, user_identifier, mid)
        body: dict[str, Any] = {"event_id": uuid7()}
        path = _write_path(user, "/messages/" + segment(mid))
        return _receipt(await self._t.write(op, user, "DELETE", path, body), user)

    async def clear_session(
        self, session_id: str, *, user_identifier: str | None = None
    ) -> WriteReceipt:
        """Delete the user's conversation of ``session_id`` with all its messages (the
        library's ``clear_session``); a later message of the session starts it anew. Traces of
        the session stay. A session without messages is no error."""
        op = "clear_session"
        user = self._writer(op, user_identifier, "deletion")
        sid = _identifier(op, session_id, "session_id")
        body: dict[str, Any] = {"event_id": uuid7()}
        path = _write_path(user, "/conversations/" + segment(sid))
        return _receipt(await self._t.write(op, user, "DELETE", path, body), user)

    async def get_conversation(
        self,
        session_id: str,
        *,
        user_identifier: str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> Conversation:
        """The user's conversation of ``session_id`` with its first ``limit`` (default
        1000) messages, oldest first, then those at or after ``since`` (the library's
        order of the two). A session without messages answers an empty conversation."""
        op = "get_conversation"
        user = self._reader(op, user_identifier)
        sid = _identifier(op, session_id, "session_id")
        root = user_path(user)
        rows, convs = await asyncio.gather(
            self._pages(
                op,
                user,
                f"{root}/conversations/{segment(sid)}/messages",
                "messages",
                {},
                limit or 1000,
            ),
            self._pages(op, user, f"{root}/conversations", "conversations", {}, _PAGE),
        )
        meta = next((c for c in convs if c.get("session_id") == sid), None)
        if meta is None and not rows:
            return Conversation(session_id=sid)
        conv_id = UUID(str(meta["id"])) if meta else None
        messages = [message_from(r, conversation_id=conv_id, session_id=sid) for r in rows]
        if since is not None:
            floor = _utc(since)
            messages = [m for m in messages if m.created_at is None or m.created_at >= floor]
        if meta is None:
            first = messages[0].created_at if messages else None
            return Conversation(session_id=sid, messages=messages, created_at=first)
        return conversation_from(meta, messages)

    async def list_conversations(
        self, *, user_identifier: str | None = None, limit: int = 100
    ) -> list[Conversation]:
        """The user's conversations (without messages), most recently updated first."""
        op = "list_conversations"
        user = self._reader(op, user_identifier)
        rows = await self._pages(
            op, user, user_path(user) + "/conversations", "conversations", {}, limit
        )
        return [conversation_from(r) for r in rows]

    async def search_messages(
        self,
        query: str,
        *,
        session_id: str | None = None,
        limit: int = 10,
        threshold: float | None = None,
        user_identifier: str | None = None,
        by_vector: bool = False,
        embedding: list[float] | None = None,
    ) -> list[MessageHit]:
        """The user's messages that contain any word of ``query``, best match first, each
        with its ``session_id`` and ``score`` (full text; no ``metadata_filters``);
        ``session_id`` keeps one session's.

        By vector, nearest first, ``score`` the cosine similarity ``(1 + cos θ) / 2``:
        ``by_vector=True`` has the query service embed ``query`` (its ``EMBEDDER``; a 400
        without one), ``embedding=`` compares that vector instead (``query`` is not sent).
        Only messages with a vector of the query's length are compared; ``threshold`` (0 to
        1, vector searches only) drops lower scores."""
        op = "search_messages"
        user = self._reader(op, user_identifier)
        filters: dict[str, str | bool] = {}
        _put(filters, "session_id", session_id)
        rows = await self._search(
            op,
            user,
            "messages",
            query,
            filters,
            limit,
            by_vector=by_vector,
            threshold=threshold,
            embedding=embedding,
        )
        return [message_hit_from(r) for r in rows]


def _entity_ref(op: str, field: str, ref: EntityRef | Mapping[str, Any]) -> dict[str, str]:
    r = ref if isinstance(ref, EntityRef) else EntityRef.model_validate(dict(ref))
    if r.label is not None:
        raise InvalidRequestError(
            "Engram's entities have no label: name them by id, or name and type",
            op=op,
            field=f"{field}.label",
        )
    out: dict[str, str] = {}
    if r.id:
        out["id"] = r.id
    if r.name:
        out["name"] = r.name
    if r.type:
        out["type"] = r.type
    return out


def _endpoint(op: str, field: str, ref: EntityLike) -> dict[str, str]:
    """A relationship's endpoint as the ingestor takes it: ``{"id"}``, or ``{"name",
    "type"}`` (created when absent)."""
    if isinstance(ref, UUID | str):
        return {"id": _identifier(op, str(ref), field)}
    if isinstance(ref, Entity):
        if ref.id:
            return {"id": ref.id}
        return _entity_ref(op, field, EntityRef(name=ref.name or None, type=ref.type))
    return _entity_ref(op, field, ref)


def _ref_id(user: str | None, ref: Mapping[str, str]) -> str:
    """The id of the entity a reference names: its id, else the one derived from the user,
    name and type."""
    return ref.get("id") or entity_id(user, ref.get("name", ""), ref.get("type"))


def _entity_key(op: str, entity: Entity | UUID | str) -> str:
    """The id of an entity given as read or written, or as its id."""
    value = entity.id if isinstance(entity, Entity) else str(entity)
    if not value:
        raise InvalidRequestError(
            "this entity has no id yet: read it (get_entity_by_name) or pass its id",
            op=op,
            field="entity_id",
        )
    return value


class LongTermMemory(_Memory):
    """Preferences, entities, relationships and facts (the seed's ``client.long_term``)."""

    async def add_preference(
        self,
        category: str,
        preference: str,
        *,
        context: str | None = None,
        confidence: float = 1.0,
        metadata: dict[str, Any] | None = None,
        user_identifier: str | None = None,
        applies_to: Sequence[EntityRef | Mapping[str, Any]] | None = None,
        valid_from: datetime | None = None,
        embedding: list[float] | None = None,
    ) -> Preference:
        """Record a preference of the user, valid from ``valid_from`` (Engram's; default:
        when the ingestor took it), applying to the entities of ``applies_to``. Its id is
        chosen here, so ``supersede_preference(old.id, new.id)`` works at once. Engram adds
        ``embedding``: the vector of the preference and its context for vector search
        (without it, the ingestor's embedder's, when it has one)."""
        op = "add_preference"
        user = self._writer(op, user_identifier, "preference")
        refs = [_entity_ref(op, f"applies_to[{i}]", r) for i, r in enumerate(applies_to or [])]
        vec = _embedding(op, embedding)
        pref_id = uuid7()
        body: dict[str, Any] = {
            "event_id": uuid7(),
            "preference_id": pref_id,
            "category": category,
            "preference": preference,
            "confidence": confidence,
        }
        _put(body, "user_identifier", user)
        _put(body, "context", context)
        if metadata:
            body["metadata"] = metadata
        if refs:
            body["applies_to"] = refs
        if valid_from is not None:
            body["valid_from"] = rfc3339(valid_from)
        _put(body, "embedding", vec)
        acc = await self._t.write(op, user, "POST", "/v1/preferences", body)
        self._owners.put(pref_id, user)
        return Preference(
            id=UUID(pref_id),
            category=category,
            preference=preference,
            context=context,
            confidence=confidence,
            metadata=dict(metadata or {}),
            applies_to=[
                Entity(id=r.get("id"), name=r.get("name", ""), type=r.get("type")) for r in refs
            ],
            valid_from=_utc(valid_from) if valid_from is not None else None,
            embedding=vec,
            receipt=_receipt(acc, user),
        )

    async def supersede_preference(
        self,
        old_preference_id: UUID | str,
        new_preference_id: UUID | str,
        *,
        user_identifier: str | None = None,
        valid_until: datetime | None = None,
    ) -> WriteReceipt:
        """Mark ``old`` as superseded by ``new``: ``(old)-[:SUPERSEDED_BY]->(new)`` and
        ``old.valid_until`` (default: when the ingestor took it). Both must be the same
        user's: the one this client added them for, or ``user_identifier=``.

        A preference has at most one successor: superseding it again with another, across
        users, or by one that does not exist is refused by the projector, and
        ``client.wait_applied(receipt)`` raises ``RejectedError`` with the reason."""
        op = "supersede_preference"
        old, new = _id(old_preference_id), _id(new_preference_id)
        user = self._owner(op, user_identifier, old, new)
        body: dict[str, Any] = {"event_id": uuid7(), "new_id": new}
        _put(body, "user_identifier", user)
        if valid_until is not None:
            body["valid_until"] = rfc3339(valid_until)
        path = f"/v1/preferences/{segment(old)}/supersede"
        return _receipt(await self._t.write(op, user, "POST", path, body), user)

    async def delete_entity(
        self, entity_id: UUID | str, *, user_identifier: str | None = None
    ) -> WriteReceipt:
        """Delete one of the user's entities (the hosted service's ``delete_entity``): the
        entity, the entities merged into it, its mentions, relationships and the preferences'
        ``APPLIES_TO`` links to it (the preferences stay), and the user's facts about it. An
        entity that does not exist is no error; another user's is refused by the projector."""
        op = "delete_entity"
        eid = _id(entity_id)
        user = self._owner(op, user_identifier, eid)
        body: dict[str, Any] = {"event_id": uuid7()}
        path = _write_path(user, "/entities/" + segment(eid))
        return _receipt(await self._t.write(op, user, "DELETE", path, body), user)

    async def get_preferences_for(
        self,
        user_identifier: str | None,
        *,
        applies_to: EntityRef | Mapping[str, Any] | None = None,
        active_only: bool = True,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
    ) -> list[Preference]:
        """The user's preferences (``None``: the shared tenant, multi-tenant mode off).

        ``active_only`` drops superseded ones; ``as_of`` keeps those valid at that instant
        (valid time); ``applies_to`` those applying to the entity (by id, else name and
        type, else name). Engram adds ``known_at``: answer as the system knew it then
        (transaction time). Ordered by ``created_at``, then id."""
        op = "get_preferences_for"
        user = self._reader(op, user_identifier)
        q: dict[str, str] = {}
        if applies_to is not None:
            ref = (
                applies_to
                if isinstance(applies_to, EntityRef)
                else EntityRef.model_validate(dict(applies_to))
            )
            if ref.id:
                q["applies_to_id"] = ref.id
            elif ref.type:
                q["applies_to_name"] = ref.name or ""
                q["applies_to_type"] = ref.type
            else:
                q["applies_to_name"] = ref.name or ""
        if not active_only:
            q["active_only"] = "false"
        if as_of is not None:
            q["as_of"] = rfc3339(as_of)
        if known_at is not None:
            q["known_at"] = rfc3339(known_at)
        out = await self._t.read(op, user, user_path(user) + "/preferences", q)
        return [preference_from(p) for p in out.get("preferences") or []]

    async def get_preference_history(
        self, user_identifier: str | None, *, known_at: datetime | None = None
    ) -> list[Preference]:
        """Every version of the user's preferences, superseded ones included, in the order
        the system recorded them, each with its validity interval and supersede links (the
        audit view); with ``known_at``, the history as the system knew it then."""
        op = "get_preference_history"
        user = self._reader(op, user_identifier)
        q = {"known_at": rfc3339(known_at)} if known_at is not None else {}
        out = await self._t.read(op, user, user_path(user) + "/preferences/history", q)
        return [preference_from(p) for p in out.get("preferences") or []]

    async def search_preferences(
        self,
        query: str,
        *,
        category: str | None = None,
        limit: int = 10,
        threshold: float | None = None,
        user_identifier: str | None = None,
        by_vector: bool = False,
        embedding: list[float] | None = None,
    ) -> list[PreferenceHit]:
        """The user's preferences, superseded ones too, whose ``preference`` or ``context``
        contains any word of ``query``, best match first (full text); ``category`` keeps one
        category. By vector as ``search_messages``: ``by_vector=True`` (the query service
        embeds ``query``) or ``embedding=``, with ``threshold``."""
        op = "search_preferences"
        user = self._reader(op, user_identifier)
        filters: dict[str, str | bool] = {}
        _put(filters, "category", category)
        rows = await self._search(
            op,
            user,
            "preferences",
            query,
            filters,
            limit,
            by_vector=by_vector,
            threshold=threshold,
            embedding=embedding,
        )
        return [preference_hit_from(r) for r in rows]

    async def add_entity(
        self,
        name: str,
        entity_type: str,
        *,
        subtype: str | None = None,
        description: str | None = None,
        aliases: Sequence[str] | None = None,
        attributes: dict[str, Any] | None = None,
        confidence: float | None = None,
        user_identifier: str | None = None,
        message_ids: Sequence[UUID | str] | None = None,
        trace_ids: Sequence[UUID | str] | None = None,
        embedding: list[float] | None = None,
    ) -> EntityDetail:
        """Record an entity of the user, or add to it: its id is derived from the user,
        ``name`` and ``entity_type`` (the entity a preference's ``applies_to`` of that name
        and type names), so adding it again reaches the same entity. Given fields replace
        the stored ones (``attributes`` wholesale), ``aliases`` add to them, and the user's
        messages and traces of ``message_ids`` and ``trace_ids`` are linked as mentioning it.
        ``embedding`` is the vector of its name and description for vector search (without
        it, the ingestor's embedder's, when it has one; adding it again without either keeps
        the stored one).

        Answers the entity as this call wrote it, once the log stored the write (the
        library answers ``(entity, DeduplicationResult)``; Engram deduplicates by name and
        type only); ``get_entity`` reads what is stored."""
        op = "add_entity"
        user = self._writer(op, user_identifier, "entity")
        vec = _embedding(op, embedding)
        body: dict[str, Any] = {"event_id": uuid7(), "name": name, "type": entity_type}
        _put(body, "user_identifier", user)
        _put(body, "subtype", subtype)
        _put(body, "description", description)
        if aliases:
            body["aliases"] = list(aliases)
        if attributes:
            body["attributes"] = attributes
        _put(body, "confidence", confidence)
        if message_ids:
            body["message_ids"] = [_id(m) for m in message_ids]
        if trace_ids:
            body["trace_ids"] = [_id(t) for t in trace_ids]
        _put(body, "embedding", vec)
        acc = await self._t.write(op, user, "POST", "/v1/entities", body)
        eid = str(acc["entity_id"])
        self._owners.put(eid, user)
        return EntityDetail(
            id=eid,
            name=name,
            type=entity_type,
            subtype=subtype,
            description=description,
            aliases=list(aliases or []),
            attributes=dict(attributes or {}),
            confidence=1.0 if confidence is None else confidence,
            embedding=vec,
            receipt=_receipt(acc, user),
        )

    async def get_entity(
        self, entity_id: UUID | str, *, user_identifier: str | None = None
    ) -> EntityDetail | None:
        """One of the user's entities, or ``None`` when the user has none of that id (also
        when another user has it). A merged entity's id answers the entity it was merged
        into, ``resolved_from`` set to the id asked for."""
        op = "get_entity"
        eid = _id(entity_id)
        user = self._owner(op, user_identifier, eid)
        try:
            out = await self._t.read(op, user, f"{user_path(user)}/entities/{segment(eid)}")
        except NotFoundError:
            return None
        return entity_detail_from(out)

    async def get_entity_by_name(
        self,
        name: str,
        *,
        entity_type: str | None = None,
        user_identifier: str | None = None,
    ) -> EntityDetail | None:
        """The user's entity of this name, or ``None``. Without ``entity_type``, as the
        library: the first (by name, then id) of the entities with that name or alias.
        Engram adds ``entity_type``: exactly the entity of that name and type (its
        survivor when it was merged)."""
        op = "get_entity_by_name"
        user = self._reader(op, user_identifier)
        if entity_type is None:
            path = user_path(user) + "/entities"
            rows = await self._pages(op, user, path, "entities", {"name": name}, 1)
            return entity_detail_from(rows[0]) if rows else None
        q = {"name": name, "type": entity_type}
        try:
            out = await self._t.read(op, user, user_path(user) + "/entities/by-name", q)
        except NotFoundError:
            return None
        return entity_detail_from(out)

    async def list_entities(
        self,
        *,
        entity_type: str | None = None,
        name: str | None = None,
        limit: int = 100,
        user_identifier: str | None = None,
    ) -> list[EntityDetail]:
        """The user's entities by name, then id, merged ones left out: ``entity_type``
        keeps one type (exact, case-sensitive), ``name`` those of that name or with it
        among their aliases; up to ``limit``, page after page."""
        op = "list_entities"
        user = self._reader(op, user_identifier)
        q: dict[str, str] = {}
        _put(q, "type", entity_type)
        _put(q, "name", name)
        rows = await self._pages(op, user, user_path(user) + "/entities", "entities", q, limit)
        return [entity_detail_from(r) for r in rows]

    async def search_entities(
        self,
        query: str,
        *,
        entity_types: Sequence[str] | None = None,
        limit: int = 10,
        threshold: float | None = None,
        user_identifier: str | None = None,
        by_vector: bool = False,
        embedding: list[float] | None = None,
    ) -> list[EntityHit]:
        """The user's entities whose ``name`` or ``description`` contains any word of
        ``query``, best match first (full text). ``entity_types`` keeps those types (exact,
        case-sensitive; the library upper-cases them): one search per type, the hits merged
        by score. By vector as ``search_messages``: ``by_vector=True`` (the query service
        embeds ``query``) or ``embedding=``, with ``threshold``."""
        op = "search_entities"
        user = self._reader(op, user_identifier)
        types = list(dict.fromkeys(entity_types or []))

        async def search(filters: dict[str, str | bool]) -> list[dict[str, Any]]:
            return await self._search(
                op,
                user,
                "entities",
                query,
                filters,
                limit,
                by_vector=by_vector,
                threshold=threshold,
                embedding=embedding,
            )

        if len(types) <= 1:
            rows = await search({"type": types[0]} if types else {})
            return [entity_hit_from(r) for r in rows]
        answers = await asyncio.gather(*(search({"type": t}) for t in types))
        hits = [entity_hit_from(r) for rows in answers for r in rows]
        hits.sort(key=lambda h: (-h.score, h.id or ""))
        return hits[:limit]

    async def get_related_entities(
        self,
        entity: Entity | UUID | str,
        *,
        relationship_types: Sequence[str] | None = None,
        depth: int = 1,
        direction: str | None = None,
        limit: int | None = None,
        user_identifier: str | None = None,
    ) -> Related:
        """The entities related to one of the user's (its survivor when it was merged):
        breadth first along its relationships up to ``depth`` hops (1 to 3; the library
        walks one), each entity once at its shortest distance with the path that reached
        it, nearest first; ``relationship_types`` and ``direction`` (``both``, the default,
        ``out`` or ``in``) hold on every hop; at most ``limit`` entities (default 100),
        ``truncated`` when more were within reach. ``NotFoundError`` when the user has no
        such entity. ``[(r.entity, r.relationship) for r in related.related]`` is the
        library's list of pairs."""
        op = "get_related_entities"
        eid = _entity_key(op, entity)
        user = self._owner(op, user_identifier, eid)
        q: dict[str, str | list[str]] = {}
        if depth != 1:
            q["depth"] = str(depth)
        if relationship_types:
            q["type"] = list(relationship_types)
        _put(q, "direction", direction)
        if limit is not None:
            q["limit"] = _limit(op, limit)
        path = f"{user_path(user)}/entities/{segment(eid)}/related"
        return related_from(await self._t.read(op, user, path, q))

    async def merge_duplicate_entities(
        self,
        source_id: UUID | str,
        target_id: UUID | str,
        *,
        user_identifier: str | None = None,
    ) -> WriteReceipt:
        """Merge the user's entity ``source_id`` into ``target_id``: the target gains the
        source's mentions, preferences, relationships and merged entities, and its name
        and aliases as aliases; the source's id reads as the target from then on. The
        user is the one given, or the one this client added either entity for. Answers
        the receipt (the library answers both entities, read after the merge); merging
        another user's entity, or one that does not exist, is refused by the projector
        (``client.wait_applied(receipt)`` raises ``RejectedError``)."""
        op = "merge_duplicate_entities"
        src, dst = _id(source_id), _id(target_id)
        user = self._owner(op, user_identifier, src, dst)
        body: dict[str, Any] = {"event_id": uuid7(), "source_id": src, "target_id": dst}
        _put(body, "user_identifier", user)
        return _receipt(await self._t.write(op, user, "POST", "/v1/entities/merge", body), user)

    async def add_relationship(
        self,
        source: EntityLike,
        target: EntityLike,
        relationship_type: str,
        *,
        description: str | None = None,
        confidence: float = 1.0,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        attributes: dict[str, Any] | None = None,
        user_identifier: str | None = None,
    ) -> Relationship:
        """Relate two of the user's entities, each given as an entity, an ``EntityRef``
        (by name and type it is created when absent) or an id. One relationship per
        source, type and target: adding it again updates it; its id is derived from them.
        The user is the one given, or the one this client added an endpoint given by id
        for."""
        op = "add_relationship"
        src, dst = _endpoint(op, "source", source), _endpoint(op, "target", target)
        ids = [r["id"] for r in (src, dst) if "id" in r]
        if user_identifier is None and ids:
            user = self._owner(op, None, *ids)
        else:
            user = self._writer(op, user_identifier, "relationship")
        body: dict[str, Any] = {
            "event_id": uuid7(),
            "source": src,
            "target": dst,
            "type": relationship_type,
            "confidence": confidence,
        }
        _put(body, "user_identifier", user)
        _put(body, "description", description)
        if valid_from is not None:
            body["valid_from"] = rfc3339(valid_from)
        if valid_until is not None:
            body["valid_until"] = rfc3339(valid_until)
        if attributes:
            body["attributes"] = attributes
        acc = await self._t.write(op, user, "POST", "/v1/relationships", body)
        source_id, target_id = _ref_id(user, src), _ref_id(user, dst)
        self._owners.put(source_id, user)
        self._owners.put(target_id, user)
        return Relationship(
            id=str(acc["relationship_id"]),
            type=relationship_type,
            source_id=source_id,
            target_id=target_id,
            description=description,
            confidence=confidence,
            valid_from=_utc(valid_from) if valid_from is not None else None,
            valid_until=_utc(valid_until) if valid_until is not None else None,
            attributes=dict(attributes or {}),
            receipt=_receipt(acc, user),
        )

    async def add_fact(
        self,
        subject: str,
        predicate: str,
        obj: str,
        *,
        confidence: float = 1.0,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        metadata: dict[str, Any] | None = None,
        user_identifier: str | None = None,
    ) -> Fact:
        """Record a fact of the user, valid from ``valid_from`` (default: when the ingestor
        took it) until ``valid_until`` (open when absent). Its id is chosen here."""
        op = "add_fact"
        user = self._writer(op, user_identifier, "fact")
        fact_id = uuid7()
        body: dict[str, Any] = {
            "event_id": uuid7(),
            "fact_id": fact_id,
            "subject": subject,
            "predicate": predicate,
            "object": obj,
            "confidence": confidence,
        }
        _put(body, "user_identifier", user)
        if valid_from is not None:
            body["valid_from"] = rfc3339(valid_from)
        if valid_until is not None:
            body["valid_until"] = rfc3339(valid_until)
        if metadata:
            body["metadata"] = metadata
        acc = await self._t.write(op, user, "POST", "/v1/facts", body)
        return Fact(
            id=UUID(fact_id),
            subject=subject,
            predicate=predicate,
            object=obj,
            confidence=confidence,
            valid_from=_utc(valid_from) if valid_from is not None else None,
            valid_until=_utc(valid_until) if valid_until is not None else None,
            metadata=dict(metadata or {}),
            receipt=_receipt(acc, user),
        )

    async def get_facts(
        self,
        user_identifier: str | None,
        *,
        subject: str | None = None,
        predicate: str | None = None,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
        limit: int = 100,
    ) -> list[Fact]:
        """The user's facts (``None``: the shared tenant), highest confidence first, then
        newest: ``subject`` and ``predicate`` exact; ``as_of`` keeps those valid at that
        instant (valid time), ``known_at`` those recorded by then (transaction time)."""
        op = "get_facts"
        user = self._reader(op, user_identifier)
        q: dict[str, str] = {}
        _put(q, "subject", subject)
        _put(q, "predicate", predicate)
        if as_of is not None:
            q["as_of"] = rfc3339(as_of)
        if known_at is not None:
            q["known_at"] = rfc3339(known_at)
        q["limit"] = _limit(op, limit)
        out = await self._t.read(op, user, user_path(user) + "/facts", q)
        return [fact_from(f) for f in out.get("facts") or []]

    async def get_facts_about(
        self, subject: str, *, limit: int = 100, user_identifier: str | None = None
    ) -> list[Fact]:
        """The user's facts about ``subject`` (``get_facts(subject=...)``)."""
        return await self.get_facts(user_identifier, subject=subject, limit=limit)

    async def get_entity_mentions(
        self,
        entity_id: UUID | str,
        *,
        limit: int | None = None,
        user_identifier: str | None = None,
    ) -> EntityMentions:
        """The user's messages (newest first) and traces (latest started first) that
        mention the entity (its survivor when it was merged), at most ``limit`` of each
        (default 100). ``NotFoundError`` when the user has no such entity."""
        op = "get_entity_mentions"
        eid = _id(entity_id)
        user = self._owner(op, user_identifier, eid)
        q = {"limit": _limit(op, limit)} if limit is not None else {}
        path = f"{user_path(user)}/entities/{segment(eid)}/mentions"
        return entity_mentions_from(await self._t.read(op, user, path, q))

    async def get_entities_from_message(
        self,
        message_id: UUID | str,
        *,
        limit: int | None = None,
        user_identifier: str | None = None,
    ) -> MentionedEntities:
        """The entities the user's message mentions (``add_entity(message_ids=...)``; Engram
        extracts nothing, so no positions), by name then id, at most ``limit`` (default
        100). ``NotFoundError`` when the user has no such message."""
        op = "get_entities_from_message"
        mid = _id(message_id)
        user = self._owner(op, user_identifier, mid)
        q = {"limit": _limit(op, limit)} if limit is not None else {}
        path = f"{user_path(user)}/messages/{segment(mid)}/entities"
        return mentioned_entities_from(await self._t.read(op, user, path, q))


class ReasoningMemory(_Memory):
    """Reasoning traces (the seed's ``client.reasoning``)."""

    async def start_trace(
        self,
        session_id: str,
        task: str,
        *,
        metadata: dict[str, Any] | None = None,
        user_identifier: str | None = None,
        embedding: list[float] | None = None,
    ) -> ReasoningTrace:
        """Open a trace of ``task`` in ``session_id``, scoped to the user. Engram adds
        ``embedding``: the task's vector for ``get_similar_traces`` (without it, the
        ingestor's embedder's, when it has one)."""
        op = "start_trace"
        user = self._writer(op, user_identifier, "trace")
        sid = _identifier(op, session_id, "session_id")
        vec = _embedding(op, embedding)
        trace_id = uuid7()
        body: dict[str, Any] = {
            "event_id": uuid7(),
            "trace_id": trace_id,
            "session_id": sid,
            "task": task,
        }
        _put(body, "user_identifier", user)
        if metadata:
            body["metadata"] = metadata
        _put(body, "embedding", vec)
        acc = await self._t.write(op, user, "POST", "/v1/traces", body)
        started = datetime.now(UTC)
        self._owners.put(trace_id, _TraceInfo(user, sid, task, started, dict(metadata or {})))
        return ReasoningTrace(
            id=UUID(trace_id),
            session_id=sid,
            task=task,
            task_embedding=vec,
            metadata=dict(metadata or {}),
            started_at=started,
            created_at=started,
            step_count=0,
            receipt=_receipt(acc, user),
        )

    async def add_step(
        self,
        trace_id: UUID | str,
        *,
        thought: str | None = None,
        action: str | None = None,
        observation: str | None = None,
        step_number: int | None = None,
        user_identifier: str | None = None,
    ) -> ReasoningStep:
        """Add a step to a trace. Numbered ``step_number``, else the next number: counted
        here for a trace this client started, by the projector otherwise."""
        op = "add_step"
        tid = _id(trace_id)
        user = self._owner(op, user_identifier, tid)
        info = self._owners.get(tid)
        if step_number is None and isinstance(info, _TraceInfo) and info.user == user:
            info.steps += 1
            step_number = info.steps
        step_id = uuid7()
        body: dict[str, Any] = {"event_id": uuid7(), "step_id": step_id}
        _put(body, "user_identifier", user)
        _put(body, "step_number", step_number)
        _put(body, "thought", thought)
        _put(body, "action", action)
        _put(body, "observation", observation)
        acc = await self._t.write(op, user, "POST", f"/v1/traces/{segment(tid)}/steps", body)
        self._owners.put(step_id, _StepInfo(user, tid))
        return ReasoningStep(
            id=UUID(step_id),
            trace_id=trace_id,
            step_number=step_number or 0,
            thought=thought,
            action=action,
            observation=observation,
            receipt=_receipt(acc, user),
        )

    async def record_tool_call(
        self,
        step_id: UUID | str,
        tool_name: str,
        arguments: dict[str, Any] | None = None,
        *,
        result: Any | None = None,
        status: ToolCallStatus | str = ToolCallStatus.SUCCESS,
        duration_ms: int | None = None,
        error: str | None = None,
        trace_id: UUID | str | None = None,
        user_identifier: str | None = None,
    ) -> ToolCall:
        """Record a call of ``tool_name`` made in a step. Engram routes it by its trace:
        known here for a step this client added, else pass ``trace_id=``."""
        op = "record_tool_call"
        sid = _id(step_id)
        info = self._owners.get(sid)
        if trace_id is None:
            if not isinstance(info, _StepInfo):
                raise InvalidRequestError(
                    f"this client did not add step {sid}: pass trace_id=", op=op, field="trace_id"
                )
            tid = info.trace_id
        else:
            tid = _id(trace_id)
        user = self._owner(op, user_identifier, sid, tid)
        try:
            st = ToolCallStatus(status)
        except ValueError as e:
            raise InvalidRequestError(str(e), op=op, field="status") from e
        call_id = uuid7()
        body: dict[str, Any] = {
            "event_id": uuid7(),
            "tool_call_id": call_id,
            "step_id": sid,
            "tool_name": tool_name,
            "status": st.value,
        }
        _put(body, "user_identifier", user)
        _put(body, "arguments", arguments)
        _put(body, "result", result)
        _put(body, "duration_ms", duration_ms)
        _put(body, "error", error)
        path = f"/v1/traces/{segment(tid)}/tool-calls"
        acc = await self._t.write(op, user, "POST", path, body)
        return ToolCall(
            id=UUID(call_id),
            tool_name=tool_name,
            arguments=dict(arguments or {}),
            result=result,
            status=st,
            duration_ms=duration_ms,
            error=error,
            step_id=UUID(sid),
            receipt=_receipt(acc, user),
        )

    async def complete_trace(
        self,
        trace_id: UUID | str,
        *,
        outcome: str | None = None,
        success: bool | None = None,
        user_identifier: str | None = None,
    ) -> ReasoningTrace:
        """Close a trace with its outcome. Answers once the log stored it; the session,
        task and start come from ``start_trace`` when this client started the trace (else
        they are empty: ``get_trace`` reads the stored trace)."""
        op = "complete_trace"
        tid = _id(trace_id)
        user = self._owner(op, user_identifier, tid)
        body: dict[str, Any] = {"event_id": uuid7()}
        _put(body, "user_identifier", user)
        _put(body, "outcome", outcome)
        _put(body, "success", success)
        acc = await self._t.write(op, user, "POST", f"/v1/traces/{segment(tid)}/complete", body)
        info = self._owners.get(tid)
        known = info if isinstance(info, _TraceInfo) else None
        return ReasoningTrace(
            id=UUID(tid),
            session_id=known.session_id if known else "",
            task=known.task if known else "",
            metadata=dict(known.metadata) if known else {},
            started_at=known.started_at if known else None,
            created_at=known.started_at if known else None,
            outcome=outcome,
            success=success,
            completed_at=datetime.now(UTC),
            step_count=known.steps if known else None,
            receipt=_receipt(acc, user),
        )

    async def get_trace(
        self, trace_id: UUID | str, *, user_identifier: str | None = None
    ) -> ReasoningTrace | None:
        """The user's trace with its steps and their tool calls, or ``None`` when the user
        has no such trace (also when another user has it)."""
        op = "get_trace"
        tid = _id(trace_id)
        try:
            UUID(tid)
        except ValueError:
            return None
        user = self._owner(op, user_identifier, tid)
        try:
            return trace_from(
                await self._t.read(op, user, f"{user_path(user)}/traces/{segment(tid)}")
            )
        except NotFoundError:
            return None

    async def list_traces(
        self,
        *,
        session_id: str | None = None,
        limit: int = 100,
        user_identifier: str | None = None,
    ) -> list[ReasoningTrace]:
        """The user's traces (of one session with ``session_id``), latest started first,
        without steps."""
        op = "list_traces"
        user = self._reader(op, user_identifier)
        q = {"session_id": session_id} if session_id is not None else {}
        if limit < 1:
            raise InvalidRequestError(f"limit {limit}: at least 1", op=op, field="limit")
        q["limit"] = str(min(limit, _PAGE))
        out = await self._t.read(op, user, user_path(user) + "/traces", q)
        return [trace_from(t) for t in out.get("traces") or []]

    async def get_session_traces(
        self, session_id: str, *, limit: int = 100, user_identifier: str | None = None
    ) -> list[ReasoningTrace]:
        """The traces of one session (``list_traces(session_id=...)``)."""
        return await self.list_traces(
            session_id=session_id, limit=limit, user_identifier=user_identifier
        )

    async def get_tool_stats(
        self, tool_name: str | None = None, *, user_identifier: str | None = None
    ) -> list[ToolStats]:
        """Tool statistics, most called first. With ``user_identifier``: from that user's
        own calls. Without: the global counters that sum every tenant's calls, as the
        library's (the admin scope for every user when authentication is on)."""
        op = "get_tool_stats"
        q = {"tool_name": tool_name} if tool_name is not None else {}
        if user_identifier is None:
            out = await self._t.read(op, None, "/v1/tools", q, consistent=False)
        else:
            user = _identifier(op, user_identifier, "user_identifier")
            out = await self._t.read(op, user, user_path(user) + "/tools", q)
        return [tool_stats_from(s) for s in out.get("tools") or []]

    async def search_steps(
        self,
        query: str,
        *,
        limit: int = 10,
        success_only: bool = True,
        user_identifier: str | None = None,
    ) -> list[StepHit]:
        """The user's reasoning steps whose thought, action or observation contains any
        word of ``query``, best match first, each with its tool calls and its trace's
        session, task, outcome and success. ``success_only`` (the library's default, true)
        keeps the steps of traces completed with success: those of open traces too need
        ``success_only=False``."""
        op = "search_steps"
        user = self._reader(op, user_identifier)
        filters: dict[str, str | bool] = {"success_only": True} if success_only else {}
        rows = await self._search(op, user, "steps", query, filters, limit)
        return [step_hit_from(r) for r in rows]

    async def get_similar_traces(
        self,
        task: str,
        *,
        limit: int = 5,
        success_only: bool = True,
        threshold: float = 0.7,
        user_identifier: str | None = None,
        embedding: list[float] | None = None,
    ) -> list[TraceHit]:
        """The user's traces whose task is nearest ``task``, best first, by vector only:
        the query service embeds ``task`` (its ``EMBEDDER``; a 400 without one), or
        ``embedding=`` is compared instead (``task`` is not sent). ``score`` is the cosine
        similarity ``(1 + cos θ) / 2``, the library's scale; ``threshold`` drops lower ones
        and ``success_only`` keeps the traces completed with success (the library's defaults:
        0.7 and true). Without their steps (``get_trace`` reads them)."""
        op = "get_similar_traces"
        user = self._reader(op, user_identifier)
        filters: dict[str, str | bool] = {"success_only": True} if success_only else {}
        rows = await self._search(
            op, user, "traces", task, filters, limit, threshold=threshold, embedding=embedding
        )
        return [trace_hit_from(r) for r in rows]

    async def get_trace_entities(
        self,
        trace_id: UUID | str,
        *,
        limit: int | None = None,
        user_identifier: str | None = None,
    ) -> MentionedEntities:
        """The entities the user's trace mentions (``add_entity(trace_ids=...)``), by name
        then id, at most ``limit`` (default 100). ``NotFoundError`` when the user has no
        such trace."""
        op = "get_trace_entities"
        tid = _id(trace_id)
        user = self._owner(op, user_identifier, tid)
        q = {"limit": _limit(op, limit)} if limit is not None else {}
        path = f"{user_path(user)}/traces/{segment(tid)}/entities"
        return mentioned_entities_from(await self._t.read(op, user, path, q))
