"""The whole install on real pods, as a cluster user does it (issue 15, items 1-7).

One story, in order, on the run's own node (see conftest.py): `helm install` of the chart with
the images built from the repository; the fake provider as a Pod, the credentials in a Secret,
TaskGroups and PollingPools with `kubectl apply`; an application Deployment labelled for the
pool gets the sidecar and its container calls `http://127.0.0.1:8080`; circuit counts polled
from the pod IPs; a TaskGroup edit reaching the running sidecar through the kubelet; scaling to
three re-splitting the budgets; a killed sidecar restarted; the label removed; `helm uninstall`.
Each test waits for what it needs, so a failure says which step broke.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from bench.footprint_image import read_image

from ...unit.chart.helm import CHART
from ..cluster import Cluster, KubectlError
from ..operator.conftest import wait_for
from ..podspec import names, sidecar_of
from .conftest import RealNode

# one node per run: the tests run in this order on one xdist worker (--dist loadgroup)
pytestmark = [pytest.mark.timeout(900), pytest.mark.real_pods,
              pytest.mark.xdist_group("real-pods")]

RELEASE = "echelon"
SYSTEM_NS = "echelon-system"
APP_NS = "shop"
API_KEY = "sk-e2e-from-a-secret"
#: the tier whose budgets are split: concurrency 5 and rpm 7 over the sidecars
CONCURRENCY = 5
RPM = 7
SIDECAR_UID = 65532
OPERATOR_UID = 10001


# ------------------------------------------------------------------------------ helpers


def kubectl(node: RealNode, *args: str, **kw: Any) -> str:
    return node.cluster.kubectl(*args, **kw).stdout


def get_json(node: RealNode, *args: str) -> Any:
    return node.cluster.kubectl_json(*args)


def pods(node: RealNode, selector: str, namespace: str = APP_NS) -> list[dict[str, Any]]:
    items = get_json(node, "get", "pods", "-n", namespace, "-l", selector)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def statuses(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Container statuses by name, a native sidecar's (among the init containers) included."""
    status = pod.get("status") or {}
    return {s["name"]: s for s in [*(status.get("initContainerStatuses") or []),
                                   *(status.get("containerStatuses") or [])]}


def ready(pod: dict[str, Any]) -> bool:
    found = statuses(pod)
    return (pod.get("status", {}).get("phase") == "Running" and bool(found)
            and all(s.get("ready") for s in found.values()))


def container_names(pod: dict[str, Any]) -> list[str]:
    """The app's containers, then the sidecar (a regular container or a native sidecar)."""
    return names(pod["spec"])


def app_pods(node: RealNode, count: int, *, sidecar: bool = True, timeout: float = 180
             ) -> list[dict[str, Any]]:
    """Exactly ``count`` app pods, every container ready (2/2 with the sidecar, else 1/1)."""
    want = ["app", "echelon-sidecar"] if sidecar else ["app"]

    def probe() -> list[dict[str, Any]] | None:
        found = pods(node, "app=app")
        if len(found) == count and all(ready(p) and container_names(p) == want for p in found):
            return sorted(found, key=lambda p: p["metadata"]["name"])
        return None

    return wait_for(probe, timeout=timeout, interval=1,
                    what=f"{count} app pod(s) {len(want)}/{len(want)} Running and Ready")


def exec_in(node: RealNode, pod: str, container: str, *cmd: str, check: bool = True,
            namespace: str = APP_NS) -> Any:
    return node.cluster.kubectl("exec", "-n", namespace, pod, "-c", container, "--", *cmd,
                                check=check)


def wget(node: RealNode, pod: str, url: str, body: Any = None, container: str = "app"
         ) -> tuple[int, dict[str, str], str]:
    """``wget`` in the application container: (status, response headers, body)."""
    cmd = ["wget", "-S", "-q", "-O", "-", "-T", "30"]
    if body is not None:
        cmd += ["--header", "Content-Type: application/json", "--post-data", json.dumps(body)]
    proc = exec_in(node, pod, container, *cmd, url, check=False)
    status, headers = 0, {}
    for line in proc.stderr.splitlines():
        line = line.strip()
        if m := re.match(r"HTTP/1\.\d (\d{3})", line):
            status, headers = int(m.group(1)), {}
        elif ":" in line and status:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return status, headers, proc.stdout


