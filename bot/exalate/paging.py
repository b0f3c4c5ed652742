"""Reading Exalate's connection list past its first page, where the node pages it.

No public source names the paging parameters of ``/rest/issuehub/4.0/connections``.
Exalate's monitoring guide (https://docs.exalate.com/docs/rest-api-monitoring-guide)
shows the same ``{limit, total, results}`` envelope on ``syncevents`` with its ``limit``
parameter, and no offset. So a further page is asked for with ``limit`` and both usual
names of an offset, ``offset`` and ``start``: a server ignores query parameters it does
not know, and a node that ignores all three is caught, because each page must begin
with the last connection already read and report the same ``total``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from bot.exalate import errors
from bot.exalate.models import Connection, ConnectionList

MAX_LIST_PAGES = 50
"""The most pages of the connection list read after the first: a node that keeps
answering past that is not followed further, and its list stays incomplete."""

PageReader = Callable[[Mapping[str, str]], Awaitable[ConnectionList]]
"""Reads one page of the list, given its query string."""


async def rest_of_list(first: ConnectionList, read_page: PageReader) -> ConnectionList:
    """``first`` with the connections after it, read page by page while each page
    follows on from the last; the list stays incomplete (``total`` above ``results``)
    where one does not, and after ``MAX_LIST_PAGES``."""
    total = first.total or 0
    read = list(first.results)
    for _ in range(MAX_LIST_PAGES):
        if len(read) >= total:
            break
        fresh = await _page_after(read, total, read_page)
        if not fresh:
            break
        read.extend(fresh)
    return ConnectionList(results=read, total=total)


async def _page_after(
    read: list[Connection], total: int, read_page: PageReader
) -> list[Connection]:
    """The connections that follow ``read``, or none when the next page cannot be
    trusted to follow on.

    The page is asked to begin one entry early, at the last connection read, and must
    report the same ``total``: a node that ignores the parameters (it answers its first
    page again), a list that shifted while it was read (a connection came or went), a
    page with nothing new, or a failed call, yields none.
    """
    offset = len(read) - 1
    query = {"limit": str(total - offset), "offset": str(offset), "start": str(offset)}
    try:
        page = await read_page(query)
    except errors.ExalateError:
        return []
    if page.total != total or not page.results or str(page.results[0].id) != str(read[-1].id):
        return []
    known = {str(connection.id) for connection in read}
    fresh = page.results[1:]
    if any(str(connection.id) in known for connection in fresh):
        return []
    return fresh
