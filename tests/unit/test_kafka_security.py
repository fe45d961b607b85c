"""Kafka SASL/TLS is configuration: the settings become the right client options and a TLS
context that really handshakes, a half-set configuration stops the service at start naming
the setting, and deploy/ sets them consistently.

The certificates are a throwaway CA made by ``trustme`` for each run.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import trustme
import yaml
from faststream.security import SASLScram512
from pydantic import ValidationError

from shared.kafka import broker_security, client_options
from shared.settings import KafkaSettings, ServiceSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a broker certificate for localhost, a client certificate, and a stranger CA."""
    where = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("intake.citycases.svc")
    files = {
        "ca": where / "ca.crt",
        "server": where / "server.pem",
        "client_cert": where / "client.crt",
        "client_key": where / "client.key",
        "stranger_ca": where / "stranger.crt",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(files["server"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert"]))
    client.private_key_pem.write_to_path(str(files["client_key"]))
    trustme.CA().cert_pem.write_to_path(str(files["stranger_ca"]))
    return files


def test_sasl_ssl_settings_become_aiokafka_options(pki: dict[str, Path]) -> None:
    cfg = KafkaSettings(
        bootstrap_servers="kafka-0:9093,kafka-1:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="intake",
        sasl_password="s3cret",
        ssl_cafile=str(pki["ca"]),
    )
    options = client_options(cfg)
    context = options.pop("ssl_context")
    assert options == {
        "bootstrap_servers": "kafka-0:9093,kafka-1:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "intake",
        "sasl_plain_password": "s3cret",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert any("Testing CA" in str(c.get("subject")) for c in context.get_ca_certs())
    security = broker_security(cfg)
    assert isinstance(security, SASLScram512) and security.use_ssl
    assert security.ssl_context is not None


def test_plaintext_has_no_tls_and_no_sasl() -> None:
    cfg = KafkaSettings(bootstrap_servers="kafka:9092", security_protocol="PLAINTEXT")
    options = client_options(cfg)
    assert options == {"bootstrap_servers": "kafka:9092", "security_protocol": "PLAINTEXT"}
    assert broker_security(cfg) is None


def test_the_environment_is_read_with_the_kafka_prefix(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(pki["ca"]))
    monkeypatch.setenv("KAFKA_SSL_CERTFILE", str(pki["client_cert"]))
    monkeypatch.setenv("KAFKA_SSL_KEYFILE", str(pki["client_key"]))
    options = client_options(ServiceSettings().kafka)
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    assert isinstance(options["ssl_context"], ssl.SSLContext)


async def _handshake(client: ssl.SSLContext, pki: dict[str, Path]) -> str:
    """A TLS server that demands a client certificate; returns the client's common name."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca"]))
    server.load_cert_chain(str(pki["server"]))
    server.verify_mode = ssl.CERT_REQUIRED
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert") or {}
        seen.extend(v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName")
        seen.extend(v for k, v in peer.get("subjectAltName", ()))
        writer.write(await reader.readexactly(4))
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server)
    port = listener.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname="localhost"
        )
        writer.write(b"ping")
        await writer.drain()
        assert await reader.readexactly(4) == b"ping"
        writer.close()
    finally:
        listener.close()
        await listener.wait_closed()
    return ",".join(seen)


async def test_the_tls_context_handshakes_with_mutual_tls(pki: dict[str, Path]) -> None:
    cfg = KafkaSettings(
        security_protocol="SSL",
        ssl_cafile=str(pki["ca"]),
        ssl_certfile=str(pki["client_cert"]),
        ssl_keyfile=str(pki["client_key"]),
    )
    peer = await _handshake(client_options(cfg)["ssl_context"], pki)
    assert "intake.citycases.svc" in peer, "the broker saw the client's certificate"


async def test_a_broker_signed_by_another_ca_is_refused(pki: dict[str, Path]) -> None:
    cfg = KafkaSettings(
        security_protocol="SSL",
        ssl_cafile=str(pki["stranger_ca"]),
        ssl_certfile=str(pki["client_cert"]),
        ssl_keyfile=str(pki["client_key"]),
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(client_options(cfg)["ssl_context"], pki)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
          "sasl_username": "u"}, "KAFKA_SECURITY_PROTOCOL is SASL_SSL: set KAFKA_SASL_PASSWORD"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u", "sasl_password": "p"},
         "set KAFKA_SASL_MECHANISM"),
        ({"security_protocol": "PLAINTEXT", "sasl_username": "u"},
         "KAFKA_SASL_USERNAME is set but KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
        ({"security_protocol": "SSL", "sasl_mechanism": "SCRAM-SHA-256"},
         "KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL is SSL"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "u",
          "sasl_password": "p"}, "would send the password in clear"),
        ({"security_protocol": "PLAINTEXT", "ssl_cafile": "{ca}"},
         "KAFKA_SSL_CAFILE is set but KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
        ({"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.crt"},
         "KAFKA_SSL_CAFILE: /nonexistent/ca.crt is not a readable file"),
        ({"security_protocol": "SSL", "ssl_keyfile": "{key}"},
         "KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE"),
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI", "sasl_username": "u",
          "sasl_password": "p"}, "sasl_mechanism"),
    ],
)  # fmt: skip
def test_a_bad_combination_fails_at_start_naming_the_setting(
    settings: dict[str, str], message: str, pki: dict[str, Path]
) -> None:
    doc = {
        k: v.format(ca=pki["ca"], key=pki["client_key"]) if isinstance(v, str) else v
        for k, v in settings.items()
    }
    with pytest.raises(ValidationError) as failure:
        KafkaSettings(**doc)
    assert message in str(failure.value)


def test_a_bad_combination_in_the_environment_stops_the_service_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    with pytest.raises(ValidationError, match="set KAFKA_SASL_USERNAME"):
        ServiceSettings()


def test_kubernetes_sets_sasl_ssl_with_the_mounted_ca(
    pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = yaml.safe_load((DEPLOY / "k8s" / "configmap.yaml").read_text())["data"]
    secret = next(yaml.safe_load_all((DEPLOY / "k8s" / "secret.example.yaml").read_text()))[
        "stringData"
    ]
    env = {k: str(v) for k, v in {**config, **secret}.items() if k.startswith("KAFKA_")}
    # The CA comes from the kafka-ca secret, mounted where KAFKA_SSL_CAFILE points.
    mounted = Path(env["KAFKA_SSL_CAFILE"])
    for doc in yaml.safe_load_all((DEPLOY / "k8s" / "deployments.yaml").read_text()):
        pod = doc["spec"]["template"]["spec"]
        (container,) = [c for c in pod["containers"]]
        mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", ())}
        volumes = {v["name"]: v for v in pod.get("volumes", ())}
        assert mounts.get("kafka-ca") == str(mounted.parent), doc["metadata"]["name"]
        assert volumes["kafka-ca"]["secret"]["secretName"] == "kafka-ca"
        sources = [s for e in container["envFrom"] for s in e.values()]
        assert {"name": "citycases-settings"} in sources and {
            "name": "citycases-secrets"
        } in sources
    env["KAFKA_SSL_CAFILE"] = str(pki["ca"])  # the same file, where this test can read it
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    options = client_options(KafkaSettings())
    assert (options["security_protocol"], options["sasl_mechanism"]) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_the_compose_sasl_override_gives_every_service_the_same_complete_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    override = yaml.safe_load((DEPLOY / "docker-compose.sasl.yml").read_text())
    client = override["x-sasl-client"]
    for service in ("intake", "dispatch", "supervision", "scoring"):
        assert override["services"][service]["environment"] == client, service
    assert client["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert client["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    # ${VAR:-default} / ${VAR:?error} resolved as compose would, with a password given.
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", client["KAFKA_SECURITY_PROTOCOL"])
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", client["KAFKA_SASL_MECHANISM"])
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "citycases")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw")
    options = client_options(KafkaSettings())
    assert options["sasl_plain_username"] == "citycases" and "ssl_context" not in options
    broker = override["services"]["kafka"]["environment"]
    assert "SASL:SASL_PLAINTEXT" in broker["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert broker["KAFKA_SASL_ENABLED_MECHANISMS"] == client["KAFKA_SASL_MECHANISM"]
