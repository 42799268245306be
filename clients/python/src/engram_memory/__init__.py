"""Engram's Python client, with the API of ``neo4j_agent_memory``'s multi-tenant page.

Change the import and the settings; the rest of the code stays::

    from engram_memory import EntityRef, MemoryClient, MemorySettings

    settings = MemorySettings(memory={"multi_tenant": True})
    async with MemoryClient(settings) as client:
        await client.users.upsert_user(identifier="sara@omg.com", attributes={"role": "manager"})
"""

from .client import MemoryClient
from .errors import (
    ConflictError,
    EngramError,
    EngramTimeoutError,
    ForbiddenError,
    GoneError,
    InvalidRequestError,
    NotCaughtUpError,
    NotConnectedError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    UnauthenticatedError,
    UnavailableError,
    UserRequiredError,
)
from .memory import LongTermMemory, ReasoningMemory, ShortTermMemory, UserMemory
from .models import (
    Conversation,
    Entity,
    EntityDetail,
    EntityHit,
    EntityMentions,
    EntityRef,
    Fact,
    Fate,
    FateStatus,
    MemoryEntry,
    MentionedEntities,
    Message,
    MessageHit,
    MessageRole,
    Preference,
    PreferenceHit,
    ReasoningStep,
    ReasoningTrace,
    Related,
    RelatedEntity,
    Relationship,
    StepHit,
    ToolCall,
    ToolCallStatus,
    ToolStats,
    TraceHit,
    User,
    WriteReceipt,
)
from .settings import EngramConfig, MemoryConfig, MemorySettings
from .sync import (
    SyncLongTermMemory,
    SyncMemoryClient,
    SyncReasoningMemory,
    SyncShortTermMemory,
    SyncUserMemory,
)

__version__ = "0.1.0"

__all__ = [
    "ConflictError",
    "Conversation",
    "EngramConfig",
    "EngramError",
    "EngramTimeoutError",
    "Entity",
    "EntityDetail",
    "EntityHit",
    "EntityMentions",
    "EntityRef",
    "Fact",
    "Fate",
    "FateStatus",
    "ForbiddenError",
    "GoneError",
    "InvalidRequestError",
    "LongTermMemory",
    "MemoryClient",
    "MemoryConfig",
    "MemoryEntry",
    "MemorySettings",
    "MentionedEntities",
    "Message",
    "MessageHit",
    "MessageRole",
    "NotCaughtUpError",
    "NotConnectedError",
    "NotFoundError",
    "Preference",
    "PreferenceHit",
    "RateLimitedError",
    "ReasoningMemory",
    "ReasoningStep",
    "ReasoningTrace",
    "RejectedError",
    "Related",
    "RelatedEntity",
    "Relationship",
    "ShortTermMemory",
    "StepHit",
    "SyncLongTermMemory",
    "SyncMemoryClient",
    "SyncReasoningMemory",
    "SyncShortTermMemory",
    "SyncUserMemory",
    "ToolCall",
    "ToolCallStatus",
    "ToolStats",
    "TraceHit",
    "UnauthenticatedError",
    "UnavailableError",
    "User",
    "UserMemory",
    "UserRequiredError",
    "WriteReceipt",
    "__version__",
]
