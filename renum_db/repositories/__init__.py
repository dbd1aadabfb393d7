"""Typed repositories over the tables; run them on a connection from `Database` or `act_as`."""

from renum_db.repositories.agents import (
    AgentExecution,
    AgentExecutionRepository,
    AgentMonthlyTokenUsage,
    ClientMonthlyTokenUsage,
)
from renum_db.repositories.investigations import Investigation, InvestigationRepository
from renum_db.repositories.keyset import Keyset
from renum_db.repositories.knowledge import (
    MAX_LIMIT,
    Document,
    DocumentRepository,
    KnowledgeBase,
    KnowledgeBaseRepository,
    KnowledgeCollection,
    KnowledgeCollectionRepository,
)
from renum_db.repositories.tenancy import (
    Agent,
    AgentRepository,
    Client,
    ClientRepository,
    CredentialMetadata,
    CredentialMetadataRepository,
    User,
    UserRepository,
)

__all__ = [
    "MAX_LIMIT",
    "Agent",
    "AgentExecution",
    "AgentExecutionRepository",
    "AgentMonthlyTokenUsage",
    "AgentRepository",
    "Client",
    "ClientMonthlyTokenUsage",
    "ClientRepository",
    "CredentialMetadata",
    "CredentialMetadataRepository",
    "Document",
    "DocumentRepository",
    "Investigation",
    "InvestigationRepository",
    "Keyset",
    "KnowledgeBase",
    "KnowledgeBaseRepository",
    "KnowledgeCollection",
    "KnowledgeCollectionRepository",
    "User",
    "UserRepository",
]
