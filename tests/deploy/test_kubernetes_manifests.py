"""The Kubernetes manifests (deploy/kubernetes/), checked offline: valid against the API's schemas
(strict: an unknown or misplaced field fails), and consistent with the worker and each other, so
that owner routing, probes, scrapes and settings work on a cluster as they do here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from streams.settings import Settings
from streams.web.operator_auth import OPEN
from streams.web.web_security import ANY_HOST
from tests.promql import ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes" / "base"
EXAMPLE = ROOT / "deploy" / "kubernetes" / "example"
SCRAPE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
# The oldest release the manifests are for (the PodDisruptionBudget's unhealthyPodEvictionPolicy is
# on by default from 1.27), and the newest the validator knows.
VERSIONS = ["1.28.0", kubernetes_validate.latest_version()]
POD = {"POD_NAME": "optouts-1", "POD_NAMESPACE": "sms"}


def documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def manifests() -> list[Path]:
    return sorted(path for path in KUBERNETES.glob("*.yaml") if path.name != "kustomization.yaml")


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for path in manifests() for doc in documents(path)}


def worker_set() -> dict[str, Any]:
    return resources()[("StatefulSet", "optouts")]


def container() -> dict[str, Any]:
    [worker] = worker_set()["spec"]["template"]["spec"]["containers"]
    return worker


def pod_env() -> dict[str, str]:
    """The worker's environment in pod optouts-1: the ConfigMap's, the Secret's, then its own with
    Kubernetes' $(VAR) references expanded."""
    found = resources()
    env: dict[str, str] = {}
    for source in container()["envFrom"]:
        if "configMapRef" in source:
            env.update(found[("ConfigMap", source["configMapRef"]["name"])]["data"])
        else:
            env.update(found[("Secret", source["secretRef"]["name"])]["stringData"])
    for variable in container()["env"]:
        if "valueFrom" in variable:
            env[variable["name"]] = POD[variable["name"]]
            continue
        value = variable["value"]
        for name, known in env.items():
            value = value.replace(f"$({name})", known)
        env[variable["name"]] = value
    return env


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", manifests(), ids=lambda path: path.name)
def test_every_manifest_is_valid_for_kubernetes(path: Path, version: str) -> None:
    for document in documents(path):
        kubernetes_validate.validate(document, version, strict=True)


def test_kustomize_applies_every_manifest_but_the_secret() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())

    assert sorted(kustomization["resources"]) == sorted(
        path.name for path in manifests() if path.name != "secret.yaml"
    )
    [image] = kustomization["images"]
    assert image["name"] == container()["image"]


def test_every_variable_the_pod_gets_is_a_setting_and_they_make_valid_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = pod_env()
    settings_env = {name: value for name, value in env.items() if name.startswith("OPTOUTS_")}
    unknown = {
        name for name in settings_env if name.removeprefix("OPTOUTS_").lower() not in Settings.model_fields
    }
    assert not unknown, f"not settings (a typo is ignored silently by the worker): {unknown}"
    assert set(env) - set(settings_env) == set(POD)

    for name in [name for name in os.environ if name.startswith("OPTOUTS_")]:
        monkeypatch.delenv(name)
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()

    assert settings.web_host == "optouts-1.optouts.sms.svc.cluster.local"
    assert settings.brokers and settings.public_base_url
    assert settings.replication_factor >= 3 and settings.standby_replicas >= 1


def test_each_worker_advertises_the_name_the_headless_service_gives_its_pod() -> None:
    found = resources()
    service = found[("Service", worker_set()["spec"]["serviceName"])]
    pod_labels = worker_set()["spec"]["template"]["metadata"]["labels"]

    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True  # an owner that is not ready still answers
    assert service["spec"]["selector"].items() <= pod_labels.items()
    # The StatefulSet's pods are <pod>.<serviceName>.<namespace>.svc.<cluster domain>.
    assert (
        pod_env()["OPTOUTS_WEB_HOST"]
        == f"{POD['POD_NAME']}.{service['metadata']['name']}.sms.svc.cluster.local"
    )


