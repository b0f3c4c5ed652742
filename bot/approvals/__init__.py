"""The domain: connection requests, their life cycle and the rules on their fields.

This package imports only the standard library, so the rules can be read, tested and
reasoned about without Slack, Jira or a database.
"""
