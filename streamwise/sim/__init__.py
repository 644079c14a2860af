"""Simulator and provisioner for StreamWise clusters (issue 4).

- :mod:`streamwise.sim.workload`: the workload (the paper's 10-minute podcast) and request
  arrivals, from ``configs/workloads/*.yaml``.
- :mod:`streamwise.sim.cluster`: GPU types, prices, servers and model instances, from
  ``configs/clusters/*.yaml`` or a GPU-budget SPEC such as ``16xA100+64xH200``.
- :mod:`streamwise.sim.analytic`: the StreamWise paper's analytic evaluator (arXiv 2603.05800,
  as in Azure/realtimevideogen ``simulator/evaluator.py`` and ``simulator/models.py``).
- :mod:`streamwise.sim.allocate`: allocators on a GPU budget: the paper's naive split, the
  paper's greedy, and our exact per-stage search.
- :mod:`streamwise.sim.provision`: the provisioner (search over GPU types and servers).
- :mod:`streamwise.sim.des`: the discrete-event simulator, running the live scheduler's
  policies (:func:`streamwise.core.placement.assign`, :mod:`streamwise.core.deadlines`,
  :mod:`streamwise.core.quality`).
"""
