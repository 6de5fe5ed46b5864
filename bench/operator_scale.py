"""The operator over thousands of pods, by simulation: poll rounds, CPU, RSS, API writes.

    python -m bench.operator_scale --pods 50,500,5000 [--kubeconfig PATH] [--rounds 3]

For each pod count N, in a fresh namespace with its own ``echelon-operator`` process:

- ``--pools`` PollingPools (one TaskGroup each, two models) and ``--deployments`` labelled
  Deployments per pool, N pods in all. The Deployments are paused (so the controller-manager
  makes no ReplicaSet of them); once the operator has injected its sidecar into their pod
  templates, the benchmark creates the pods from those templates itself and sets their
  status Running with an IP in 127.10.0.0/16 through the API server (``pods/status``), as a
  kubelet would;
- one farm process (``bench/harness/sidecar_farm.py``) answers every pod IP's admin
  ``/v1/status`` (its own document per sidecar; every tenth has an open circuit);
- the operator talks to the API server through a counting proxy
  (``bench/harness/kube_proxy.py``): every write it makes is timestamped.

Then it follows the operator's poll rounds (its liveness probe tells when each ended and how
long it took): the first rounds (the pods appear, statuses are written), ``--rounds`` steady
rounds (nothing changed: no write expected), one round after 1 % of the sidecars opened a
circuit (a change to write), and one more steady round. Per round: duration, the operator's
CPU time during it and over the poll interval, its RSS, and the API writes made during the
round and since the last one (status patches, Events, other). Results go to stdout as JSON;
progress to stderr. Bounded: each case has a time limit (``--timeout``), and the pods are
created at a bounded concurrency. Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import yaml

from bench.harness.kube_proxy import CountingProxy
from bench.operator_bench import MODELS, Kubectl, cluster, free_port

BIN = Path(sys.executable).parent
POOL_LABEL = "echelon.dev/pool"
SIDECAR = "echelon-sidecar"
MODEL_IDS = ["m-openai", "m-claude"]


def log(message: str) -> None:
    sys.stderr.write(f"[operator-scale] {message}\n")
    sys.stderr.flush()


def pod_ip(i: int) -> str:
    """The i-th pod's IP: 127.10.0.1, 127.10.0.2, ... (no .0 nor .255 in the last byte)."""
    a, b = divmod(i, 254)
    return f"127.10.{a}.{b + 1}"


class Api:
    """The few raw API calls the benchmark makes itself (not through the counting proxy)."""

    def __init__(self, kubeconfig: Path) -> None:
        cfg = yaml.safe_load(kubeconfig.read_text())
        self.server = cfg["clusters"][0]["cluster"]["server"].rstrip("/")
        token = cfg["users"][0]["user"].get("token")
        if not token:
            raise RuntimeError("operator_scale needs a kubeconfig with a bearer token "
                               "(scripts/local-k8s writes one)")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Api:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=False, limit=64), headers=self.headers,
            timeout=aiohttp.ClientTimeout(total=120))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def call(self, method: str, path: str, body: Any = None,
                   content_type: str = "application/json") -> Any:
        assert self.session is not None
        for attempt in range(5):
            async with self.session.request(
                    method, self.server + path,
                    data=None if body is None else json.dumps(body),
                    headers={"Content-Type": content_type}) as resp:
                text = await resp.text()
                if resp.status == 429 or resp.status >= 500:
                    await asyncio.sleep(0.5 * (attempt + 1))
                    continue
                if resp.status >= 400:
                    raise RuntimeError(f"{method} {path}: {resp.status} {text[:300]}")
                return json.loads(text) if text else None
        raise RuntimeError(f"{method} {path}: the API server kept refusing")


async def bounded(limit: int, coros: list[Any]) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(c: Any) -> Any:
        async with sem:
            return await c
    return list(await asyncio.gather(*(one(c) for c in coros)))


