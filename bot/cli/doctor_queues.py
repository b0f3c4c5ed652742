"""The doctor's look at a site's two sync queues (Exalate's count-only monitoring calls):
how many events wait each way, so a person sees a stuck queue before partners complain.

A node without the monitoring endpoints is a warning, not a failure: the bot's requests
do not need them, only the queue goes unwatched there.
"""

from __future__ import annotations

from bot.cli.doctor_slack import Check
from bot.exalate import ExalateEndpointMissing
from bot.exalate.models import SyncQueue
from bot.exalate.statuses import QUEUE_PATHS
from bot.ports import ExalatePort
from bot.site_config import SiteConfig

NAME = "Sync queues"


async def sync_queues(exalate: ExalatePort, _site: SiteConfig) -> Check:
    """✓ with both sizes; ! naming each queue the node has no endpoint for. Any other
    ``ExalateError`` is raised, for the caller to report as it does every site check's."""
    sizes: list[str] = []
    unwatched: list[SyncQueue] = []
    for queue in SyncQueue:
        try:
            sizes.append(f"{queue.value} {await exalate.queue_size(queue)}")
        except ExalateEndpointMissing:
            unwatched.append(queue)
    if not unwatched:
        return Check(NAME, True, ", ".join(sizes))
    read = f"{', '.join(sizes)}; " if sizes else ""
    queues = " and ".join(queue.value for queue in unwatched)
    paths = " or ".join(QUEUE_PATHS[queue] for queue in unwatched)
    plural = len(unwatched) > 1
    return Check(
        NAME,
        None,
        f"warning: {read}the {queues} queue{'s' if plural else ''} {'are' if plural else 'is'}"
        f" not watched on this node: it has no {paths} endpoint (Exalate's REST monitoring"
        " API; its Exalate version may not serve it).",
    )
