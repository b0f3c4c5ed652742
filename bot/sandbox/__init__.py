"""Stand-ins for the outside world, as strict as the real thing: the Slack emulator and
the Exalate-on-Jira simulator. The demo, ``run --simulated-jira`` and the ``simulator``
command start them (``bot.cli``, ``bot.runtime.serve``), and the tests; the service, the
listeners and storage never import them (``tests/test_layers.py``)."""