def manifests(namespace: str, pools: int, deployments: int, replicas: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "echelon-global-config",
                     "labels": {"echelon.dev/config": "global"}},
        "data": {"config.yaml": yaml.safe_dump({"models": MODELS})}}]
    for p in range(pools):
        items.append({"apiVersion": "echelon.dev/v1alpha1", "kind": "TaskGroup",
                      "metadata": {"name": f"group-{p}"},
                      "spec": {"echelons": {"echelon1": {"models": MODEL_IDS, "priority": 1,
                                                         "rpmLimit": 6000}}}})
        items.append({"apiVersion": "echelon.dev/v1alpha1", "kind": "PollingPool",
                      "metadata": {"name": f"pool-{p}"}, "spec": {"taskGroups": [f"group-{p}"]}})
        for d in range(deployments):
            name = f"app-{p}-{d}"
            items.append({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "labels": {POOL_LABEL: f"pool-{p}"}},
                "spec": {"replicas": replicas, "paused": True,
                         "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": "app",
                                                               "image": "busybox:1.36"}]}}}})
    return items


class Operator:
    def __init__(self, kubeconfig: Path, namespace: str, log_path: Path, interval: float
                 ) -> None:
        self.port = free_port()
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1",
               "ECHELON_POLL_INTERVAL": str(interval)}
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(BIN / "echelon-operator"), "--namespace", namespace, "--log-level", "WARNING",
             "--liveness", f"http://127.0.0.1:{self.port}/healthz"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def rss_mb(self) -> float:
        return round(self.ps.memory_info().rss / 2**20, 1)

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text()[-chars:]

    async def probe(self, session: aiohttp.ClientSession) -> dict[str, Any] | None:
        try:
            async with session.get(f"http://127.0.0.1:{self.port}/healthz",
                                   timeout=aiohttp.ClientTimeout(total=5)) as resp:
                return dict((await resp.json())["echelon"])
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


