"""Kubernetes packaging (issue 14): a real provisioner plan rendered by ``streamwise deploy render``,
every object validated offline (Kubernetes 1.32 JSON schemas, KEDA's ScaledObject schema), the base
built by ``kubectl kustomize`` when kubectl is here; plans and manifests that must be refused are.

The plan comes from the provisioner in the test, with the commands of docs/deploy.md.
"""

from __future__ import annotations

import copy
import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from streamwise.cli import main
from streamwise.deploy.render import STOP_GRACE_S, PlanError, RenderOptions, load_plan, render, worker_groups
from streamwise.deploy.validate import kustomize, validate_doc, validate_dir
from streamwise.service.demand import parse_pools
from streamwise.stages.registry import ADAPTERS, STAGES

DOCS = Path(__file__).resolve().parent.parent / "docs" / "deploy.md"


def _doc_commands() -> list[str]:
    """The `streamwise ...` lines of the first sh block of docs/deploy.md that renders."""
    blocks = re.findall(r"```sh\n(.*?)```", DOCS.read_text(), re.S)
    block = next(b for b in blocks if "streamwise deploy render" in b)
    return [line for line in block.splitlines() if line.startswith("streamwise ")]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, monkeypatch_module):
    """Run docs/deploy.md's render commands in a temporary directory; returns it."""
    d = tmp_path_factory.mktemp("deploy")
    monkeypatch_module.chdir(d)
    for line in _doc_commands():
        assert main(shlex.split(line)[1:]) == 0, line
    return d


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _container(dep: dict) -> dict:
    return dep["spec"]["template"]["spec"]["containers"][0]