def chat(node: RealNode, pod: str, text: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    status, headers, body = wget(node, pod, "http://127.0.0.1:8080/v1/chat/completions",
                                 {"model": "checkout", "messages": [
                                     {"role": "user", "content": text}]})
    return status, headers, (json.loads(body) if body.strip().startswith("{") else {})


def sidecar_status(node: RealNode, pod: str) -> dict[str, Any]:
    """The sidecar's admin /v1/status, asked from the application container (same pod)."""
    status, _, body = wget(node, pod, "http://127.0.0.1:9090/v1/status")
    assert status == 200, f"/v1/status of {pod}: HTTP {status}"
    result: dict[str, Any] = json.loads(body)
    return result


def set_fault(node: RealNode, pod: str, model: str, spec: str) -> None:
    status, _, body = wget(node, pod, "http://fake-llm:8000/_fake/faults",
                           {"model": model, "fault": spec})
    assert status == 200, body


def limit(status: dict[str, Any], kind: str) -> int:
    entry = next(x for x in status["limits"] if x["level"] == "echelon"
                 and x["key"] == "checkout.echelon1" and x["kind"] == kind)
    return int(entry["limit"] if kind == "concurrency" else entry["max_requests"])


def restarts(pod: dict[str, Any]) -> dict[str, int]:
    return {name: s["restartCount"] for name, s in statuses(pod).items()}


def pool_configmap(node: RealNode) -> dict[str, Any]:
    cm = get_json(node, "get", "configmap", "echelon-pool-checkout-pool", "-n", APP_NS)
    config: dict[str, Any] = yaml.safe_load(cm["data"]["config.yaml"])
    config["_version"] = cm["metadata"]["annotations"]["echelon.dev/config-version"]
    return config


# ------------------------------------------------------------------------------ manifests


def app_manifests(node: RealNode) -> str:
    operator_image = node.image("echelon-operator")
    tools = node_image_name(node, "busybox")
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: llm-credentials}}
stringData: {{openai: {API_KEY}, anthropic: {API_KEY}}}
---
# the fake provider, a project tool (`echelon fake-provider`), from the operator image: the
# image that carries the `echelon` CLI. It accepts only the key in the Secret.
apiVersion: apps/v1
kind: Deployment
metadata: {{name: fake-llm}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: fake-llm}}}}
  template:
    metadata: {{labels: {{app: fake-llm}}}}
    spec:
      containers:
      - name: fake
        image: {operator_image}
        imagePullPolicy: Never
        command: [echelon, fake-provider, --host, 0.0.0.0, --port, "8000", --api-key, $(API_KEY)]
        env:
        - name: API_KEY
          valueFrom: {{secretKeyRef: {{name: llm-credentials, key: openai}}}}
        ports: [{{name: http, containerPort: 8000}}]
        readinessProbe: {{tcpSocket: {{port: http}}, periodSeconds: 2}}
        securityContext: {{runAsNonRoot: true, readOnlyRootFilesystem: true,
                           allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: fake-llm}}
