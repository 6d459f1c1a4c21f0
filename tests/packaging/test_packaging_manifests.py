"""The Dockerfile and the Kubernetes manifests: linted, validated, and consistent with the server.

No Docker engine or cluster runs here, so these checks stand in for `docker build` and `kubectl apply`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from firstspike.server.settings import ServerSettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: it comes with the dev extra (pip install -e '.[dev]')")
    return str(path)


def _load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


def _server_container() -> dict:
    (container,) = _load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return container


def test_hadolint_passes_without_warnings():
    result = subprocess.run([_tool("hadolint"), "Dockerfile"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_hadolint_would_flag_a_bad_dockerfile(tmp_path):
    # The linter really runs: an unpinned base image and a root user are reported.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install fastapi\n")
    result = subprocess.run([_tool("hadolint"), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3006" in result.stdout or "DL3013" in result.stdout


def test_kubernetes_manifests_validate_strictly():
    assert {p.name for p in MANIFESTS} >= {"deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml"}
    result = subprocess.run([_tool("kubernetes-validate"), "--strict", *map(str, MANIFESTS)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(MANIFESTS), result.stdout


def test_kubernetes_validate_rejects_a_misspelt_field(tmp_path):
    broken = (K8S / "deployment.yaml").read_text().replace("readinessProbe:", "readynessProbe:")
    (tmp_path / "deployment.yaml").write_text(broken)
    result = subprocess.run([_tool("kubernetes-validate"), "--strict", str(tmp_path / "deployment.yaml")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0


def test_every_firstspike_env_var_is_a_server_setting():
    known = {f"FIRSTSPIKE_{name.upper()}" for name in ServerSettings.model_fields}
    dockerfile_vars = set(re.findall(r"\b(FIRSTSPIKE_[A-Z_]+)=", (REPO / "Dockerfile").read_text()))
    deployment_vars = {e["name"] for e in _server_container()["env"]}
    assert dockerfile_vars and deployment_vars
    assert dockerfile_vars - known == set()
    assert deployment_vars - known == set()


def test_image_binds_all_interfaces_and_runs_as_non_root():
    text = (REPO / "Dockerfile").read_text()
    assert "FIRSTSPIKE_HOST=0.0.0.0" in text
    stages = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert len(stages) >= 2 and all(s.startswith("python:3.11-slim") for s in stages)
    user = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, flags=re.M)
    pod = _load("deployment.yaml")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(user[-1].split(":")[0])


def test_probes_point_at_the_server_health_endpoints():
    container = _server_container()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    port = {e["name"]: e["value"] for e in _server_container()["env"] if "value" in e}["FIRSTSPIKE_PORT"]
    assert container["ports"][0]["containerPort"] == int(port)


def test_grace_period_covers_prestop_and_server_drain():
    pod = _load("deployment.yaml")["spec"]["template"]["spec"]
    container = _server_container()
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop_s = float(command[1])
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    drain_s = float(env.get("FIRSTSPIKE_GRACE_PERIOD_S", ServerSettings().grace_period_s))
    # SIGTERM comes after the preStop sleep; the server then drains for up to grace_period_s and needs a
    # moment to send final decisions and exit before the kubelet's SIGKILL.
    assert pod["terminationGracePeriodSeconds"] >= pre_stop_s + drain_s + 3


def test_service_hpa_and_pdb_select_the_deployment():
    labels = _load("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    for name in ("service.yaml", "pdb.yaml"):
        spec = _load(name)["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        assert selector.items() <= labels.items(), name
    hpa = _load("hpa.yaml")["spec"]
    assert hpa["scaleTargetRef"]["name"] == _load("deployment.yaml")["metadata"]["name"]
    assert hpa["minReplicas"] >= 2  # with maxUnavailable 1 in the PDB, a drain never empties the service
