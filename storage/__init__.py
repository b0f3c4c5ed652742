"""Persistence: SQLAlchemy 2 async tables and the repository of connection requests."""

from storage.db import DatabaseProblem, explained, has_schema, make_engine, make_sessionmaker
from storage.limits import NameTaken, SubmissionLimits, TooFrequent, TooManyOpen
from storage.repository import RequestRepository
from storage.schema import SchemaBehind, prepare_schema, schema_state, upgrade_schema

__all__ = [
    "DatabaseProblem",
    "NameTaken",
    "RequestRepository",
    "SchemaBehind",
    "SubmissionLimits",
    "TooFrequent",
    "TooManyOpen",
    "explained",
    "has_schema",
    "make_engine",
    "make_sessionmaker",
    "prepare_schema",
    "schema_state",
    "upgrade_schema",
]
