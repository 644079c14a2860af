"""A pool of StreamWise processes on one machine: scheduler + one worker process per stage.

Each process is launched as its own command (``streamwise scheduler --nats URL``,
``streamwise worker --stage S --nats URL``, each with ``--creds FILE`` of its role on an
authenticated bus), so it can be seen in ``ps`` and stopped alone. :class:`Pool` starts
them, waits until every stage has a ready instance on the bus, and stops them (SIGTERM,
then SIGKILL) on exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..stages.registry import EMULATED_STAGE, STAGES, default_model

DEFAULT_WORKERS = {stage: 1 for stage in STAGES}
"""One process per stage: the pool of ``streamwise generate`` (one request)."""

UP_WORKERS = {**DEFAULT_WORKERS, "image": 2}
"""The pool ``streamwise up`` and ``streamwise serve`` start, and ``streamwise bench --requests N``
measures: one process per stage, two for the studio and portraits. When many requests start at
once, each needs its studio and first speaker's portrait (~0.17 s of CPU) before its first frame,
and one image process drew them one after another while the other stages waited (eight shows:
sixteen drawings on the critical path of the last one's first frame); a second one halves that
wait on two cores (~170 MB of memory). The other stages' work at the start is smaller or runs at
a lower CPU priority (deadline slack: ``stages.runtime.base.nice_for_slack``)."""


def parse_workers(spec: str | None, defaults: dict[str, int] | None = None) -> dict[str, int]:
    """``"tts=2,video=3"`` -> counts per stage (others keep theirs in ``defaults``, default
    :data:`UP_WORKERS`).

    Raises:
        ValueError: unknown stage or a count that is not a non-negative integer.
    """
    counts = dict(UP_WORKERS if defaults is None else defaults)
    for item in filter(None, (spec or "").split(",")):
        stage, _, n = item.partition("=")
        stage = stage.strip()
        if stage not in counts:
            raise ValueError(f"unknown stage {stage!r} in --workers; stages are {', '.join(STAGES)}")
        if not n.strip().isdigit():
            raise ValueError(f"--workers {item!r}: count must be a non-negative integer")
        counts[stage] = int(n)
    return counts


def emulated_workers(specs: list[str]) -> list[tuple[str, list[str]]]:
    """``["fantasytalking:gb200:40", ...]`` -> extra pool commands for emulated GPU instances: video,
    or the GPU chain's stage of the model (FramePack: ``sketch``, its VAE ``hunyuanframepack-vae``:
    ``vae``, ``realesrgan-x2``: ``upscale``; ``stages.registry.EMULATED_STAGE``).

    Raises:
        ValueError: a spec that is not ``MODEL:HARDWARE:GPUS`` with a positive GPU count.
    """
    extra = []
    for i, spec in enumerate(specs):
        parts = spec.split(":")
        if len(parts) != 3 or not parts[2].isdigit() or int(parts[2]) < 1:
            raise ValueError(f"--emulate {spec!r}: expected MODEL:HARDWARE:GPUS, e.g. fantasytalking:gb200:40")
        model, hardware, gpus = parts
        stage = EMULATED_STAGE.get(model, "video")
        extra.append((f"{stage}-{model}-{i}", ["worker", "--stage", stage, "--model", model, "--hardware", hardware,
                                               "--gpus", gpus, "--emulate"]))
    return extra


def _model_of(args: list[str]) -> str:
    """The model a ``worker ...`` argument list serves (``--model``, else its stage's default)."""
    if "--model" in args:
        return args[args.index("--model") + 1]
    return default_model(args[args.index("--stage") + 1]) if "--stage" in args else ""


STABLE_S = 60.0
"""A child that ran this long (seconds) before it exited starts its restart backoff afresh."""


class PoolError(RuntimeError):
    """A process of the pool exited."""


class Pool:
    """Child processes serving the bus at ``url``. ``log_dir``: one log file per process
    (``None``: children inherit this process's stderr)."""

    def __init__(self, url: str, workers: dict[str, int] | None = None, *, log_dir: str | os.PathLike | None = None,
                 scheduler: bool | list[str] = True, extra: list[tuple[str, list[str]]] | None = None,
                 creds: dict[str, str] | None = None) -> None:
        self.url = url
        # role -> .creds file (`streamwise up --auth DIR`): the scheduler runs with creds["scheduler"],
        # every worker (the extra commands are workers) with creds["worker-<its model>"] when given,
        # else creds["worker"]
        self.creds = dict(creds or {})
        self.workers = workers or dict(DEFAULT_WORKERS)
        self.extra = extra or []   # (name, arguments after `streamwise`), e.g. emulated GPU workers
        self.log_dir = Path(log_dir) if log_dir else None
        self.scheduler = scheduler
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self._commands: dict[str, list[str]] = {}
        self._restarts: dict[str, int] = {}          # name -> restarts in a row (reset after a long life)
        self._started_at: dict[str, float] = {}
        self._due: dict[str, float] = {}             # name -> when an exited child is started again

    def _nats(self) -> list[str]:
        """``["--nats", URL]``; a URL with a password in it goes to the children in
        ``$STREAMWISE_NATS`` instead, so it is not in their command lines (``ps``)."""
        return [] if self._secret_url() else ["--nats", self.url]

    def _secret_url(self) -> bool:
        return "@" in self.url

    def commands(self) -> list[tuple[str, list[str]]]:
        base = [sys.executable, "-m", "streamwise"]
        options = self.scheduler if isinstance(self.scheduler, list) else []   # extra `streamwise scheduler` options
        sched = self._creds("scheduler")
        nats = self._nats()
        cmds = ([("scheduler", base + ["scheduler", *nats] + options + sched)]
                if self.scheduler is not False else [])
        for stage, count in self.workers.items():
            work = self._creds(f"worker-{default_model(stage)}", "worker")
            for i in range(count):
                cmds.append((f"{stage}-{i}", base + ["worker", "--stage", stage, *nats] + work))
        cmds += [(name, base + args + nats + self._creds(f"worker-{_model_of(args)}", "worker"))
                 for name, args in self.extra]
        return cmds

    def _creds(self, *roles: str) -> list[str]:
        """``["--creds", FILE]`` of the first of ``roles`` that has credentials (none: ``[]``)."""
        for role in roles:
            if self.creds.get(role):
                return ["--creds", str(self.creds[role])]
        return []

    def start(self) -> "Pool":
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for name, cmd in self.commands():
            self._commands[name] = cmd
            self._spawn(name)
        return self

    def _spawn(self, name: str) -> subprocess.Popen:
        out = open(self.log_dir / f"{name}.log", "ab") if self.log_dir else None
        env = {**os.environ, "STREAMWISE_NATS": self.url} if self._secret_url() else None
        proc = subprocess.Popen(self._commands[name], stdout=out or subprocess.DEVNULL, stderr=out,
                                stdin=subprocess.DEVNULL, env=env)
        if out:
            out.close()
        self.processes.append((name, proc))
        self._started_at[name] = time.monotonic()
        return proc

    def supervise(self, log=print) -> list[str]:
        """Restart children that exited (crashed, killed, or drained after an eviction), each
        after a backoff of 1 s doubling to 30 s per restart in a row (reset once a child has run
        for :data:`STABLE_S`). Call it periodically; ``log`` gets one line per exit and restart.
        Returns the names restarted by this call."""
        now = time.monotonic()
        for name, code in self.reap():
            lived = now - self._started_at.get(name, now)
            streak = 0 if lived > STABLE_S else self._restarts.get(name, 0)
            self._restarts[name] = streak + 1
            delay = min(30.0, 2.0 ** streak)
            self._due[name] = now + delay
            log(f"{name} exited with code {code}{' (drained)' if code == 0 else ''}{self._tail(name)}; "
                f"restarting in {delay:.0f} s")
        restarted = []
        for name, due in list(self._due.items()):
            if due <= now:
                del self._due[name]
                proc = self._spawn(name)
                restarted.append(name)
                log(f"{name} restarted (pid {proc.pid}, restart {self._restarts[name]})")
        return restarted

    def stages(self) -> set[str]:
        """The stages this pool serves (for waiting until they are ready)."""
        names = {s for s, n in self.workers.items() if n > 0}
        return names | ({"scheduler"} if self.scheduler is not False else set())

    def check(self) -> None:
        """Raise :class:`PoolError` naming any child that has exited (with its last log line)."""
        for name, proc in self.processes:
            if proc.poll() is not None:
                raise PoolError(f"{name} exited with code {proc.returncode}{self._tail(name)}")

    def reap(self) -> list[tuple[str, int]]:
        """Children that have exited since the last call, as ``(name, exit code)``; they are
        dropped from the pool (an evicted worker drains and exits with 0)."""
        gone = [(name, proc.returncode) for name, proc in self.processes if proc.poll() is not None]
        self.processes = [(name, proc) for name, proc in self.processes if proc.returncode is None]
        return gone

    def _tail(self, name: str) -> str:
        if not self.log_dir:
            return ""
        try:
            lines = (self.log_dir / f"{name}.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return (": " + lines[-1]) if lines else ""

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM every child, wait up to ``timeout_s``, then SIGKILL the rest."""
        for _, proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for _, proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        self._due.clear()

    def pids(self) -> list[int]:
        return [p.pid for _, p in self.processes]

    def __enter__(self) -> "Pool":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
