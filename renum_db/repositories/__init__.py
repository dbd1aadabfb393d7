"""Typed repositories over the tables; run them on a connection from `Database` or `act_as`."""

from renum_db.repositories.agents import (
    AgentExecution,
    AgentExecutionRepository,
    AgentMonthlyTokenUsage,
    ClientMonthlyTokenUsage,
)
from renum_db.repositories.investigations import Investigation, InvestigationRepository
from renum_db.repositories.knowledge import (
    MAX_LIMIT,
    Document,
    DocumentRepository,
    KnowledgeBase,
    KnowledgeBaseRepository,
    KnowledgeCollection,
    KnowledgeCollectionRepository,
)

__all__ = [
    "MAX_LIMIT",
    "AgentExecution",
    "AgentExecutionRepository",
    "AgentMonthlyTokenUsage",
    "ClientMonthlyTokenUsage",
    "Document",
    "DocumentRepository",
    "Investigation",
    "InvestigationRepository",
    "KnowledgeBase",
    "KnowledgeBaseRepository",
    "KnowledgeCollection",
    "KnowledgeCollectionRepository",
]