spec:
  selector: {{app: fake-llm}}
  ports: [{{name: http, port: 8000, targetPort: http}}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: echelon-global-config
  labels: {{echelon.dev/config: global}}
data:
  config.yaml: |
    models:
      primary:
        provider: openai
        model: primary-model
        base_url: http://fake-llm:8000/v1
        api_key_secret: {{name: llm-credentials, key: openai}}
      backup:
        provider: anthropic
        model: backup-model
        base_url: http://fake-llm:8000
        api_key_secret: {{name: llm-credentials, key: anthropic}}
---
apiVersion: echelon.dev/v1alpha1
kind: TaskGroup
metadata: {{name: checkout}}
spec:
  echelons:
    echelon1: {{models: [primary], priority: 1, concurrencyLimit: {CONCURRENCY}, rpmLimit: {RPM},
               timeout: 20}}
    echelon2: {{models: [backup], priority: 2, concurrencyLimit: 10, rpmLimit: 600, timeout: 20}}
  fallbackConfig:
    strategy: echelon_down
    circuitBreaker: {{failureThreshold: 1, recoveryTime: 3600, halfOpenRequests: 1}}
---
apiVersion: echelon.dev/v1alpha1
kind: PollingPool
metadata: {{name: checkout-pool}}
spec:
  taskGroups: [checkout]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {{echelon.dev/pool: checkout-pool}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: {tools}
        imagePullPolicy: Never
        command: [sleep, "86400"]
        securityContext: {{runAsUser: 65534, runAsNonRoot: true, readOnlyRootFilesystem: true}}
"""


def node_image_name(node: RealNode, name: str) -> str:
    """The name of one of the node's own images (scripts/build-images --node)."""
    archives = node.dir / "node" / "images.imported"
    for line in archives.read_text().splitlines():
        name_file = line.rsplit(".", 1)[0] + ".name"
        if line.endswith(f"/{name}.tar"):
            with open(name_file) as fh:
                return fh.read().strip()
    raise AssertionError(f"no node image {name} in {archives}")


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def release(real_node: RealNode) -> Iterator[RealNode]:
    """The chart installed with the built images (uninstalled at the end if a test did not)."""
    node = real_node
    repo = lambda ref: ref.rsplit(":", 1)  # noqa: E731
    operator_repo, tag = repo(node.image("echelon-operator"))
    sidecar_repo, sidecar_tag = repo(node.image("echelon-sidecar"))
    tests_repo, tests_tag = repo(node_image_name(node, "busybox"))
    started = time.monotonic()
    node.helm("install", RELEASE, str(CHART), "-n", SYSTEM_NS, "--create-namespace",
              "--set", f"image.repository={operator_repo}", "--set", f"image.tag={tag}",
              "--set", "image.pullPolicy=Never",
              "--set", f"sidecar.image.repository={sidecar_repo}",
              "--set", f"sidecar.image.tag={sidecar_tag}",
              "--set", "sidecar.image.pullPolicy=Never",
              "--set", f"tests.image.repository={tests_repo}",
              "--set-string", f"tests.image.tag={tests_tag}",
              "--set", "tests.image.pullPolicy=Never",
              "--set", "operator.pollInterval=2",
              "--wait", "--timeout", "180s")
    node.timings["helm install --wait"] = time.monotonic() - started
    yield node
    if RELEASE in node.helm("list", "-n", SYSTEM_NS, "-q", check=False).stdout.split():
        node.helm("uninstall", RELEASE, "-n", SYSTEM_NS, "--wait", check=False)


@pytest.fixture(scope="module")
def app(release: RealNode) -> RealNode:
    """The application namespace: fake provider, Secret, groups, pool and the labelled app."""
    node = release
    if APP_NS not in kubectl(node, "get", "namespaces", "-o", "name"):
        kubectl(node, "create", "namespace", APP_NS)
        node.cluster.kubectl("wait", "--for=create", "serviceaccount/default", "-n", APP_NS,
                             "--timeout=60s")
        started = time.monotonic()
        kubectl(node, "apply", "-n", APP_NS, "-f", "-", input=app_manifests(node))
        app_pods(node, 2)
        node.timings["app 2/2 Ready after apply"] = time.monotonic() - started
    # the provider's pod too (the app's can be Ready first: its sidecar does not need it)
    wait_for(lambda: [p for p in pods(node, "app=fake-llm") if ready(p)], timeout=120,
             what="the fake provider's pod Ready")
    return node


# ------------------------------------------------------------------------------ 0. images


def image_contents(archive: str) -> tuple[dict[str, Any], dict[str, bytes], set[str]]:
    """An OCI archive's image config, the small /etc files of its top layer, and the
    site-packages it installs (top-level names) with its virtualenv's scripts (bin/...)."""
    config, layers = read_image(archive)
    layer = io.BytesIO(layers[-1])
    etc: dict[str, bytes] = {}
    packages: set[str] = set()
    with tarfile.open(fileobj=layer) as top:
        for member in top.getmembers():
            if member.name in ("etc/passwd", "etc/group"):
                etc[member.name] = top.extractfile(member).read()  # type: ignore[union-attr]
            parts = member.name.split("/")
            if parts[:5] == ["opt", "echelon", "lib", "python3.11", "site-packages"] \
                    and len(parts) > 5:
                packages.add(parts[5])
            if parts[:3] == ["opt", "echelon", "bin"] and len(parts) == 4:
                packages.add(f"bin/{parts[3]}")
    return config, etc, packages


@pytest.mark.parametrize(("image", "uid", "wanted", "unwanted"), [
    ("echelon-sidecar", SIDECAR_UID,
     {"echelon_sidecar", "aiohttp", "pydantic", "uvloop", "bin/echelon-sidecar"},
     {"kopf", "kubernetes", "openai", "rich", "echelon_operator", "echelon_tools",
      "bin/echelon", "bin/echelon-operator"}),
    ("echelon-operator", OPERATOR_UID,
     {"echelon_sidecar", "echelon_operator", "echelon_tools", "kopf", "kubernetes",
      "bin/echelon", "bin/echelon-operator", "bin/echelon-sidecar"},
     {"openai", "rich"}),
])
def test_the_images_hold_what_their_dockerfile_installs_and_run_as_non_root(
        real_node: RealNode, image: str, uid: int, wanted: set[str], unwanted: set[str]
) -> None:
    info = real_node.images[real_node.image(image)]
    config, etc, packages = image_contents(info["archive"])
    assert config["config"]["User"] == f"{uid}:{uid}"
    assert f"echelon:x:{uid}:{uid}:".encode() in etc["etc/passwd"]
    assert wanted <= packages, sorted(packages)
    assert not unwanted & packages, sorted(unwanted & packages)
    sys_size = f"{info['size'] / 1e6:.0f} MB ({info['compressed'] / 1e6:.0f} MB compressed)"
    print(f"{real_node.image(image)}: {sys_size}")


def all_layers(archive: str) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Every file entry of every layer of an OCI archive's image, bottom layer first."""
    for layer in read_image(archive)[1]:
        with tarfile.open(fileobj=io.BytesIO(layer)) as files:
            for member in files.getmembers():
                yield files, member


def trust_store(archive: str) -> tuple[int, int]:
    """The certificates of an image's CA bundle (/etc/ssl/certs/ca-certificates.crt) and the
    hashed names (``<subject hash>.<n>``) of its CA directory."""
    hashed: set[str] = set()
    bundle = b""
    for files, member in all_layers(archive):
        folder, _, name = member.name.rpartition("/")
        if folder == "etc/ssl/certs" and re.fullmatch(r"[0-9a-f]{8}\.\d+", name):
            hashed.add(name)
        elif member.name == "etc/ssl/certs/ca-certificates.crt" and member.isfile():
            bundle = files.extractfile(member).read()  # type: ignore[union-attr]
    return bundle.count(b"-----BEGIN CERTIFICATE-----"), len(hashed)


def test_the_sidecar_image_trusts_the_system_cas_through_their_hashed_directory(
        real_node: RealNode) -> None:
    # sidecar/Dockerfile points OpenSSL at the CA directory instead of the bundle (each CA read
    # when a handshake needs it): the directory must hold every CA the bundle has
    info = real_node.images[real_node.image("echelon-sidecar")]
    config, _, _ = image_contents(info["archive"])
    env = dict(e.split("=", 1) for e in config["config"]["Env"])
    assert (env["SSL_CERT_FILE"], env["SSL_CERT_DIR"]) == ("/dev/null", "/etc/ssl/certs")
    in_bundle, in_directory = trust_store(info["archive"])
    assert in_bundle > 100
    assert in_directory == in_bundle


@pytest.mark.parametrize("image", ["echelon-sidecar", "echelon-operator"])
def test_the_images_carry_the_bytecode_of_the_standard_library(real_node: RealNode,
                                                                image: str) -> None:
    # the python slim images ship none, and with PYTHONDONTWRITEBYTECODE on a read-only root
    # every start would compile what it imports again (the sidecar: ready 0.89 s, not 0.36 s)
    info = real_node.images[real_node.image(image)]
    stdlib = re.compile(r"usr/(local/)?lib/python3\.11/(?!site-packages/|dist-packages/)"
                        r"(.+)/__pycache__/(\w+)\.cpython-311\.pyc")
    compiled = {f"{m[2]}/{m[3]}" for _, member in all_layers(info["archive"])
                if (m := stdlib.fullmatch(member.name))}
    assert {"asyncio/base_events", "email/message", "json/decoder",
            "concurrent/futures/_base"} <= compiled, sorted(compiled)[:20]


# ------------------------------------------------------------------------------ 1. helm


def test_helm_install_runs_the_operator_as_a_pod_under_the_charts_rbac(release: RealNode
                                                                       ) -> None:
    node = release
    (operator,) = wait_for(lambda: [p for p in pods(node, "app.kubernetes.io/component=operator",
                                                    SYSTEM_NS) if ready(p)],
                           timeout=120, what="the operator pod Ready")
    spec = operator["spec"]
    assert spec["serviceAccountName"] == RELEASE
    assert spec["containers"][0]["image"] == node.image("echelon-operator")
    # the image's user, not root, with the chart's read-only root file system
    uid = exec_in(node, operator["metadata"]["name"], spec["containers"][0]["name"], "id", "-u",
                  namespace=SYSTEM_NS).stdout.strip()
    assert uid == str(OPERATOR_UID)
    who = f"--as=system:serviceaccount:{SYSTEM_NS}:{RELEASE}"
    can = lambda *a: node.cluster.kubectl("auth", "can-i", *a, who, check=False  # noqa: E731
                                          ).stdout.strip()
    assert can("patch", "deployments", "-n", APP_NS) == "yes"
    assert can("create", "configmaps", "-n", APP_NS) == "yes"
    assert can("get", "secrets", "-n", APP_NS) == "no"  # credentials never pass the operator
    assert can("delete", "pods", "-n", APP_NS) == "no"
    # `helm test`: a pod resolves the operator's Service by name and gets its /healthz
    result = node.helm("test", RELEASE, "-n", SYSTEM_NS, "--timeout", "120s")
    assert re.search(r"Phase:\s+Succeeded", result.stdout), result.stdout


# ------------------------------------------------------------------------------ 2. provider


def test_the_fake_provider_runs_as_a_pod_and_the_resources_are_applied(app: RealNode) -> None:
    node = app
    (fake,) = pods(node, "app=fake-llm")
    assert ready(fake) and fake["spec"]["containers"][0]["image"] == node.image(
        "echelon-operator")
    for kind, name in (("taskgroup", "checkout"), ("pollingpool", "checkout-pool")):
        obj = wait_for(lambda k=kind, n=name: (o := get_json(node, "get", k, n, "-n", APP_NS))
                       and o.get("status", {}).get("ready") == "True" and o,
                       timeout=60, what=f"{kind} {name} READY")
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    config = pool_configmap(node)
    assert sorted(config["models"]) == ["backup", "primary"]
    assert API_KEY not in json.dumps(config)  # the key stays in the Secret


# ------------------------------------------------------------------------------ 3. sidecar


def test_the_labelled_app_gets_the_sidecar_and_is_served_also_through_a_fallback(
        app: RealNode) -> None:
    node = app
    first, second = app_pods(node, 2)
    name = first["metadata"]["name"]
    sidecar = sidecar_of(first["spec"])
    assert sidecar is not None
    assert sidecar["image"] == node.image("echelon-sidecar")
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    status = statuses(first)
    assert status["echelon-sidecar"]["ready"] and status["echelon-sidecar"]["restartCount"] == 0
    # non-root, read-only root file system: as the running process sees it
    assert exec_in(node, name, "echelon-sidecar", "id", "-u").stdout.strip() == str(SIDECAR_UID)
    touch = exec_in(node, name, "echelon-sidecar", "touch", "/probe", check=False)
    assert touch.returncode != 0 and "Read-only file system" in touch.stderr

    code, headers, body = chat(node, name, "one espresso please")
    assert code == 200, (headers, body)
    assert headers["x-echelon-served-by"] == "primary"
    assert headers["x-echelon-tier"] == "checkout.echelon1"
    assert body["choices"][0]["message"]["content"] == "[fake:primary-model] one espresso please"

    set_fault(node, name, "primary-model", "503")
    code, headers, body = chat(node, name, "and a croissant")
    assert code == 200, (headers, body)
    assert headers["x-echelon-served-by"] == "backup"
    assert headers["x-echelon-tier"] == "checkout.echelon2"
    assert headers["x-echelon-fallbacks"] == "1"
    assert body["choices"][0]["message"]["content"] == "[fake:backup-model] and a croissant"
    # the second pod's sidecar meets the fault too (its circuit opens: see the next test)
    code, headers, _ = chat(node, second["metadata"]["name"], "a latte")
    assert code == 200 and headers["x-echelon-served-by"] == "backup"


# ------------------------------------------------------------------------------ 4. status


def test_circuit_counts_are_polled_from_the_pod_ips_and_a_transition_is_an_event(
        app: RealNode) -> None:
    node = app
    app_list = app_pods(node, 2)
    for pod in app_list:  # (again, in case this test runs alone)
        set_fault(node, pod["metadata"]["name"], "primary-model", "503")
        chat(node, pod["metadata"]["name"], "open your circuit")
    ips = sorted(p["status"]["podIP"] for p in app_list)
    assert all(ip.startswith("10.88.") for ip in ips), ips  # pod IPs on the node's bridge

    def counts() -> dict[str, Any] | None:
        pool = get_json(node, "get", "pollingpool", "checkout-pool", "-n", APP_NS)["status"]
        inst = {i["model"]: i for i in pool.get("instances") or []}
        if pool.get("sidecarsReady") == 2 and inst.get("primary", {}).get("open") == 2:
            return pool
        return None

    pool = wait_for(counts, timeout=60, interval=1, what="2 sidecars polled, primary open on 2")
    assert {i["model"]: i["closed"] for i in pool["instances"]}["backup"] == 2
    table = kubectl(node, "get", "tg,pp", "-n", APP_NS)
    assert re.search(r"taskgroup\.echelon\.dev/checkout\s+2\s+echelon_down\s+1/2\s+True", table), \
        table
    assert re.search(r"pollingpool\.echelon\.dev/checkout-pool\s+checkout\s+round_robin\s+2\s+1/2"
                     r"\s+True", table), table
    group = get_json(node, "get", "taskgroup", "checkout", "-n", APP_NS)["status"]
    assert {i["model"]: i["open"] for i in group["instances"]}["primary"] == 2

    def opened() -> list[dict[str, Any]]:
        return [e for e in get_json(node, "get", "events", "-n", APP_NS)["items"]
                if e.get("reason") == "CircuitOpened"
                and e["involvedObject"]["name"] in ("checkout", "checkout-pool")]

    events = wait_for(opened, timeout=30, what="a CircuitOpened Event")
    assert any("checkout/primary" in e["message"] for e in events), events
    for pod in app_list:
        set_fault(node, pod["metadata"]["name"], "primary-model", "ok")


# ------------------------------------------------------------------------------ 5. reload


def test_a_taskgroup_edit_reaches_the_running_sidecars_without_a_restart(app: RealNode
                                                                         ) -> None:
    node = app
    before = {p["metadata"]["name"]: p for p in app_pods(node, 2)}
    version = pool_configmap(node)["_version"]
    for name in before:
        wait_for(lambda n=name: sidecar_status(node, n)["config_version"] == version,
                 timeout=90, interval=1, what=f"{name} on config {version}")
    started = time.monotonic()
    kubectl(node, "patch", "taskgroup", "checkout", "-n", APP_NS, "--type=merge", "-p",
            json.dumps({"spec": {"echelons": {"echelon2": {"rpmLimit": 300}}}}))
    new = wait_for(lambda: (v := pool_configmap(node)["_version"]) != version and v,
                   timeout=30, what="the ConfigMap re-rendered")
    for name in before:
        wait_for(lambda n=name: sidecar_status(node, n)["config_version"] == new,
                 timeout=120, interval=1, what=f"{name} reloading config {new}")
    node.timings["TaskGroup edit -> sidecars reloaded"] = time.monotonic() - started
    after = {p["metadata"]["name"]: p for p in app_pods(node, 2)}
    assert after.keys() == before.keys(), "the pods were replaced"
    for name, pod in after.items():
        assert restarts(pod) == restarts(before[name]) == {"app": 0, "echelon-sidecar": 0}
    status = sidecar_status(node, next(iter(after)))
    rate = next(x for x in status["limits"] if x["key"] == "checkout.echelon2"
                and x["kind"] == "rate")
    assert rate["max_requests"] == 150  # 300 rpm over 2 sidecars


# ------------------------------------------------------------------------------ 6. scaling


def test_scaling_to_three_re_splits_the_budgets_and_the_shares_sum_to_the_budget(
        app: RealNode) -> None:
    node = app
    kubectl(node, "scale", "deployment", "app", "-n", APP_NS, "--replicas=3")
    names = [p["metadata"]["name"] for p in app_pods(node, 3)]
    wait_for(lambda: pool_configmap(node)["sidecar"].get("pods") == sorted(names), timeout=60,
             what="the ConfigMap listing the 3 pods")
    version = pool_configmap(node)["_version"]

    def statuses() -> dict[str, dict[str, Any]] | None:
        out = {n: sidecar_status(node, n) for n in names}
        return out if all(s["config_version"] == version for s in out.values()) else None

    shares = wait_for(statuses, timeout=120, interval=1, what="every sidecar on the re-split")
    assert sorted(s["slot"] for s in shares.values()) == [0, 1, 2]
    assert all(s["sidecars"] == 3 for s in shares.values())
    concurrency = {n: limit(s, "concurrency") for n, s in shares.items()}
    rpm = {n: limit(s, "rate") for n, s in shares.items()}
    assert sum(concurrency.values()) == CONCURRENCY, concurrency  # 2 + 2 + 1, not 1 + 1 + 1
    assert sorted(concurrency.values()) == [1, 2, 2]
    assert sum(rpm.values()) == RPM and sorted(rpm.values()) == [2, 2, 3], rpm
    # by name: the first pods in name order take the remainder
    first = sorted(names)[0]
    assert concurrency[first] == 2 and rpm[first] == 3


# ------------------------------------------------------------- 6b. native sidecars and Jobs

#: the first release whose kubelet runs native sidecars by default
NATIVE = (1, 29)


def report_cronjob(node: RealNode) -> str:
    """A labelled CronJob (suspended: its Jobs start by hand) whose one container sends ONE
    request at its very start, without any retry, and exits with wget's status."""
    tools = node_image_name(node, "busybox")
    body = json.dumps({"model": "checkout", "messages": [{"role": "user",
                                                          "content": "first thing"}]})
    return f"""
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
  labels: {{echelon.dev/pool: checkout-pool}}
spec:
  schedule: "0 3 * * *"
  suspend: true
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        metadata: {{labels: {{app: report}}}}
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 5
          containers:
          - name: report
            image: {tools}
            imagePullPolicy: Never
            command: [wget, -q, -O, -, -T, "30", --header, "Content-Type: application/json",
                      --post-data, {json.dumps(body)},
                      "http://127.0.0.1:8080/v1/chat/completions"]
            securityContext: {{runAsUser: 65534, runAsNonRoot: true,
                               readOnlyRootFilesystem: true}}
"""


def test_native_sidecars_start_before_the_app_and_a_labelled_job_runs_to_completion(
        app: RealNode) -> None:
    node = app
    node.cluster.require(NATIVE, "native sidecars (an init container with restartPolicy "
                         "Always)")
    # the labelled Deployment's pods run the sidecar as a native sidecar (as many as the
    # Deployment has now: the scaling test before this one left 3)
    replicas = get_json(node, "get", "deployment", "app", "-n", APP_NS)["spec"]["replicas"]
    pod = app_pods(node, replicas)[0]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["echelon-sidecar"]
    assert pod["spec"]["initContainers"][0]["restartPolicy"] == "Always"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["app"]

    kubectl(node, "apply", "-n", APP_NS, "-f", "-", input=report_cronjob(node))
    wait_for(lambda: sidecar_of(get_json(node, "get", "cronjob", "report", "-n", APP_NS)[
        "spec"]["jobTemplate"]["spec"]["template"]["spec"]), timeout=60, interval=1,
             what="the sidecar in the CronJob's Job template")
    started = time.monotonic()
    kubectl(node, "create", "job", "first-request", "--from=cronjob/report", "-n", APP_NS)

    def finished() -> dict[str, Any] | None:
        job = get_json(node, "get", "job", "first-request", "-n", APP_NS)
        conditions = {c["type"]: c["status"] for c in job.get("status", {}).get("conditions")
                      or []}
        if conditions.get("Failed") == "True":
            logs = kubectl(node, "logs", "-n", APP_NS, "job/first-request", "-c", "report",
                           check=False)
            pytest.fail(f"the Job failed: its one request at start-up was not served: {logs}")
        return job if conditions.get("Complete") == "True" else None

    wait_for(finished, timeout=180, interval=1, what="the labelled Job Complete")
    node.timings["Job with a native sidecar: create -> Complete"] = time.monotonic() - started
    (job_pod,) = pods(node, "job-name=first-request")
    assert job_pod["status"]["phase"] == "Succeeded"
    # the first request, sent the moment the app started, was served (never refused)
    logs = kubectl(node, "logs", "-n", APP_NS, job_pod["metadata"]["name"], "-c", "report")
    assert json.loads(logs)["choices"][0]["message"]["content"]
    # and the kubelet stopped the sidecar once the app was done
    sidecar = statuses(job_pod)["echelon-sidecar"]
    assert "terminated" in sidecar["state"], sidecar
    # a finished Job's pod holds no budget share
    wait_for(lambda: "first-request" not in " ".join(pool_configmap(node)["sidecar"]
                                                     .get("pods") or []),
             timeout=60, interval=1, what="the Job's pod out of the budget split")
    kubectl(node, "delete", "cronjob", "report", "-n", APP_NS, "--cascade=foreground",
            "--wait=true")


# ------------------------------------------------------------------------------ 7. lifecycle


def test_a_killed_sidecar_is_restarted_by_the_kubelet_and_serves_again(app: RealNode) -> None:
    node = app
    pods_now = app_pods(node, len(pods(node, "app=app")))
    pod = pods_now[0]
    name = pod["metadata"]["name"]
    status = statuses(pod)
    container_id = status["echelon-sidecar"]["containerID"].split("://", 1)[1]
    node.ctr("tasks", "kill", "--signal", "SIGKILL", container_id)

    def restarted() -> dict[str, Any] | None:
        p = get_json(node, "get", "pod", name, "-n", APP_NS)
        counts = restarts(p)
        return p if counts["echelon-sidecar"] >= 1 and ready(p) else None

    after = wait_for(restarted, timeout=120, interval=1, what="the sidecar restarted and Ready")
    assert restarts(after) == {"app": 0, "echelon-sidecar": 1}
    last = statuses(after)["echelon-sidecar"]
    assert last["lastState"]["terminated"]["exitCode"] == 137  # SIGKILL
    code, headers, _ = chat(node, name, "still there?")
    assert code == 200 and headers["x-echelon-served-by"] in ("primary", "backup")


def test_removing_the_label_removes_the_sidecar_through_a_rollout(app: RealNode) -> None:
    node = app
    count = len(pods(node, "app=app"))
    old = {p["metadata"]["name"] for p in pods(node, "app=app")}
    kubectl(node, "label", "deployment", "app", "-n", APP_NS, "echelon.dev/pool-")
    fresh = app_pods(node, count, sidecar=False)
    assert not old & {p["metadata"]["name"] for p in fresh}, "no rollout happened"
    dep = get_json(node, "get", "deployment", "app", "-n", APP_NS)
    assert [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]] == ["app"]
    assert "echelon.dev/injected-pool" not in dep["metadata"].get("annotations", {})


def test_helm_uninstall_and_deleting_the_namespaces_leave_no_echelon_object(app: RealNode
                                                                            ) -> None:
    node = app
    node.helm("uninstall", RELEASE, "-n", SYSTEM_NS, "--wait", "--timeout", "120s")
    for ns in (APP_NS, SYSTEM_NS):
        kubectl(node, "delete", "namespace", ns, "--wait=true", "--timeout=180s", timeout=200)
    # the chart keeps its CRDs on uninstall (crds.keep, the default: deleting a CRD deletes
    # every TaskGroup and PollingPool); none is left, and the documented command removes them
    crds = get_json(node, "get", "crd", "-l", "app.kubernetes.io/part-of=echelon")["items"]
    assert sorted(c["metadata"]["name"] for c in crds) == ["pollingpools.echelon.dev",
                                                           "taskgroups.echelon.dev"]
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in crds)
    for kind in ("taskgroups", "pollingpools"):
        assert get_json(node, "get", kind, "-A")["items"] == []
    kubectl(node, "delete", "crd", "-l", "app.kubernetes.io/part-of=echelon", "--wait=true",
            timeout=120)
    left = leftovers(node.cluster)
    assert left == [], left


def leftovers(cluster: Cluster) -> list[str]:
    """Every object in the cluster that is Echelon's: by label, by name, by manager."""
    kinds = ("all,configmaps,secrets,serviceaccounts,roles,rolebindings,events,"
             "poddisruptionbudgets")
    cluster_kinds = "clusterroles,clusterrolebindings,customresourcedefinitions"
    out = []
    for args in (["get", kinds, "-A"], ["get", cluster_kinds]):
        try:
            items = cluster.kubectl_json(*args)["items"]
        except KubectlError as exc:
            return [str(exc)]
        for obj in items:
            meta = obj["metadata"]
            labels = meta.get("labels") or {}
            text = json.dumps(meta)
            if (labels.get("app.kubernetes.io/part-of") == "echelon"
                    or labels.get("app.kubernetes.io/managed-by") == "echelon-operator"
                    or "echelon" in meta["name"] or "echelon.dev" in text):
                out.append(f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}")
    return sorted(out)