class Rounds:
    """The operator's poll rounds as seen from outside (its liveness probe is cached for up
    to 10 s by kopf: a round may go unseen, each one seen is exact): when it started and
    ended, by the operator's own clock (``lastPoll``, ``lastPollSeconds``); its polls at the
    farm, its writes at the counting proxy; the operator's CPU time and RSS, sampled every
    0.1-0.25 s. Every write of a phase is counted too, seen round or not."""

    def __init__(self, op: Operator, proxy: CountingProxy, farm_port: int, interval: float
                 ) -> None:
        self.op, self.proxy, self.farm_port = op, proxy, farm_port
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (time, cpu)
        self.rss_peak = 0.0
        self.count = 0
        self.polls = 0

    def _cpu_at(self, t: float) -> float:
        """The CPU time at ``t``, interpolated between samples."""
        before = after = None
        for s in self.samples:
            if s[0] <= t:
                before = s
            else:
                after = s
                break
        if before is None:
            return self.samples[0][1]
        if after is None or after[0] == before[0]:
            return before[1]
        return before[1] + (after[1] - before[1]) * (t - before[0]) / (after[0] - before[0])

    def sample(self) -> None:
        self.samples.append((time.time(), self.op.cpu()))
        self.rss_peak = max(self.rss_peak, self.op.rss_mb())

    async def _farm(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        async with session.get(f"http://127.0.0.1:{self.farm_port}/stats") as resp:
            return dict(await resp.json())

    async def polled(self, session: aiohttp.ClientSession) -> int:
        return int((await self._farm(session))["polled"])

    async def next(self, session: aiohttp.ClientSession, deadline: float, n: int
                   ) -> dict[str, Any]:
        """Wait for the operator to report a round newer than the last one seen (kopf caches
        its liveness probe up to 10 s, so a round may go unseen: each one seen is exact, from
        the operator's own clock); its figures. Its writes: from its start until the next
        round can start (an interval later, or at its end if it took longer)."""
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError("no poll round ended in time")
            if self.op.proc.poll() is not None:
                raise RuntimeError(f"echelon-operator exited {self.op.proc.returncode}")
            self.sample()
            probe = await self.op.probe(session)
            if probe and (probe.get("polls") or 0) > self.polls and probe.get("lastPoll"):
                end = float(probe["lastPoll"])
                if time.time() - end > 1.5 or time.time() - end > self.interval * 0.6:
                    break  # its writes are in (Events follow the status patches)
            await asyncio.sleep(0.25)
        self.polls = int(probe["polls"])
        seconds = float(probe.get("lastPollSeconds") or 0.0)
        start = end - seconds
        window_end = max(end + 1.0, start + self.interval)
        async with session.get(f"http://127.0.0.1:{self.farm_port}/window",
                               params={"from": str(start), "to": str(end + 0.01)}) as resp:
            window = await resp.json()
        writes = [w for w in self.proxy.writes if start <= w.at < window_end]
        kinds: dict[str, int] = {}
        for w in writes:
            kinds[w.kind] = kinds.get(w.kind, 0) + 1
        cpu = self._cpu_at(end) - self._cpu_at(start)
        self.count += 1
        return {"round": self.polls, "seconds": round(seconds, 3),
                "sidecars_polled": window["sidecars"], "polls": window["polls"],
                "polls_s": round((window["last"] or start) - (window["first"] or start), 3),
                "cpu_s": round(cpu, 3),
                "cores_during_round": round(cpu / seconds, 3) if seconds > 0 else None,
                "cpu_s_per_interval": round(self._cpu_at(start + self.interval)
                                            - self._cpu_at(start), 3)
                if time.time() > start + self.interval else None,
                "rss_mb": self.op.rss_mb(), "writes": len(writes), "writes_by_kind": kinds,
                "write_paths": sorted({f"{w.method} {w.path}" for w in writes})[:12],
                "start": start, "end": end}


async def run_case(kubectl: Kubectl, api: Api, n: int, args: argparse.Namespace,
                   workdir: Path) -> dict[str, Any]:
    pools, deployments = args.pools, args.deployments
    if n < pools * deployments:
        deployments = max(1, n // pools)
    replicas = max(1, n // (pools * deployments))
    n = pools * deployments * replicas
    namespace = f"scale-{n}-{uuid.uuid4().hex[:6]}"
    deadline = time.monotonic() + args.timeout
    kubectl("create", "namespace", namespace)
    proxy = CountingProxy(api.server, token=api.headers["Authorization"].split(" ", 1)[1])
    proxy_url = await proxy.start()
    cfg = yaml.safe_load(kubectl.kubeconfig.read_text())
    cfg["clusters"][0]["cluster"] = {"server": proxy_url}
    proxied = workdir / f"kubeconfig-{namespace}"
    proxied.write_text(yaml.safe_dump(cfg))
    op = Operator(proxied, namespace, workdir / f"operator-{namespace}.log", args.interval)
    farm: subprocess.Popen[bytes] | None = None
    result: dict[str, Any] = {"pods": n, "pools": pools, "deployments": pools * deployments,
                              "replicas_per_deployment": replicas,
                              "poll_interval_s": args.interval}
    try:
        async with aiohttp.ClientSession() as local:
            await _wait_live(op, local, deadline)
            result["operator_rss_mb_idle"] = op.rss_mb()
            started = time.monotonic()
            kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(
                {"apiVersion": "v1", "kind": "List",
                 "items": manifests(namespace, pools, deployments, replicas)}), timeout=600)
            templates = await _injected_templates(api, namespace, pools * deployments, deadline)
            result["inject_s"] = round(time.monotonic() - started, 2)
            log(f"N={n}: {len(templates)} Deployments injected in {result['inject_s']} s")
            sidecar = _sidecar(next(iter(templates.values()))["spec"]["template"]["spec"])
            assert sidecar is not None
            admin_port = next(p["containerPort"] for p in sidecar.get("ports") or []
                              if p.get("name") == "echelon-admin")
            # the farm: one admin endpoint per pod IP
            targets, pods = _farm_targets(pools, deployments, replicas)
            (workdir / f"targets-{namespace}.json").write_text(json.dumps(targets))
            control = workdir / f"farm-{namespace}.port"
            farm_log = (workdir / f"farm-{namespace}.log").open("wb")
            farm = subprocess.Popen(  # noqa: ASYNC220 (started once per case, returns at once)
                [sys.executable, "-m", "bench.harness.sidecar_farm", "--targets",
                 str(workdir / f"targets-{namespace}.json"), "--port", str(admin_port),
                 "--control-port-file", str(control)],
                stdout=farm_log, stderr=subprocess.STDOUT, env={**os.environ})
            while not control.exists():
                if farm.poll() is not None or time.monotonic() > deadline:
                    farm_log.flush()
                    tail = (workdir / f"farm-{namespace}.log").read_text(errors="replace")
                    raise RuntimeError(f"the sidecar farm did not start: {tail[-600:]}")
                await asyncio.sleep(0.2)
            farm_port = int(control.read_text())
            await _create_running_pods(api, args, namespace, templates, pods, result, n)
            rounds = Rounds(op, proxy, farm_port, args.interval)
            out_rounds = await _rounds_until_steady(rounds, local, deadline, n, args, result)
            result["change"] = await _rounds_after_a_change(
                rounds, local, deadline, n, farm_port, proxy, out_rounds)
            async with local.get(f"http://127.0.0.1:{farm_port}/stats") as resp:
                farm_stats = await resp.json()
            result["farm"] = {"requests": farm_stats["requests"],
                              "connections": farm_stats["connections"]}
            result["rounds"] = out_rounds
            result["operator_rss_mb_peak"] = rounds.rss_peak
            result["operator_cpu_s_total"] = round(op.cpu(), 2)
            result["api_reads_total"] = proxy.reads
            result["api_refused"] = [list(r) for r in proxy.refused[:10]]
            _summarize_steady_rounds(result, out_rounds, proxy, args.interval)
            return result
    finally:
        op.stop()
        if farm is not None and farm.poll() is None:
            farm.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                farm.wait(timeout=10)
        await proxy.stop()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _sidecar(pod_spec: dict[str, Any]) -> dict[str, Any] | None:
    """The injected sidecar of a pod spec: a container, or (1.29+) a native sidecar among the
    init containers."""
    for c in [*(pod_spec.get("containers") or []), *(pod_spec.get("initContainers") or [])]:
        if c["name"] == SIDECAR:
            return c  # type: ignore[no-any-return]
    return None


async def _wait_live(op: Operator, local: aiohttp.ClientSession, deadline: float) -> None:
    """Until the operator's liveness probe answers (its log in the error if it never does)."""
    while await op.probe(local) is None:
        if op.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"echelon-operator did not become live: {op.log_tail()}")
        await asyncio.sleep(0.2)


async def _injected_templates(api: Api, namespace: str, count: int,
                              deadline: float) -> dict[str, dict[str, Any]]:
    """The ``count`` Deployments, once the operator injected its sidecar into each pod
    template, by name."""
    templates: dict[str, dict[str, Any]] = {}
    while len(templates) < count:
        if time.monotonic() > deadline:
            raise TimeoutError("the operator did not inject every Deployment in time")
        listed = await api.call("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments")
        for dep in listed["items"]:
            if _sidecar(dep["spec"]["template"]["spec"]) is not None:
                templates[dep["metadata"]["name"]] = dep
        await asyncio.sleep(0.5)
    return templates


def _farm_targets(pools: int, deployments: int,
                  replicas: int) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    """The farm's targets (one per pod IP; every tenth with an open circuit), and the pods
    as (name, Deployment, IP)."""
    targets, pods = [], []
    i = 0
    for p in range(pools):
        members = [f"app-{p}-{d}-{r:04d}" for d in range(deployments)
                   for r in range(replicas)]
        for slot, pod in enumerate(sorted(members)):
            ip = pod_ip(i)
            open_ = [[f"group-{p}", "m-claude"]] if i % 10 == 0 else []
            targets.append({"ip": ip, "pod": pod, "pool": f"pool-{p}", "slot": slot,
                            "sidecars": len(members),
                            "groups": {f"group-{p}": MODEL_IDS}, "open": open_})
            pods.append((pod, pod.rsplit("-", 1)[0], ip))
            i += 1
    return targets, pods


async def _create_running_pods(api: Api, args: argparse.Namespace, namespace: str,
                               templates: dict[str, dict[str, Any]],
                               pods: list[tuple[str, str, str]], result: dict[str, Any],
                               n: int) -> None:
    """The pods, from the injected templates, then Running with their IPs (as a kubelet)."""
    t0 = time.monotonic()

    def pod_body(name: str, dep: str) -> dict[str, Any]:
        tpl = templates[dep]["spec"]["template"]
        meta = tpl.get("metadata") or {}
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": meta.get("labels") or {},
                             "annotations": meta.get("annotations") or {}},
                "spec": tpl["spec"]}
    await bounded(args.api_concurrency, [
        api.call("POST", f"/api/v1/namespaces/{namespace}/pods", pod_body(name, dep))
        for name, dep, _ in pods])
    result["pods_created_s"] = round(time.monotonic() - t0, 2)
    log(f"N={n}: {n} pods created in {result['pods_created_s']} s")
    t0 = time.monotonic()
    await bounded(args.api_concurrency, [
        api.call("PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status",
                 {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                             "conditions": [{"type": "Ready", "status": "True"}]}},
                 content_type="application/merge-patch+json")
        for name, _, ip in pods])
    result["pods_running_s"] = round(time.monotonic() - t0, 2)
    log(f"N={n}: {n} pods Running in {result['pods_running_s']} s")


