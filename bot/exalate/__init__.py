"""The adapter to Exalate on Jira: one client, its credentials, typed answers and errors.

Import from here; the module layout behind it may change. Its stand-in, the simulator,
lives with the other stand-ins in ``bot.sandbox``.
"""

from bot.exalate.auth import BasicAuth, BearerToken, Credentials
from bot.exalate.client import ExalateClient
from bot.exalate.errors import (
    ExalateAuthError,
    ExalateBadRequest,
    ExalateCallNotTaken,
    ExalateEndpointMissing,
    ExalateError,
    ExalateNameConflict,
    ExalateNotSent,
    ExalateRateLimited,
    ExalateRejected,
    ExalateServerError,
    ExalateTimeout,
    ExalateUnavailable,
    ExalateUnreachable,
)
from bot.exalate.models import (
    Connection,
    ConnectionSpec,
    CreatedConnection,
    JiraUser,
    Project,
    ServerInfo,
)

__all__ = [
    "BasicAuth",
    "BearerToken",
    "Connection",
    "ConnectionSpec",
    "CreatedConnection",
    "Credentials",
    "ExalateAuthError",
    "ExalateBadRequest",
    "ExalateCallNotTaken",
    "ExalateClient",
    "ExalateEndpointMissing",
    "ExalateError",
    "ExalateNameConflict",
    "ExalateNotSent",
    "ExalateRateLimited",
    "ExalateRejected",
    "ExalateServerError",
    "ExalateTimeout",
    "ExalateUnavailable",
    "ExalateUnreachable",
    "JiraUser",
    "Project",
    "ServerInfo",
]
