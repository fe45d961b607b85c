"""deploy/k8s: the manifests parse and agree with the code (ports, commands, settings, topics)."""

from __future__ import annotations

import importlib

import pytest

from shared.topics import DEFAULT_PARTITIONS, SERVICES, topic_partitions
from tests.deploy.conftest import DEPLOY, load_yaml, settings_env_names
from tests.deploy.promql import assert_metrics_exist, known_metric_names

K8S = DEPLOY / "k8s"


def default_port(service: str) -> int:
    settings = importlib.import_module(f"services.{service}.settings").Settings
    return int(settings.model_fields["http_port"].default)


@pytest.fixture(scope="module")
def resources() -> dict[tuple[str, str], dict]:
    (kustomization,) = load_yaml(K8S / "kustomization.yaml")
    out = {}
    for name in kustomization["resources"]:
        path = K8S / name
        assert path.exists(), f"kustomization.yaml lists missing {name}"
        for doc in load_yaml(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in out, f"{key} defined twice"
            out[key] = doc
    return out


def test_kustomization_has_every_piece(resources):
    kinds = {kind for kind, _ in resources}
    assert {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
    } <= kinds
    for service in SERVICES:
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            assert (kind, service) in resources, f"no {kind} {service}"


def test_deployments_run_each_service_with_probes_limits_and_settings(resources):
    config_map = resources[("ConfigMap", "citycases-settings")]
    secret, database = load_yaml(K8S / "secret.example.yaml")
    for service in SERVICES:
        deployment = resources[("Deployment", service)]
        pod = deployment["spec"]["template"]
        assert (
            deployment["spec"]["selector"]["matchLabels"].items()
            <= pod["metadata"]["labels"].items()
        )
        (container,) = pod["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"services.{service}"]
        port = default_port(service)
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["HTTP_PORT"] == str(port)
        # Each service connects with its own roles: runtime for work, owner for migrations.
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e
        }
        assert refs == {
            "DATABASE_URL": {"name": database["metadata"]["name"], "key": f"{service}-runtime-url"},
            "DATABASE_MIGRATION_URL": {
                "name": database["metadata"]["name"],
                "key": f"{service}-owner-url",
            },
        }
        assert f"//{service}_runtime:" in database["stringData"][f"{service}-runtime-url"]
        assert f"//{service}_owner:" in database["stringData"][f"{service}-owner-url"]
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{service} {kind}"
        sources = {next(iter(s)): next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {
            "configMapRef": config_map["metadata"]["name"],
            "secretRef": secret["metadata"]["name"],
        }
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        svc = resources[("Service", service)]
        assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert svc["spec"]["ports"][0]["port"] == port


def test_configmap_and_secret_hold_only_real_settings(resources):
    known = settings_env_names()
    config_map = resources[("ConfigMap", "citycases-settings")]
    secret, _database = load_yaml(K8S / "secret.example.yaml")
    assert set(config_map["data"]) <= known, sorted(set(config_map["data"]) - known)
    assert set(secret["stringData"]) <= known, sorted(set(secret["stringData"]) - known)
    assert {"KAFKA_SASL_PASSWORD"} <= set(secret["stringData"])
    assert not {"DATABASE_URL", "KAFKA_SASL_PASSWORD"} & set(config_map["data"]), (
        "secrets in a ConfigMap"
    )


def test_autoscaling_on_consumer_lag_stays_within_the_partitions(resources):
    (adapter,) = load_yaml(K8S / "prometheus-adapter-values.yaml")
    external = {rule["name"]["as"]: rule for rule in adapter["rules"]["external"]}
    assert_metrics_exist(
        {f"adapter {name}": rule["seriesQuery"] for name, rule in external.items()},
        known_metric_names(),
    )
    assert "consumer_lag_messages" in external["citycases_consumer_lag"]["seriesQuery"]
    for service in SERVICES:
        hpa = resources[("HorizontalPodAutoscaler", service)]["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": service,
        }
        # a consumer group gives each partition to one member: more replicas idle
        assert hpa["minReplicas"] <= hpa["maxReplicas"] <= DEFAULT_PARTITIONS
        (lag,) = [m["external"] for m in hpa["metrics"] if m["type"] == "External"]
        assert lag["metric"]["name"] in external
        assert lag["metric"]["selector"]["matchLabels"] == {"service": service}


def test_strimzi_topics_match_the_registry():
    docs = load_yaml(K8S / "strimzi" / "topics.yaml")
    topics = {
        d["spec"]["topicName"]: d["spec"]["partitions"] for d in docs if d["kind"] == "KafkaTopic"
    }
    assert topics == topic_partitions()
    (user,) = [d for d in docs if d["kind"] == "KafkaUser"]
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    acls = user["spec"]["authorization"]["acls"]
    granted = {a["resource"].get("name") for a in acls}
    assert set(topics) <= granted
    # The inbox's pruner reads every topic's retention (shared/inbox.py).
    for acl in acls:
        if acl["resource"]["type"] == "topic":
            assert "DescribeConfigs" in acl["operations"], acl["resource"]["name"]


def test_prometheus_operator_resources_match_the_compose_setup():
    (rule,) = load_yaml(K8S / "monitoring" / "prometheusrule.yaml")
    (alerts,) = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    assert rule["spec"]["groups"] == alerts["groups"], (
        "monitoring/prometheusrule.yaml is stale: regenerate it from alerts.yml (command in its header)"
    )
    (monitor,) = load_yaml(K8S / "monitoring" / "podmonitor.yaml")
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    assert {"targetLabel": "job", "replacement": "citycases"} in endpoint["relabelings"]
