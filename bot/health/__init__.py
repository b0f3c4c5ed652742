"""Sync health: what the bot watches on every node after the connections exist, and the
incidents it opens, updates and resolves when something stops syncing."""
