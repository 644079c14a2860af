"""The task channel of a multi-GPU instance (:mod:`.parallel`): rank 0's adapter calls carried to
the other ranks over a torch.distributed group, so that every rank runs the same pipeline call.

Rank 0's adapter is a :class:`LeaderAdapter`: a call (``animate`` / ``generate`` / ``edit``) is first
broadcast to the other ranks (:class:`TaskChannel`: a pickled header by ``broadcast_object_list``,
numpy arrays as tensors by ``broadcast``), then run here too; afterwards all ranks all-gather an
(ok, error) status, so a follower's failure surfaces on rank 0 as a RuntimeError. Ranks > 0 run
:func:`follow` until rank 0 sends stop. Tested on CPU with real torch.distributed (gloo, 2 processes
under torchrun) in ``tests/test_gpu_parallel.py``.
"""

from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Adapter methods that run a pipeline (and so must run on every rank); anything else stays local.
PARALLEL_METHODS = ("animate", "generate", "edit")


@dataclass
class Call:
    """One adapter call as the followers receive it: ``method`` name, positional ``args``, ``kwargs``
    (numpy arrays restored with their dtype and shape; callables such as ``on_step`` become None)."""

    method: str
    args: tuple
    kwargs: dict[str, Any] = field(default_factory=dict)


def _pack(values: list[Any]) -> tuple[list[Any], list[np.ndarray]]:
    """Top-level values -> (header entries, arrays to send). Arrays -> ("array", shape, dtype str);
    callables -> ("none",); anything else -> ("value", v) (must pickle)."""
    header, arrays = [], []
    for v in values:
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v)
            header.append(("array", tuple(a.shape), a.dtype.str))
            arrays.append(a)
        elif callable(v):
            header.append(("none",))
        else:
            header.append(("value", v))
    return header, arrays


class TaskChannel:
    """Carries adapter calls from rank 0 to the other ranks of one instance over a torch.distributed
    group (gloo: CPU tensors; on a GPU instance a gloo group beside the NCCL world, see :func:`enable_usp`).

    Wire protocol, one message per call: (1) ``broadcast_object_list([header])`` from ``src``, header =
    ``{"op": "call", "method", "args": [entries], "kwargs": {name: entry}}`` or ``{"op": "stop"}``, entries
    as in :func:`_pack`; (2) one ``broadcast`` per numpy array, in header order (args first, then kwargs in
    insertion order), as a CPU tensor of the array's dtype and shape (zero-size arrays are not sent);
    then, after the call, (3) :meth:`report`: ``all_gather_object`` of each rank's (ok, error) status.
    Supported array dtypes: those torch has (uint8, int8, int16, int32, int64, float16/32/64, bool).

    ``group`` None = the default (world) group; ``src`` is a global rank.
    """

    def __init__(self, group: Any = None, src: int = 0) -> None:
        self.group, self.src = group, src

    def _bcast_object(self, obj: Any) -> Any:
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=self.src, group=self.group)
        return box[0]

    def _bcast_array(self, arr: np.ndarray) -> None:
        import torch
        import torch.distributed as dist

        if arr.size:
            dist.broadcast(torch.from_numpy(arr), src=self.src, group=self.group)

    def send_call(self, method: str, args: tuple | list = (), kwargs: dict[str, Any] | None = None) -> None:
        """Rank ``src``: broadcast one call (blocks until every rank of the group has received it)."""
        kwargs = kwargs or {}
        head_args, arr_args = _pack(list(args))
        head_kw, arr_kw = _pack(list(kwargs.values()))
        self._bcast_object({"op": "call", "method": method, "args": head_args,
                            "kwargs": dict(zip(kwargs.keys(), head_kw))})
        for a in arr_args + arr_kw:
            self._bcast_array(a)

    def send_stop(self) -> None:
        """Rank ``src``: tell the followers to return from :func:`follow`."""
        self._bcast_object({"op": "stop"})

    def recv(self) -> Call | None:
        """Ranks other than ``src``: the next :class:`Call`, or None for stop (blocks until one comes).

        Raises:
            ValueError: an unknown op in the header (a protocol mismatch between ranks).
        """
        header = self._bcast_object(None)
        if header.get("op") == "stop":
            return None
        if header.get("op") != "call":
            raise ValueError(f"unknown task-channel message {header!r}")

        def unpack(entry):
            if entry[0] == "array":
                arr = np.empty(entry[1], dtype=np.dtype(entry[2]))
                self._bcast_array(arr)      # received in place (from_numpy shares the buffer)
                return arr
            return None if entry[0] == "none" else entry[1]

        args = tuple(unpack(e) for e in header["args"])
        kwargs = {k: unpack(e) for k, e in header["kwargs"].items()}
        return Call(header["method"], args, kwargs)

    def report(self, ok: bool, error: str = "") -> list[tuple[bool, str]]:
        """Every rank, after a call: this rank's status in, everyone's (ok, error) out, by rank."""
        import torch.distributed as dist

        out: list[Any] = [None] * dist.get_world_size(self.group)
        dist.all_gather_object(out, (bool(ok), str(error)), group=self.group)
        return [tuple(s) for s in out]