async def _rounds_until_steady(rounds: Rounds, local: aiohttp.ClientSession, deadline: float,
                               n: int, args: argparse.Namespace,
                               result: dict[str, Any]) -> list[dict[str, Any]]:
    """Follow the rounds: first until every sidecar was polled and a round wrote nothing,
    then from a clean count (the k-th poll of every sidecar: round k) ``--rounds - 1``
    steady rounds more."""
    out_rounds: list[dict[str, Any]] = []
    t0 = time.monotonic()
    while await rounds.polled(local) < n:
        rounds.sample()
        if time.monotonic() > deadline:
            raise TimeoutError("the operator did not poll every sidecar in time")
        await asyncio.sleep(0.2)
    result["all_polled_after_s"] = round(time.monotonic() - t0, 2)
    log(f"N={n}: every sidecar polled {result['all_polled_after_s']} s after the pods "
        "were Running")
    for _ in range(8):  # until a round polled every sidecar and wrote nothing
        r = await rounds.next(local, deadline, n)
        r["phase"] = "pods appeared"
        out_rounds.append(r)
        log(f"N={n}: round {r['round']}: {r['seconds']} s (polls {r['polls_s']} s), "
            f"cpu {r['cpu_s']} s, {r['writes']} writes")
        if r["writes"] == 0 and r["sidecars_polled"] >= n:
            r["phase"] = "steady"
            break
    for _ in range(args.rounds - 1):
        r = await rounds.next(local, deadline, n)
        r["phase"] = "steady"
        out_rounds.append(r)
        log(f"N={n}: steady round {r['round']}: {r['seconds']} s (polls "
            f"{r['polls_s']} s), cpu {r['cpu_s']} s, {r['writes']} writes")
    return out_rounds


