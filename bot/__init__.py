"""exalate-bot: request, approve and initiate private Exalate connections from Slack."""
