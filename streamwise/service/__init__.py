"""The scheduler service and the local process pool.

- :mod:`.scheduler`: the request scheduler on the bus (``streamwise scheduler``);
- :mod:`.instance_state`: what a scheduler knows of the worker instances (heartbeats, prices, the
  online runtime correction);
- :mod:`.pool`: local scheduler and worker processes (``streamwise up`` / ``generate``).
"""
