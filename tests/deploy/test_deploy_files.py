"""The deployment files: the Kubernetes manifests validate against the API's schemas offline,
and both they and the compose file hold what operations rely on (probes, a non-root read-only
container, secrets as files, migrations run once, only real setting names)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from config.settings import SECRETS_DIR_ENV, Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.30.0"
SETTING_NAMES = {
    field.validation_alias if isinstance(field.validation_alias, str)
    else "NOTICEBOT_DATABASE_URL" for field in Settings.model_fields.values()
} | {SECRETS_DIR_ENV, "PROMETHEUS_MULTIPROC_DIR"}
SECRET_NAMES = {"NOTICEBOT_DATABASE_URL", "NOTICEBOT_ENCRYPTION_KEYS", "SLACK_BOT_TOKEN",
                "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "NOTICEBOT_USNCB_WEBHOOK_SECRET"}


def manifests() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def deployments() -> list[dict[str, Any]]:
    return [d for d in manifests().values() if d["kind"] == "Deployment"]


def test_every_manifest_validates_offline_against_the_kubernetes_schemas() -> None:
    docs = manifests()
    assert {"ConfigMap/noticebot", "Secret/noticebot", "Job/noticebot-migrate",
            "Deployment/noticebot-serve", "Deployment/noticebot-worker", "Service/noticebot",
            "HorizontalPodAutoscaler/noticebot-serve",
            "PodDisruptionBudget/noticebot-serve"} <= set(docs)
    for doc in docs.values():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises if invalid
    bad = dict(docs["Deployment/noticebot-serve"], spce={})
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_migration_job() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "migrate-job.yaml"}
    assert set(listed) == on_disk


@pytest.mark.parametrize("name", ["noticebot-serve", "noticebot-worker"])
def test_deployments_probe_live_and_ready_and_run_locked_down(name: str) -> None:
    doc = manifests()[f"Deployment/{name}"]
    pod = doc["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    annotations = doc["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) in ports.values()
    if name == "noticebot-worker":
        command = container["command"]
        assert int(command[command.index("--metrics-port") + 1]) == ports["metrics"]
    # Secrets arrive as files, never as environment variables.
    assert "env" not in container
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "noticebot"
    config = manifests()["ConfigMap/noticebot"]["data"]
    assert mounts["secrets"] == config[SECRETS_DIR_ENV]
    assert mounts["tmp"] == "/tmp" and config["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")


def test_config_and_secret_hold_only_real_settings() -> None:
    docs = manifests()
    config = docs["ConfigMap/noticebot"]["data"]
    secret = docs["Secret/noticebot"]["stringData"]
    assert set(config) <= SETTING_NAMES, set(config) - SETTING_NAMES
    assert set(secret) <= SECRET_NAMES and not set(config) & SECRET_NAMES
    assert all("CHANGEME" in value for value in secret.values())  # placeholders, refused


def test_service_hpa_and_pdb_point_at_serve() -> None:
    docs = manifests()
    serve = docs["Deployment/noticebot-serve"]
    labels = serve["spec"]["template"]["metadata"]["labels"]
    service = docs["Service/noticebot"]["spec"]
    assert service["selector"].items() <= labels.items()
    port_names = {p["name"] for p in serve["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["ports"]} <= port_names
    target = docs["HorizontalPodAutoscaler/noticebot-serve"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "noticebot-serve")
    pdb = docs["PodDisruptionBudget/noticebot-serve"]["spec"]["selector"]["matchLabels"]
    assert pdb.items() <= labels.items()


def test_the_migration_job_runs_db_upgrade_once() -> None:
    job = manifests()["Job/noticebot-migrate"]["spec"]
    (container,) = job["template"]["spec"]["containers"]
    assert container["command"] == ["noticebot", "db", "upgrade"]
    assert job["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    assert job["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_compose_runs_postgres_a_one_shot_migration_serve_and_worker() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text("utf-8"))
    services = compose["services"]
    assert set(services) >= {"db", "migrate", "serve", "worker"}
    assert services["migrate"]["command"] == ["noticebot", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name, port in (("serve", 3000), ("worker", 9300)):
        service = services[name]
        assert service["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}}
        assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert set(service["environment"]) <= SETTING_NAMES, \
            set(service["environment"]) - SETTING_NAMES
    assert "9300" in " ".join(services["worker"]["command"])
