"""What the bot sends to Slack on its own, not in answer to a listener: the service's
ports (``bot.ports.Notifier``, ``GroupDirectory``) over the Web API. The composition
root builds them; listeners never call them."""

from handlers.outbound.directory import SlackGroupDirectory, SlackPeople
from handlers.outbound.notifier import SlackNotifier

__all__ = ["SlackGroupDirectory", "SlackNotifier", "SlackPeople"]
