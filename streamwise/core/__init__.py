"""The pure policy core: what a scheduler decides, with no bus, no processes and no I/O but config reads.

- :mod:`.dag`: the task DAG (nodes, states, readiness);
- :mod:`.deadlines`: per-segment and upstream deadlines from stage profiles;
- :mod:`.placement`: dispatch order (EDF) and instance selection (:func:`~.placement.assign`);
- :mod:`.quality`: quality ladders and the rung policy; :mod:`.constraints`: model rules (sizes, frames);
- :mod:`.profiles`, :mod:`.estimate`: runtime profiles (reference rows, fits, online correction) and
  the expected seconds of a task.

Imports nothing from the bus, the service, the client or the CLI (``[tool.importlinter]`` in
``pyproject.toml``, checked by ``tests/test_layout.py``).
"""