async def _rounds_after_a_change(rounds: Rounds, local: aiohttp.ClientSession,
                                 deadline: float, n: int, farm_port: int, proxy: CountingProxy,
                                 out_rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """A change: 1 % of the sidecars open a circuit; the writes it causes are every write
    from then until a round that started after it and wrote nothing (its rounds are added
    to ``out_rounds``)."""
    flip = max(1, n // 100)
    flipped_at = time.time()
    async with local.post(f"http://127.0.0.1:{farm_port}/flip?count={flip}") as resp:
        flipped = (await resp.json())["flipped"]
    phase = "after a change"
    for _ in range(8):
        r = await rounds.next(local, deadline, n)
        if r["start"] < flipped_at:
            continue  # began before the change
        r["phase"] = phase
        out_rounds.append(r)
        log(f"N={n}: {phase} round {r['round']}: {r['seconds']} s, writes {r['writes']}")
        if phase == "after a change":
            phase = "steady after the change"
            continue
        if r["writes"] == 0:
            break
    calm = out_rounds[-1]["start"]
    changed = [w for w in proxy.writes if flipped_at <= w.at < calm]
    kinds: dict[str, int] = {}
    for w in changed:
        kinds[w.kind] = kinds.get(w.kind, 0) + 1
    return {"circuits_opened": flipped, "writes": len(changed),
            "writes_by_kind": kinds,
            "write_paths": sorted({f"{w.method} {w.path}" for w in changed})[:12]}


def _summarize_steady_rounds(result: dict[str, Any], out_rounds: list[dict[str, Any]],
                             proxy: CountingProxy, interval: float) -> None:
    steady = [r for r in out_rounds if r["phase"].startswith("steady")]
    first_steady = next(r for r in out_rounds if r["phase"] == "steady")
    last_steady = [r for r in out_rounds if r["phase"] == "steady"][-1]
    result["writes_over_steady_phase"] = len(
        [w for w in proxy.writes
         if first_steady["start"] <= w.at < last_steady["start"] + interval])
    result["steady"] = {
        "round_s_max": max(r["seconds"] for r in steady),
        "round_s_median": sorted(r["seconds"] for r in steady)[len(steady) // 2],
        "cpu_s_per_round_max": max(r["cpu_s"] for r in steady),
        "cores_during_round_max": max(r["cores_during_round"] or 0 for r in steady),
        "writes_max": max(r["writes"] for r in steady),
    }


async def amain(args: argparse.Namespace, kubeconfig: Path, workdir: Path) -> list[dict[str, Any]]:
    kubectl = Kubectl(kubeconfig)
    kubectl.apply_crds()
    out = []
    async with Api(kubeconfig) as api:
        for n in args.pods:
            out.append(await run_case(kubectl, api, n, args, workdir))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.operator_scale",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--pods", default="50,500,5000", help="pod counts (default %(default)s)")
    p.add_argument("--pools", type=int, default=5)
    p.add_argument("--deployments", type=int, default=10, help="Deployments per pool")
    p.add_argument("--rounds", type=int, default=3, help="steady rounds to measure")
    p.add_argument("--interval", type=float, default=10.0, help="the operator's poll interval "
                   "(ECHELON_POLL_INTERVAL, default: the operator's own, %(default)s s)")
    p.add_argument("--api-concurrency", type=int, default=24,
                   help="parallel API calls creating pods and setting their status")
    p.add_argument("--kubeconfig", default=os.environ.get("ECHELON_KUBECONFIG"))
    p.add_argument("--timeout", type=float, default=900, help="seconds per case")
    args = p.parse_args(argv)
    args.pods = [int(x) for x in str(args.pods).split(",") if x.strip()]
    import signal

    def stop(signum: int, frame: object) -> None:  # a timeout's TERM: clean up on the way
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    import resource
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    with tempfile.TemporaryDirectory(prefix="echelon-scale.") as tmp, \
            cluster(args.kubeconfig) as kubeconfig:
        results = asyncio.run(amain(args, kubeconfig, Path(tmp)))
    report = {"benchmark": "operator at scale (simulated sidecars)",
              "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
              "settings": {"pools": args.pools, "deployments_per_pool": args.deployments,
                           "interval_s": args.interval, "poll_concurrency": 32,
                           "poll_timeout_s": 2.0},
              "results": results}
    sys.stdout.write(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