def follow(adapter: Any, channel: TaskChannel) -> int:
    """The loop of ranks > 0: receive each call from rank 0, run it on ``adapter`` (its output is
    dropped: rank 0 publishes), report the status; returns the number of calls run when rank 0 sends
    stop. A call that raises is reported (rank 0 then raises RuntimeError) and the loop goes on."""
    done = 0
    while True:
        call = channel.recv()
        if call is None:
            return done
        try:
            getattr(adapter, call.method)(*call.args, **call.kwargs)
            ok, err = True, ""
        except Exception as exc:          # reported to rank 0; this rank stays in the group
            log.exception("follower call %s failed", call.method)
            ok, err = False, f"{type(exc).__name__}: {exc}"
        channel.report(ok, err)
        done += 1


class LeaderAdapter:
    """Rank 0's view of an adapter in a multi-GPU instance: calls to ``methods`` are broadcast to the
    followers, run here too, then the ranks' statuses are gathered; any other attribute is the
    adapter's own. Calls are serialised (one pipeline call at a time in the group).

    Raises (from a parallel call): the local exception when rank 0's own call fails; RuntimeError
    naming the ranks when only followers failed.
    """

    def __init__(self, adapter: Any, channel: TaskChannel, methods: tuple[str, ...] = PARALLEL_METHODS,
                 *, stop_at_exit: bool = True) -> None:
        self._adapter, self._channel, self._methods = adapter, channel, tuple(methods)
        self._lock = threading.Lock()
        self._stopped = False
        if stop_at_exit:
            atexit.register(self.close)

    @property
    def adapter(self) -> Any:
        """The wrapped adapter."""
        return self._adapter

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._adapter, name)
        if name in self._methods and callable(attr):
            return lambda *args, **kwargs: self._call(name, args, kwargs)
        return attr

    def _call(self, name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        with self._lock:
            if self._stopped:
                raise RuntimeError("the multi-GPU group has been stopped")
            self._channel.send_call(name, args, kwargs)
            out, mine = None, None
            try:
                out = getattr(self._adapter, name)(*args, **kwargs)
            except Exception as exc:
                mine = exc
            statuses = self._channel.report(mine is None, "" if mine is None else f"{type(mine).__name__}: {mine}")
        if mine is not None:
            raise mine
        failed = [(r, e) for r, (ok, e) in enumerate(statuses) if not ok]
        if failed:
            raise RuntimeError("multi-GPU call %s failed on rank(s) %s" % (
                name, "; ".join(f"{r}: {e}" for r, e in failed)))
        return out

    def close(self) -> None:
        """Send stop to the followers (once; safe to call at exit)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        try:
            self._channel.send_stop()
        except Exception as exc:      # the group may already be gone at interpreter exit
            log.debug("stop message not sent: %s", exc)