def _flag(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def test_docs_commands_render_a_plan_that_validates(rendered):
    cmds = _doc_commands()
    assert any("provision" in c for c in cmds) and any("deploy validate" in c for c in cmds)
    out = rendered / "k8s"
    count, errors = validate_dir(out, "1.32")
    assert errors == [] and count >= 20
    kinds = [d["kind"] for f in sorted(out.glob("*.yaml")) if f.name not in ("kustomization.yaml", "nats-values.yaml")
             for d in _docs(f)]
    assert {"Deployment", "Service", "PodDisruptionBudget", "ScaledObject", "Namespace"} <= set(kinds)


def test_every_worker_runs_what_the_registry_serves_and_multi_gpu_uses_torchrun(rendered):
    plan = load_plan(rendered / "plan.yaml")
    deps = _docs(rendered / "k8s" / "workers.yaml")
    assert len(deps) == len(plan["workers"])
    stages, multi = set(), 0
    for dep in deps:
        c = _container(dep)
        cmd = c["command"]
        stage, model = _flag(cmd, "--stage"), _flag(cmd, "--model")
        assert (stage, model) in ADAPTERS, (stage, model)
        stages.add(stage)
        gpus = int(_flag(cmd, "--gpus"))
        assert _flag(cmd, "--creds") == f"/var/run/secrets/streamwise/worker-{model}.creds"   # its model's user
        assert _flag(cmd, "--health-port") == "8081"
        spec = dep["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] > STOP_GRACE_S
        assert "preStop" in c["lifecycle"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"name": "STREAMWISE_REPLICAS", "value": "3"} in c["env"]
        if gpus:
            assert c["resources"]["limits"]["nvidia.com/gpu"] == gpus
            assert spec["nodeSelector"]["streamwise/gpu"] == _flag(cmd, "--hardware")
            assert any(t["key"] == "kubernetes.azure.com/scalesetpriority" for t in spec["tolerations"])  # spot plan
        else:
            assert "limits" not in c["resources"] and "nodeSelector" not in spec
        if gpus > 1:
            multi += 1
            assert cmd[:2] == ["torchrun", "--standalone"]
            assert _flag(cmd, "--nproc_per_node") == str(gpus) and _flag(cmd, "-m") == "streamwise.stages.gpu.parallel"
        else:
            assert cmd[:2] == ["streamwise", "worker"]
    assert multi >= 1, "the 64xH100 plan has multi-GPU instances"
    assert stages == set(STAGES)


def test_rendered_commands_parse_with_the_real_command_line(rendered):
    """Every worker and scheduler command is one the ``streamwise`` parser (and, behind torchrun,
    the launcher's) accepts. ``--creds FILE`` comes with the NATS-auth work: until the parser has
    it, it must be the only argument left over."""
    from streamwise.cli import _parser
    from streamwise.stages.gpu.parallel import _worker_args

    parser = _parser()
    out = rendered / "k8s"
    commands = [_container(d)["command"] for d in _docs(out / "workers.yaml") + _docs(out / "scheduler.yaml")]
    has_creds = "creds" in vars(parser.parse_known_args(["worker", "--stage", "mux", "--nats", "x"])[0])
    for cmd in commands:
        if cmd[0] == "torchrun":
            argv = cmd[cmd.index("streamwise.stages.gpu.parallel") + 1:]
            assert _worker_args(argv).gpus == int(_flag(cmd, "--nproc_per_node"))
        else:
            assert cmd[0] == "streamwise"
            argv = cmd[1:]
        args, left = parser.parse_known_args(argv)
        assert args.health_port == 8081 and args.nats == "nats://nats:4222"
        assert left == ([] if has_creds else ["--creds", _flag(argv, "--creds")]), cmd


def test_the_worker_drain_fits_the_grace_period():
    from streamwise.stages.runtime import worker

    assert worker.STOP_GRACE_S == STOP_GRACE_S   # the renderer's copy follows the worker's drain


def test_budgets_autoscaling_and_the_schedulers_pools(rendered):
    out = rendered / "k8s"
    plan = load_plan(rendered / "plan.yaml")
    deployments = [d["metadata"]["name"] for f in ("scheduler.yaml", "gateway.yaml", "workers.yaml")
                   for d in _docs(out / f) if d["kind"] == "Deployment"]
    pdbs = {d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for d in _docs(out / "disruption-budgets.yaml")}
    assert pdbs == set(deployments)
    groups = {g.name: g for g in worker_groups(plan)}
    scaled = _docs(out / "autoscaling.yaml")
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled} == set(groups)
    for s in scaled:
        g = groups[s["metadata"]["name"]]
        assert s["spec"]["minReplicaCount"] == (0 if g.optional else g.replicas)
        (trigger,) = s["spec"]["triggers"]
        assert trigger["type"] == "prometheus"
        assert f'model="{g.model}"' in trigger["metadata"]["query"] and "streamwise_demand_instances" in trigger["metadata"]["query"]
    assert any(s["spec"]["minReplicaCount"] == 0 for s in scaled)
    sched = _container(_docs(out / "scheduler.yaml")[0])
    pools = parse_pools(next(e["value"] for e in sched["env"] if e["name"] == "STREAMWISE_POOLS"))
    assert {p for p in pools} == {g.pool for g in groups.values()}
    assert _flag(sched["command"], "--creds").endswith("/scheduler.creds")
    values = _docs(out / "nats-values.yaml")[0]
    assert values["config"]["cluster"]["replicas"] == 3 and values["config"]["jetstream"]["fileStore"]["enabled"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_kustomize_builds_the_base(rendered):
    built = [d for d in yaml.safe_load_all(kustomize(rendered / "k8s")) if d]
    names = {(d["kind"], d["metadata"]["name"]) for d in built}
    assert ("Deployment", "sw-scheduler") in names and ("ScaledObject", "sw-mux-pyav-fmp4-cpu") in names
    assert all(d["metadata"].get("namespace") == "streamwise" for d in built if d["kind"] != "Namespace")


def test_kustomize_refuses_a_broken_base(rendered, tmp_path):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
    broken = tmp_path / "k8s"
    shutil.copytree(rendered / "k8s", broken)
    (broken / "kustomization.yaml").write_text("resources: [workers.yaml, missing.yaml]\n")
    with pytest.raises(RuntimeError, match="missing.yaml"):
        kustomize(broken)


# ------------------------------------------------------------------------------------------ refusals


def test_a_broken_manifest_is_refused(rendered):
    dep = _docs(rendered / "k8s" / "workers.yaml")[0]
    bad = copy.deepcopy(dep)
    bad["spec"]["template"]["spec"]["containers"][0]["resourcez"] = bad["spec"]["template"]["spec"]["containers"][0].pop("resources")
    assert validate_doc(dep) == []
    assert any("resourcez" in e for e in validate_doc(bad))
    bad = copy.deepcopy(dep)
    bad["spec"]["replicas"] = "seven"
    assert validate_doc(bad)


def test_a_broken_scaled_object_is_refused(rendered):
    so = _docs(rendered / "k8s" / "autoscaling.yaml")[0]
    assert validate_doc(so) == []
    bad = copy.deepcopy(so)
    bad["spec"]["minReplicaCount"] = "zero"
    assert any("minReplicaCount" in e for e in validate_doc(bad))
    bad = copy.deepcopy(so)
    bad["spec"]["triggerz"] = bad["spec"].pop("triggers")
    assert validate_doc(bad)
    bad = copy.deepcopy(so)
    bad["spec"]["scaleTargetRef"]["nmae"] = "x"
    assert any("nmae" in e for e in validate_doc(bad))


def test_validate_command_fails_on_a_broken_directory(rendered, tmp_path, capsys):
    broken = tmp_path / "k8s"
    shutil.copytree(rendered / "k8s", broken)
    text = (broken / "workers.yaml").read_text().replace("terminationGracePeriodSeconds: 38",
                                                          "terminationGracePeriodSeconds: soon", 1)
    (broken / "workers.yaml").write_text(text)
    assert main(["deploy", "validate", str(broken)]) == 1
    assert "terminationGracePeriodSeconds" in capsys.readouterr().err


def _plan_with(rendered, edit) -> dict:
    plan = load_plan(rendered / "plan.yaml")
    edit(plan["workers"])
    return plan


@pytest.mark.parametrize("args, message", [
    (["worker", "--stage", "upscale", "--model", "realesrgan", "--hardware", "h100", "--gpus", "1"],
     "no worker serves stage 'upscale'"),
    (["worker", "--stage", "screenplay", "--model", "gemma", "--hardware", "h100", "--gpus", "1"],
     "no worker serves model 'gemma' for stage 'screenplay'"),
    (["worker", "--stage", "video", "--model", "hunyuanframepack-vae", "--hardware", "h100", "--gpus", "1"],
     "no worker serves model 'hunyuanframepack-vae'"),
    (["worker", "--stage", "video", "--model", "fantasytalking", "--hardware", "h100", "--gpus", "0"],
     "needs --gpus >= 1"),
    (["worker", "--stage", "mux", "--model", "pyav-fmp4", "--nats", "nats://x:4222"], "--nats is set by the renderer"),
])
def test_a_plan_naming_what_no_worker_serves_is_refused(rendered, args, message):
    plan = _plan_with(rendered, lambda ws: ws.append({"replicas": 1, "args": args}))
    with pytest.raises(PlanError, match=re.escape(message)):
        render(plan, RenderOptions())


def test_a_plan_without_a_mux_worker_is_refused(rendered):
    plan = _plan_with(rendered, lambda ws: ws.__setitem__(slice(None), [w for w in ws if "mux" not in w["args"]]))
    with pytest.raises(PlanError, match="no worker for stage"):
        render(plan)


def test_the_old_plan_format_is_refused_with_one_line(tmp_path, capsys):
    old = {"workers": [{"replicas": 1, "args": ["worker", "--stage", "screenplay", "--model", "gemma"]}]}
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(old))
    assert main(["deploy", "render", "--plan", str(path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "gemma" in err and "streamwise provision --out" in err
    assert not (tmp_path / "out").exists()


def test_emulated_rendering_requests_no_gpus(rendered):
    plan = load_plan(rendered / "plan.yaml")
    files = render(plan, RenderOptions(emulate=True))
    for dep in files["workers.yaml"]:
        c = _container(dep)
        assert "limits" not in c["resources"] and "nodeSelector" not in dep["spec"]["template"]["spec"]
        if _flag(c["command"], "--gpus") != "0":
            assert "--emulate" in c["command"] and c["command"][0] == "streamwise"
        assert validate_doc(dep) == []


def test_a_reserved_plan_has_no_spot_placement(rendered):
    plan = load_plan(rendered / "plan.yaml")
    plan["pricing"] = "reserved"
    for dep in render(plan)["workers.yaml"]:
        spec = dep["spec"]["template"]["spec"]
        assert not any("scalesetpriority" in t["key"] for t in spec.get("tolerations", []))
        assert "kubernetes.azure.com/scalesetpriority" not in spec.get("nodeSelector", {})


# ------------------------------------------------------------------------------------------ auth


def _chart_conf(merge: dict) -> str:
    """nats.conf lines as the NATS chart writes its ``config.merge`` (JSON values; a string
    ``<< X >>`` unquoted, the chart's form for raw values)."""
    import json

    def value(v):
        text = json.dumps(v)
        m = re.fullmatch(r'"<< (.*) >>"', text)
        return m.group(1) if m else text
    return "".join(f"{k}: {value(v)}\n" for k, v in merge.items())


def test_nats_values_and_secrets_carry_the_auth_directorys_roles(rendered, tmp_path):
    """``render --auth DIR``: the NATS chart's ``config.merge`` is the operator, accounts and
    resolver of ``DIR/nats.conf`` (the same settings), ``secrets.yaml`` holds one Secret per
    credentials volume the pods mount. A real nats-server run with the configuration the chart
    would write from those values accepts the Secrets' credentials and enforces their roles."""
    import asyncio
    import os
    import stat

    from streamwise.bus import subjects as S
    from streamwise.bus.auth import init_auth, read_creds_jwt, server_settings
    from streamwise.bus.client import connect, ensure_layout
    from streamwise.bus.server import EmbeddedServer
    from streamwise.cli.auth import registry_models

    auth = init_auth(tmp_path / "auth", ["default", "b"], models=registry_models())
    plan = load_plan(rendered / "plan.yaml")
    files = render(plan, RenderOptions(auth_dir=str(auth.path)))
    merge = files["nats-values.yaml"][0]["config"]["merge"]
    settings = server_settings(auth.path)
    assert merge["operator"] == settings["operator"] and merge["resolver_preload"] == settings["resolver_preload"]
    assert merge["resolver"] == "<< MEMORY >>" and merge["max_control_line"] == "<< 64KB >>"
    # every credentials volume of every pod has its Secret and key; the Secrets validate
    secrets = {d["metadata"]["name"]: d for d in files["secrets.yaml"]}
    pods = [d["spec"]["template"]["spec"] for f in ("workers.yaml", "scheduler.yaml", "gateway.yaml", "layout-job.yaml")
            for d in files[f] if d["kind"] in ("Deployment", "Job")]
    for pod in pods:
        (vol,) = [v for v in pod["volumes"] if "secret" in v]
        key = vol["secret"]["items"][0]["key"]
        assert key in secrets[vol["secret"]["secretName"]]["stringData"], vol
    for d in files["secrets.yaml"]:
        assert validate_doc(d) == []
    workers = {_flag(_container(d)["command"], "--model") for d in files["workers.yaml"]}
    assert {f"streamwise-worker-{m}-creds" for m in workers} <= set(secrets)
    assert "kustomization.yaml" in files and "secrets.yaml" in files["kustomization.yaml"][0]["resources"]
    out = tmp_path / "k8s"
    from streamwise.deploy.render import write
    write(files, out)
    assert stat.S_IMODE((out / "secrets.yaml").stat().st_mode) == 0o600
    assert "secrets.yaml" not in render(plan, RenderOptions())        # no auth directory: no Secrets

    # the chart writes merge keys into nats.conf as JSON values, `<< X >>` unquoted
    conf = _chart_conf(merge)
    creds = {}
    for name, d in secrets.items():
        (key, text), = d["stringData"].items()
        path = tmp_path / key
        path.write_text(text)
        os.chmod(path, 0o600)
        creds[key.removesuffix(".creds")] = str(path)

    async def check():
        with EmbeddedServer(extra_conf=conf) as server:
            admin = await connect(server.url, creds=creds["admin"])
            await ensure_layout(admin.js, tenants=("default",))
            await admin.close()
            errors = []

            async def on_error(exc):
                errors.append(str(exc))
            gateway = await connect(server.url, creds=creds["gateway"], error_cb=on_error)
            assert gateway.user == "tenant-default"
            await gateway.nc.publish(S.requests("b"), b"x")          # another tenant's subject
            await gateway.nc.publish(S.tasks("piper", "x"), b"x")    # a task subject
            await gateway.nc.flush()
            for _ in range(100):
                if len(errors) >= 2:
                    break
                await asyncio.sleep(0.1)
            await gateway.close()
            assert sum("permissions violation" in e.lower() for e in errors) == 2, errors
            mux = await connect(server.url, creds=creds["worker-pyav-fmp4"])
            assert mux.user == "worker-pyav-fmp4" and read_creds_jwt(creds["worker-pyav-fmp4"])["name"] == mux.user
            await mux.close()
    asyncio.run(check())


# ------------------------------------------------------------------------------------------ multi-node instances


def _multinode_plan(rendered) -> dict:
    return _plan_with(rendered, lambda ws: ws.append({"replicas": 2, "args": [
        "worker", "--stage", "video", "--model", "fantasytalking", "--hardware", "h100", "--gpus", "16"]}))


def test_an_instance_over_one_node_renders_as_leader_and_follower_statefulsets(rendered):
    """A 16-GPU instance on 8-GPU nodes: per instance a headless Service, a leader StatefulSet
    (node rank 0, the health endpoint) and a follower StatefulSet whose pod index is its node
    rank, torchrun with static rendezvous at the leader's stable DNS name; everything validates."""
    files = render(_multinode_plan(rendered), RenderOptions())
    objs = files["multinode-workers.yaml"]
    for d in objs:
        assert validate_doc(d) == [], d["metadata"]["name"]
    services = {d["metadata"]["name"]: d for d in objs if d["kind"] == "Service"}
    sets = {d["metadata"]["name"]: d for d in objs if d["kind"] == "StatefulSet"}
    assert len(services) == 2 and len(sets) == 4          # 2 instances x (leader + followers)
    try:
        from torch.distributed.run import get_args_parser
    except ImportError:
        get_args_parser = None
    for svc_name, svc in services.items():
        assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
        leader, followers = sets[f"{svc_name}-leader"], sets[f"{svc_name}-node"]
        assert leader["spec"]["serviceName"] == followers["spec"]["serviceName"] == svc_name
        assert svc["spec"]["selector"].items() <= leader["spec"]["template"]["metadata"]["labels"].items()
        assert leader["spec"]["replicas"] == 1 and followers["spec"]["replicas"] == 1
        assert followers["spec"]["ordinals"] == {"start": 1}
        addr = f"{svc_name}-leader-0.{svc_name}.streamwise.svc.cluster.local"
        for sts, rank in ((leader, "0"), (followers, "$(POD_INDEX)")):
            assert sts["spec"]["podManagementPolicy"] == "Parallel"
            c = sts["spec"]["template"]["spec"]["containers"][0]
            cmd = c["command"]
            assert cmd[0] == "torchrun" and "--standalone" not in cmd
            assert (_flag(cmd, "--nnodes"), _flag(cmd, "--nproc_per_node"), _flag(cmd, "--node_rank")) == ("2", "8", rank)
            assert _flag(cmd, "--master_addr") == addr and _flag(cmd, "--master_port") == "29500"
            assert _flag(cmd, "--gpus") == "16" and _flag(cmd, "--creds").endswith("/worker-fantasytalking.creds")
            assert c["resources"]["limits"]["nvidia.com/gpu"] == 8
            index = next(e for e in c["env"] if e["name"] == "POD_INDEX")
            assert index["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"
            assert ("readinessProbe" in c) == (sts is leader)          # only rank 0 serves /readyz
            if get_args_parser is not None:
                # Kubernetes expands $(POD_INDEX) in a command from the container's env (the pod index)
                args = get_args_parser().parse_args([a.replace("$(POD_INDEX)", "1") for a in cmd[1:]])
                assert (args.nnodes, args.nproc_per_node, args.rdzv_backend, args.module) == ("2", "8", "static", True)
    # no KEDA object scales a multi-node pool; one disruption budget per instance
    assert not any(s["metadata"]["name"].startswith("sw-video-fantasytalking-h100-16g") for s in files["autoscaling.yaml"])
    pdbs = {d["metadata"]["name"] for d in files["disruption-budgets.yaml"]}
    assert set(services) <= pdbs
    assert "multinode-workers.yaml" in files["kustomization.yaml"][0]["resources"]


def test_a_multinode_render_validates_and_builds(rendered, tmp_path):
    from streamwise.deploy.render import write

    out = tmp_path / "k8s"
    write(render(_multinode_plan(rendered), RenderOptions()), out)
    count, errors = validate_dir(out)
    assert errors == [] and count > 20
    if shutil.which("kubectl"):
        built = [d for d in yaml.safe_load_all(kustomize(out)) if d]
        assert ("StatefulSet", "sw-video-fantasytalking-h100-16g-0-leader") in {(d["kind"], d["metadata"]["name"])
                                                                                 for d in built}


def test_the_rendered_rendezvous_flags_form_one_world_with_rank_0_on_node_0(tmp_path):
    """The launch flags of a 2-node instance (scaled to one process per node), run as two
    torchrun 'nodes' on loopback with a script in place of the worker: one world of 2, node 0
    holding global rank 0 (the bus-facing leader), a gloo all-reduce across the nodes."""
    pytest.importorskip("torch")
    import socket
    import subprocess
    import sys

    from streamwise.stages.gpu.parallel import LAUNCHER_MODULE, launch_command

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "probe.py"
    script.write_text("import os, torch, torch.distributed as d\n"
                      "d.init_process_group('gloo')\n"
                      "t = torch.tensor([float(os.environ['RANK'])]); d.all_reduce(t)\n"
                      "print('rank', os.environ['RANK'], 'world', os.environ['WORLD_SIZE'], 'sum', int(t.item()))\n"
                      "d.destroy_process_group()\n")
    procs = []
    for rank in (0, 1):
        cmd = launch_command("video", "fantasytalking", 2, "nats://x:4222", nnodes=2, node_rank=rank,
                             master_addr="127.0.0.1", master_port=port, torchrun=[sys.executable, "-m", "torch.distributed.run"])
        cmd = cmd[:cmd.index("-m", 3)] + [str(script)]   # the torchrun flags as rendered, a probe for the worker
        assert LAUNCHER_MODULE not in cmd
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}))
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=300)[0])
        finally:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), outs
    assert "rank 0 world 2 sum 1" in outs[0] and "rank 1 world 2 sum 1" in outs[1], outs


def test_an_instance_over_a_fraction_of_nodes_is_refused(rendered):
    plan = _plan_with(rendered, lambda ws: ws.append({"replicas": 1, "args": [
        "worker", "--stage", "video", "--model", "fantasytalking", "--hardware", "h100", "--gpus", "12"]}))
    with pytest.raises(PlanError, match="not a whole number of them"):
        render(plan)
