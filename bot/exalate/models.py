"""Typed views of the bodies Exalate and Jira send and receive.

JSON is parsed here, at the edge, so the rest of the bot handles frozen, typed values and
never raw dicts. Unknown fields are ignored: Jira and Exalate add fields between versions
and the bot must not break on that. Python names are snake_case; the camelCase wire names
are aliases, and either may be used to build a model in code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

__all__ = [
    "Connection",
    "ConnectionList",
    "ConnectionSpec",
    "ConnectionState",
    "CreatedConnection",
    "JiraUser",
    "Project",
    "QueueCount",
    "ServerInfo",
]


STATUS_MAX = 64  # the database keeps this much of a status
ConnectionStatus = Annotated[str, AfterValidator(lambda status: status[:STATUS_MAX])]
"""Exalate's status of a connection, opaque; a longer one than any known is cut short."""


class _Wire(BaseModel):
    """Common settings: immutable, camelCase aliases, unknown fields dropped."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )


class Project(_Wire):
    """A Jira project the token's user can see (``GET /rest/api/2/project``).

    Jira sends ``id`` as a string; a number is accepted too and kept as its string.
    """

    model_config = ConfigDict(coerce_numbers_to_str=True)

    id: str
    key: str
    name: str


class ConnectionState(StrEnum):
    """A connection's status as the bot acts on it, read once here from Exalate's
    string, whatever its case; ``OTHER`` for any value Exalate may add."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    DEACTIVATED = "DEACTIVATED"
    ERROR = "ERROR"
    OTHER = "OTHER"

    @classmethod
    def of(cls, status: str | None) -> ConnectionState:
        try:
            return cls((status or "").strip().upper())
        except ValueError:
            return cls.OTHER


class SyncQueue(StrEnum):
    """One of a node's two sync queues, as Exalate's monitoring calls count them."""

    OUTGOING = "outgoing"
    """Changes of local issues waiting to go to the partners (``syncevents``)."""
    INCOMING = "incoming"
    """Partners' changes waiting to be applied here (``syncrequests``)."""


class QueueCount(_Wire):
    """The body of a count-only monitoring call (``GET …/syncevents?limit=0``, and
    ``syncrequests``): ``{"limit": 0, "total": n, "results": []}``.

    Only ``total`` is read, and strictly: a count sent as text, a fraction or a negative
    number is not the documented answer, and a wrong number would be shown as a fact.
    """

    total: Annotated[int, Field(strict=True, ge=0)]


class Connection(_Wire):
    """One entry of Exalate's connection list.

    ``status`` stays Exalate's string, verbatim (``PENDING``, ``Active``, …), to be shown
    as it is: the documented set is short and Exalate may add values, which the bot must
    show, not reject. ``state`` is what the bot acts on.
    """

    id: int | str
    name: str
    status: ConnectionStatus | None = None

    @property
    def state(self) -> ConnectionState:
        return ConnectionState.of(self.status)


class ConnectionList(_Wire):
    """The body of ``GET /rest/issuehub/4.0/connections``.

    ``total`` says how many exist; when it exceeds ``results``, the answer is one page
    (or the pages the client could read in turn) and a connection missing from it proves
    nothing.
    """

    results: list[Connection]
    total: int | None = None

    @property
    def complete(self) -> bool:
        """Whether every connection is in ``results``."""
        return self.total is None or self.total <= len(self.results)


class ConnectionSpec(_Wire):
    """What to ask Exalate for: the fields of the "Initiate connection" wizard.

    The connection type (private: the partner has no URL we can reach) and the
    configuration mode (Groovy scripts) are fixed by the product, so they are not fields.
    """

    local_short_name: str
    remote_short_name: str
    name: str
    description: str
    incoming_project_key: str

    def wire(self) -> dict[str, str]:
        """The exact JSON body of ``POST /rest/issuehub/4.0/connections``."""
        return {
            "connectionType": "PRIVATE",
            "configurationMode": "SCRIPT",
            "localInstanceShortName": self.local_short_name,
            "remoteInstanceShortName": self.remote_short_name,
            "name": self.name,
            "description": self.description,
            "incomingProjectKey": self.incoming_project_key,
        }


class CreatedConnection(_Wire):
    """Exalate's answer to a create: the new connection and its invitation code.

    The code is a ``SecretStr`` so that ``repr``, ``str``, logs and tracebacks show
    ``'**********'``; only ``invitation_code.get_secret_value()`` reveals it, and that call
    belongs where the code is encrypted or sent to the requester.
    """

    id: int | str
    name: str
    status: ConnectionStatus
    invitation_code: Annotated[SecretStr, Field(min_length=1)]


class ServerInfo(_Wire):
    """What ``GET /rest/api/2/serverInfo`` says about Jira; tokens need Jira 8.14 or later."""

    version: str
    version_numbers: list[int]
    deployment_type: str | None = None


class JiraUser(_Wire):
    """The token's user (``GET /rest/api/2/myself``): proves the token works, names its owner."""

    name: str
    display_name: str | None = None
