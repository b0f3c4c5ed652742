"""Stand-ins for the outside world, as strict as the real thing: the Slack emulator and
the Exalate-on-Jira simulator. Used by the demo, ``run --simulated-jira`` and the tests;
the bot proper never imports them."""
