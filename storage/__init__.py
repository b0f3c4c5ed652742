"""Persistence: SQLAlchemy 2 async tables and the repository of connection requests."""

from storage.db import create_schema, has_schema, make_engine, make_sessionmaker
from storage.repository import (
    NameTaken,
    RequestRepository,
    SubmissionLimits,
    TooFrequent,
    TooManyOpen,
)

__all__ = [
    "NameTaken",
    "RequestRepository",
    "SubmissionLimits",
    "TooFrequent",
    "TooManyOpen",
    "create_schema",
    "has_schema",
    "make_engine",
    "make_sessionmaker",
]
