"""The cluster-mode manifests validate against their published schemas, offline.

Schemas are vendored in ``tests/schemas/`` (origin and version in its README): the Compose
Specification's JSON schema, and the Kubernetes v1.34 strict JSON schemas of the kinds used here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft201909Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMAS = ROOT / "tests" / "schemas"
K8S_SCHEMA_FILES = {
    ("v1", "Namespace"): "namespace-v1.json",
    ("v1", "ConfigMap"): "configmap-v1.json",
    ("v1", "Secret"): "secret-v1.json",
    ("v1", "Service"): "service-v1.json",
    ("apps/v1", "Deployment"): "deployment-apps-v1.json",
}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def k8s_registry() -> Registry:
    resources = []
    for path in (SCHEMAS / "kubernetes").glob("*.json"):
        schema = load(path)
        resources.append((schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012)))
    return Registry().with_resources(resources)


def k8s_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                docs.append((f"{path.name}#{i}", doc))
    return docs


def errors_of(validator, document) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(document)]


def test_compose_file_is_valid_against_the_compose_spec():
    schema = load(SCHEMAS / "compose-spec.json")
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert errors_of(Draft201909Validator(schema), compose) == []
    assert compose["services"]["worker"]["deploy"]["replicas"] == 2
    assert compose["services"]["grafana"]["environment"]["GF_INSTALL_PLUGINS"] == "grafana-clickhouse-datasource"


def test_compose_schema_rejects_a_broken_file():
    schema = load(SCHEMAS / "compose-spec.json")
    assert errors_of(Draft201909Validator(schema), {"services": {"w": {"image": "x", "replicas": "two"}}})


@pytest.mark.parametrize("name,document", k8s_documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_kubernetes_manifest_is_valid_against_its_schema(name, document):
    key = (document.get("apiVersion"), document.get("kind"))
    assert key in K8S_SCHEMA_FILES, f"{name}: no vendored schema for {key}"
    schema = load(SCHEMAS / "kubernetes" / K8S_SCHEMA_FILES[key])
    validator = Draft202012Validator(schema, registry=k8s_registry())
    assert errors_of(validator, document) == []


def test_the_kubernetes_manifests_fit_the_worker_and_each_other():
    """What the manifests say agrees with the code and with one another: every variable they set
    is a setting of the hub, the probes ask the paths the worker serves, the Service reaches the
    container's named port, which is the port the worker listens on, and the workers read the
    ConfigMap and the Secret the manifests define."""
    from hub.api.server import build_app, ApiContext
    from hub.settings import describe, load_settings

    documents = {doc["kind"]: doc for _, doc in k8s_documents()}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service"} <= set(documents)
    namespace = documents["Namespace"]["metadata"]["name"]
    assert all(doc["metadata"].get("namespace", namespace) == namespace for doc in documents.values())
    settings_names = {env for env, _, _ in describe()}
    config, secret = documents["ConfigMap"], documents["Secret"]
    assert set(config["data"]) <= settings_names, set(config["data"]) - settings_names
    assert set(secret["stringData"]) <= settings_names, set(secret["stringData"]) - settings_names
    # the secrets are in the Secret, not in the ConfigMap
    assert not {"HUB_API_TOKEN", "HUB_INGEST_TOKEN", "HUB_CLICKHOUSE_URL"} & set(config["data"])

    deployment = documents["Deployment"]
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert documents["Service"]["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    [container] = pod["spec"]["containers"]
    refs = {(k, v["name"]) for source in container["envFrom"] for k, v in source.items()}
    assert refs == {("configMapRef", config["metadata"]["name"]), ("secretRef", secret["metadata"]["name"])}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    settings = load_settings(config["data"])
    assert ports[documents["Service"]["spec"]["ports"][0]["targetPort"]] == settings.http_port
    assert settings.http_host == "0.0.0.0"  # reachable from the Service, not loopback only

    served = {r.resource.canonical for r in build_app(ApiContext(store=None, extra={"settings": settings,
                                                                                    "registry": None})).router.routes()
              if r.method == "GET"}
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] in served and get["port"] in ports, (probe, get)
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"  # the one that fails while a sink is stuck
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert deployment["spec"]["replicas"] <= int(config["data"]["HUB_PARTITIONS"])  # no idle worker


def test_kubernetes_schema_rejects_a_broken_deployment():
    schema = load(SCHEMAS / "kubernetes" / "deployment-apps-v1.json")
    validator = Draft202012Validator(schema, registry=k8s_registry())
    broken = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
              "spec": {"replicas": "two", "selector": {}, "template": {"spec": {"containers": [{"nam": "w"}]}}}}
    assert errors_of(validator, broken)


def test_grafana_datasource_provisioning_uses_the_read_only_user():
    provisioning = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/clickhouse.yaml").read_text())
    ds = provisioning["datasources"][0]
    assert ds["type"] == "grafana-clickhouse-datasource"
    assert ds["jsonData"]["username"] == "grafana_reader" and ds["jsonData"]["host"] == "clickhouse"
    assert "<readonly>1</readonly>" in (DEPLOY / "clickhouse/users.d/grafana_reader.xml").read_text()