def test_the_api_service_reaches_the_workers_under_a_host_they_answer() -> None:
    api = resources()[("Service", "optouts-api")]
    allowed = pod_env()["OPTOUTS_ALLOWED_HOSTS"].split(",")

    assert api["spec"]["selector"].items() <= worker_set()["spec"]["template"]["metadata"]["labels"].items()
    assert {"optouts-api", "optouts-api.sms.svc", "optouts-api.sms.svc.cluster.local"} <= set(allowed)


def test_the_port_is_the_web_port_everywhere() -> None:
    web_port = int(pod_env()["OPTOUTS_WEB_PORT"])
    [port] = container()["ports"]
    annotations = worker_set()["spec"]["template"]["metadata"]["annotations"]

    assert (port["name"], port["containerPort"]) == ("http", web_port)
    assert int(annotations["prometheus.io/port"]) == web_port
    for service in (doc for (kind, _), doc in resources().items() if kind == "Service"):
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_probes_ask_health_and_ready_which_answer_without_a_token_to_any_host() -> None:
    probes = {
        kind: container()[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }

    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startupProbe": "/health",
        "livenessProbe": "/health",
        "readinessProbe": "/ready",
    }
    # The kubelet sends no token, and names the pod's IP as Host.
    assert all(probe["path"] in ANY_HOST and probe["path"] in OPEN for probe in probes.values())


def test_each_pod_keeps_its_tables_on_a_volume_of_its_own() -> None:
    [claim] = worker_set()["spec"]["volumeClaimTemplates"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container()["volumeMounts"]}

    assert mounts[claim["metadata"]["name"]] == pod_env()["OPTOUTS_DATA_DIR"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_prometheus_scrapes_the_workers_metrics_under_the_job_the_alerts_select() -> None:
    annotations = worker_set()["spec"]["template"]["metadata"]["annotations"]
    pod_labels = worker_set()["spec"]["template"]["metadata"]["labels"]
    [job] = yaml.safe_load(SCRAPE_CONFIG.read_text())["scrape_configs"]
    keep = {
        tuple(rule["source_labels"]): rule["regex"]
        for rule in job["relabel_configs"]
        if rule.get("action") == "keep"
    }

    assert (annotations["prometheus.io/scrape"], annotations["prometheus.io/path"]) == ("true", "/metrics")
    assert "/metrics" in ANY_HOST and "/metrics" in OPEN
    assert job["job_name"] == "sms-optouts"
    assert (
        keep[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)] == pod_labels["app.kubernetes.io/name"]
    )


def test_the_disruption_budget_lets_one_worker_go_at_a_time() -> None:
    budget = resources()[("PodDisruptionBudget", "optouts")]
    pod_labels = worker_set()["spec"]["template"]["metadata"]["labels"]

    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert worker_set()["spec"]["replicas"] >= 3  # with a standby each, one can go


def test_the_example_deployment_builds_valid_manifests_with_its_namespace_image_and_settings() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl: its built-in kustomize builds the example deployment")
    built = subprocess.run(
        [kubectl, "kustomize", str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert built.returncode == 0, built.stderr
    example = yaml.safe_load((EXAMPLE / "kustomization.yaml").read_text())
    [image] = example["images"]
    found = {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(built.stdout)}

    assert set(found) == {key for key in resources() if key[0] != "Secret"}
    for document in found.values():
        kubernetes_validate.validate(document, VERSIONS[0], strict=True)
        assert document["metadata"]["namespace"] == example["namespace"]
    [worker] = found[("StatefulSet", "optouts")]["spec"]["template"]["spec"]["containers"]
    assert worker["image"] == f"{image['newName']}:{image['newTag']}"
    settings = found[("ConfigMap", "optouts-settings")]["data"]
    assert "example.net" in settings["OPTOUTS_KAFKA_BROKERS"]
    assert (
        settings["OPTOUTS_PARTITIONS"]
        == resources()[("ConfigMap", "optouts-settings")]["data"]["OPTOUTS_PARTITIONS"]
    )
