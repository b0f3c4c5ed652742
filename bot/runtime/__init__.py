"""What runs a bot process: the composition root (``app``), the jobs on a timer, HTTP
mode's gate before Bolt, and the process around them (probes, signals, serving)."""
