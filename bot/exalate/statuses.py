"""The paths of Jira's and Exalate's REST APIs the bot calls, and what an HTTP status
from them means: the kind of error, and words that name the setting to fix.

The messages are for admins (the card, the log): they may name a setting, never a
secret's value, and never quote a body.
"""

from __future__ import annotations

from bot.exalate import errors
from bot.exalate.models import SyncQueue

ISSUEHUB = "/rest/issuehub/4.0"
CONNECTIONS_PATH = f"{ISSUEHUB}/connections"
SYNC_EVENTS_PATH = f"{ISSUEHUB}/syncevents"
SYNC_REQUESTS_PATH = f"{ISSUEHUB}/syncrequests"
QUEUE_PATHS: dict[SyncQueue, str] = {
    SyncQueue.OUTGOING: SYNC_EVENTS_PATH,
    SyncQueue.INCOMING: SYNC_REQUESTS_PATH,
}
"""Where Exalate's monitoring API counts each sync queue (its REST API monitoring guide)."""
PROJECTS_PATH = "/rest/api/2/project"
PROJECT_PATH = f"{PROJECTS_PATH}/{{key}}"
MYSELF_PATH = "/rest/api/2/myself"
SERVER_INFO_PATH = "/rest/api/2/serverInfo"


TOKEN_HINT = {
    "credential": "token",
    "check": "Check that {variable} is a valid, unexpired personal access token.",
    "who": "the Jira user whose personal access token is in {variable}",
    "captcha": "",
}
BASIC_HINT = {
    "credential": "username and password",
    "check": "Check the username {user} (the site's username), and the password in {variable}.",
    "who": "the Jira user {user} (the site's username)",
    # Jira answers basic auth with 403 once failed logins made it demand a CAPTCHA.
    "captcha": " After failed logins Jira may demand a CAPTCHA: log in once in a browser"
    " as that user.",
}
"""The words of the 401 and 403 messages that depend on how the bot authenticates: each
names the setting to fix, the token's variable or the basic-auth user."""

_BY_STATUS: dict[int, tuple[type[errors.ExalateError], str]] = {
    401: (
        errors.ExalateAuthError,
        "Jira did not accept the bot's {credential} ({where}). {check}",
    ),
    403: (
        errors.ExalateAuthError,
        "Jira refused this call for {who} ({where}). That user must be a Jira administrator"
        " who may use Exalate.{captcha}",
    ),
    409: (
        errors.ExalateNameConflict,
        "Exalate already has a connection with this name ({where}). Choose another name.",
    ),
}
_CREATE_NOT_TAKEN = (
    "Exalate did not take the connection-creation call as the bot sent it ({where})."
)
_NO_CREATE_ENDPOINT = (
    "This Exalate version exposes no connection-creation endpoint ({where}). Create the"
    " connection in the Exalate console instead."
)
_NO_EXALATE_ENDPOINT = (
    "Jira has no such Exalate REST endpoint ({where}). Check that the Exalate app is"
    " installed and enabled, and that JIRA_URL is Jira's base URL."
)
_NO_JIRA_ENDPOINT = (
    "Jira has no such REST endpoint ({where}). Check that JIRA_URL is Jira's base URL."
)
_NO_QUEUE_ENDPOINT = {
    path: f"This node has no {path} endpoint ({{where}}); the {queue} sync queue is not"
    " watched. Its Exalate version may not serve this monitoring call, or Exalate is not"
    " installed there."
    for queue, path in QUEUE_PATHS.items()
}
"""Per queue path: a node may serve the connection calls and not these, so the words
say which queue goes unwatched rather than call the Exalate install broken."""
_REDIRECTED = (
    "Jira redirected the call{target} instead of answering ({where}). Set JIRA_URL to"
    " Jira's base URL exactly."
)
_INVALID = "{service} rejected the request as invalid ({where})."
_SERVER_FAILED = (
    "{service} failed with a server error ({where}). This is usually temporary; try again later."
)


def classify(status: int, method: str, path: str) -> tuple[type[errors.ExalateError], str]:
    """The error class and message template for a non-2xx status other than 429."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status in (400, 415) and method == "POST" and path == CONNECTIONS_PATH:
        return errors.ExalateCallNotTaken, _CREATE_NOT_TAKEN
    if status in (404, 405):
        if method == "POST" and path == CONNECTIONS_PATH:
            return errors.ExalateEndpointMissing, _NO_CREATE_ENDPOINT
        if path in _NO_QUEUE_ENDPOINT:
            return errors.ExalateEndpointMissing, _NO_QUEUE_ENDPOINT[path]
        if path.startswith(ISSUEHUB):
            return errors.ExalateEndpointMissing, _NO_EXALATE_ENDPOINT
        return errors.ExalateEndpointMissing, _NO_JIRA_ENDPOINT
    if 300 <= status < 400:
        return errors.ExalateBadRequest, _REDIRECTED
    if 400 <= status < 500:
        return errors.ExalateBadRequest, _INVALID
    return errors.ExalateServerError, _SERVER_FAILED


def unexpected_answer(method: str, path: str, status: int | None) -> errors.ExalateServerError:
    """A 2xx whose body is not the expected JSON; the body itself is never quoted."""
    http = f"HTTP {status}, " if status is not None else ""
    return errors.ExalateServerError(
        f"Jira gave an unexpected answer to {method} {path} ({http}not the JSON its API"
        " sends). Check that JIRA_URL is Jira's base URL and that Exalate is installed.",
        status=status,
    )


def too_large(method: str, path: str, status: int, limit: int) -> errors.ExalateServerError:
    """A 2xx answer longer than the bot reads; what it said is unknown."""
    return errors.ExalateServerError(
        f"Jira's answer to {method} {path} was too large (HTTP {status}, over "
        f"{limit / 2**20:g} MB), so the bot did not read it. Check that JIRA_URL is Jira's "
        "base URL and what answers there.",
        status=status,
    )
