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


def test_every_kind_the_issue_names_is_there():
    kinds = {doc["kind"] for _, doc in k8s_documents()}
    assert kinds == {"Namespace", "ConfigMap", "Secret", "Deployment", "Service"}
    deployment = next(doc for _, doc in k8s_documents() if doc["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["resources"]["limits"] and container["resources"]["requests"]


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
