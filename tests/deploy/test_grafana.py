"""deploy/grafana: provisioning points at the dashboards, and the dashboards are current and sound."""

from __future__ import annotations

import importlib.util
import json

from tests.deploy.conftest import DEPLOY, load_yaml

GRAFANA = DEPLOY / "grafana"


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", GRAFANA / "build_dashboards.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dashboards_are_generated_from_build_dashboards():
    rendered = _builder().render()
    on_disk = {
        p.name: p.read_text(encoding="utf-8") for p in (GRAFANA / "dashboards").glob("*.json")
    }
    assert on_disk == rendered, "stale dashboards: run python deploy/grafana/build_dashboards.py"


def test_every_panel_queries_the_provisioned_datasource():
    (datasources,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (prometheus,) = datasources["datasources"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090", "the compose service name"
    uids = set()
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        assert board["uid"] not in uids, f"{path.name}: duplicate uid"
        uids.add(board["uid"])
        ids = set()
        for panel in board["panels"]:
            assert panel["id"] not in ids, f"{path.name}: duplicate panel id"
            ids.add(panel["id"])
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == prometheus["uid"], (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == prometheus["uid"]
                assert target["expr"].strip()
    assert {
        "citycases-flow",
        "citycases-backlog-lag",
        "citycases-supervision",
        "citycases-scores",
    } <= uids


def test_dashboard_provider_reads_the_mounted_folder():
    (providers,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "citycases.yml")
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    compose = (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8")
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in compose
