"""The multi-node rehearsal (issue 14, item 5; deploy/local/rehearse.py) on real processes: a
three-node NATS cluster, two schedulers, workers joining, leaving and killed, one NATS node
SIGKILLed mid-run, and every show arrives whole."""

from __future__ import annotations

from streamwise.bench.rehearsal import format_result, rehearse


async def test_the_rehearsal_loses_nothing_while_nodes_and_workers_come_and_go(tmp_path):
    result = await rehearse(tmp_path, requests=2)
    assert [what.split(" ")[0] for _, what in result.faults] == ["a", "node", "NATS", "node"], result.faults
    assert result.errors == [], format_result(result)
    assert result.complete == 2 and result.lost == 0
    assert result.delivered == result.expected and result.delivered >= 2 * 10   # short_chat: ~23 s, 2 s segments
    assert result.ok
