"""The ``exalate-bot`` command line: run, migrate, demo, doctor, audit export, simulator."""
