"""How much of Slack's 3 s a listener may spend before it must answer.

Slack shows the person an error when the answer to a form submission comes more than
3 s after they pressed its button, and a click's trigger_id opens no modal after 3 s.
Work that must come first (checks against Jira, the database, Slack's user groups) is
held to this, leaving the rest of the 3 s for the answer to travel.
"""

SLACK_BUDGET_SECONDS = 2.0
