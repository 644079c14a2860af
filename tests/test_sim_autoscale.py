"""The deployment's autoscaling rule replayed in the discrete-event simulator
(:mod:`streamwise.sim.autoscale`): on a burst of 6 ten-minute podcasts on the cheapest 16-A100
plan, instances are added (serving exactly the start-up delay after each decision), stalls fall;
a start-up delay longer than the run changes nothing but the bill; ``max_scale=1`` adds nothing.
"""

from __future__ import annotations

import pytest

from streamwise.sim.autoscale import AutoscalingSimulator, compare
from streamwise.sim.cluster import load_cluster
from streamwise.sim.des import Simulator
from streamwise.sim.workload import load_workload

W = load_workload("podcast10_burst")
C = load_cluster("cheapest-16xa100.yaml")


def test_the_rule_adds_instances_after_the_start_up_delay_and_cuts_stalls():
    sim = AutoscalingSimulator(C, W, start_s=120.0)
    with_ = sim.run().as_dict()
    without = Simulator(C, W).run().as_dict()
    assert with_["completed"] == without["completed"] == 6
    assert sum(d[2] for d in sim.decisions if d[2] > 0) > 0
    assert sim.serving and all(serving - decided == pytest.approx(120.0) for _, decided, serving in sim.serving)
    for t, cls, n, replicas in sim.decisions:                  # between the plan and 4 x the plan
        assert n != 0 and sim.base[cls] <= replicas <= 4 * sim.base[cls]
    assert any(d[2] < 0 for d in sim.decisions)                # and back down after the burst
    assert with_["stall_s"] < without["stall_s"] and with_["makespan_s"] < without["makespan_s"]


def test_instances_that_never_start_change_only_the_cost():
    both = compare(C, W, start_s=1e7)
    a, b = both["without"], both["with"]
    assert b["instances_added"] > 0 and b["first_added_serving_s"] is None
    for k in ("ttff_s", "makespan_s", "stall_s", "deadline_misses"):
        assert a[k] == b[k], k
    assert b["cost_usd"] > a["cost_usd"]          # the added instances are paid while they start


def test_max_scale_one_keeps_the_plan():
    sim = AutoscalingSimulator(C, W, max_scale=1)
    assert sim.run().as_dict()["stall_s"] == Simulator(C, W).run().as_dict()["stall_s"]
    assert sim.decisions == []
    with pytest.raises(ValueError, match="period_s"):
        AutoscalingSimulator(C, W, period_s=0)
