"""The deployment recipe, checked as far as a machine without Docker can: the compose file
against the Compose Specification's schema (``tests/data/compose-spec.json``, from
compose-spec/compose-spec, Apache-2.0) and against Tolk itself (every ``TOLK_*`` variable
a real setting, every dependency a service, every Prometheus target a service's port);
the image's build context installs and has the commands compose runs; ``docker compose
config`` where a compose plugin is installed. And what a cluster needs of the code:
``tolk temporal setup`` and mTLS, against the real dev server."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from settings import Settings, _flatten_sections
from stack import Stack

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
TOLK_IMAGE = "tolk"
# TOLK_* variables read outside the settings object (the test checks the code names them).
PROCESS_VARIABLES = {"TOLK_CONFIG", "TOLK_LOG_LEVEL"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves <<: merges
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def is_tolk(service: dict[str, Any]) -> bool:
    return str(service.get("image", "")).split(":")[0] == TOLK_IMAGE


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}``, ``${NAME:?error}`` and ``${NAME}``, as an unset
    environment gives them (an ``:?`` variable: a placeholder)."""

    def one(match: re.Match[str]) -> str:
        op, arg = match.group(2), match.group(3) or ""
        if op == ":-":
            return arg
        return "x" * 32 if op == ":?" else ""

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: interpolate(str(value)) for key, value in env.items()}


def mounted(service: dict[str, Any], container_path: str) -> Path | None:
    """The file of this checkout that ``service`` mounts at ``container_path``."""
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if target == container_path and source.startswith("."):
            return (DEPLOY / source).resolve()
    return None


def settings_of(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a Tolk service's processes see: its environment, its mounted config."""
    env = environment(service)
    for key in list(os.environ):
        if key.startswith("TOLK_"):
            monkeypatch.delenv(key)
    config = mounted(service, env["TOLK_CONFIG"])
    assert config is not None and config.exists(), f"TOLK_CONFIG {env['TOLK_CONFIG']}: unmounted"
    for key, value in {**env, "TOLK_CONFIG": str(config)}.items():
        monkeypatch.setenv(key, value)
    return Settings()


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


# --- compose: its own consistency -----------------------------------------------------------


def test_compose_follows_the_compose_specification() -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    errors = [str(e) for e in jsonschema_rs.validator_for(schema).iter_errors(compose())]
    assert not errors


def test_every_dependency_is_a_service_that_can_meet_its_condition() -> None:
    found = services()
    image_checks_health = "HEALTHCHECK" in dockerfile()
    for name, service in found.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {dep: {"condition": "service_started"} for dep in depends}
        for dep, spec in depends.items():
            assert dep in found, f"{name} depends on {dep}, which is no service"
            condition = spec.get("condition", "service_started")
            target = found[dep]
            if condition == "service_healthy":
                check = target.get("healthcheck", {})
                has = bool(check.get("test")) or (is_tolk(target) and image_checks_health)
                assert has and not check.get("disable"), f"{dep} has no health check"
            elif condition == "service_completed_successfully":
                assert target.get("restart", "no").startswith(("no", "on-failure")), (
                    f"{dep} must run once to complete"
                )
            else:
                assert condition == "service_started", condition


def test_the_api_and_workers_wait_for_migrations_and_the_cluster_setup() -> None:
    found = services()
    commands = {name: s.get("command") for name, s in found.items() if is_tolk(s)}
    one_shots = {
        name
        for name, command in commands.items()
        if command in (["db", "upgrade"], ["temporal", "setup"])
    }
    assert len(one_shots) == 2, commands
    for role in (["api"], ["worker"]):
        runners = [name for name, command in commands.items() if command == role]
        assert runners, f"no service runs tolk {role[0]}"
        for name in runners:
            depends = found[name]["depends_on"]
            for one_shot in one_shots:
                assert depends[one_shot]["condition"] == "service_completed_successfully"
    workers = [found[name] for name, command in commands.items() if command == ["worker"]]
    assert all(w["deploy"]["replicas"] >= 1 and "ports" not in w for w in workers), (
        "workers scale: replicas, and no host port that a second replica would fight for"
    )


def test_every_tolk_variable_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {f"TOLK_{name.upper()}" for name in Settings.model_fields}
    shipped = [
        p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] not in ("tests", ".venv")
    ]
    for variable in PROCESS_VARIABLES:
        assert any(variable in p.read_text() for p in shipped), f"nothing reads {variable}"
    tolk_services = {name: s for name, s in services().items() if is_tolk(s)}
    assert tolk_services
    for name, service in tolk_services.items():
        for variable in environment(service):
            if variable.startswith("TOLK_"):
                assert variable in fields | PROCESS_VARIABLES, f"{name}: {variable}"
        settings = settings_of(service, monkeypatch)
        assert settings.api_host == "0.0.0.0", f"{name}: the API must listen on every interface"
        assert settings.database_url.startswith("postgresql+asyncpg://")
        host, _, port = settings.temporal_target.partition(":")
        assert host in services() and port == "7233"
    # The mounted settings file: only keys that are settings.
    for path in {mounted(s, "/etc/tolk/tolk.yaml") for s in tolk_services.values()}:
        assert path is not None
        flat = _flatten_sections(yaml.safe_load(path.read_text()))
        assert set(flat) <= set(Settings.model_fields), set(flat) - set(Settings.model_fields)


def test_the_cluster_gets_the_search_attributes_the_dev_server_gets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev = yaml.safe_load((ROOT / "temporal-dev.yaml").read_text())["temporal"]
    for service in (s for s in services().values() if is_tolk(s)):
        settings = settings_of(service, monkeypatch)
        assert settings.temporal_search_attributes == dev["search_attributes"]
        assert settings.temporal_namespace == dev["namespace"]


# --- Prometheus and Grafana ----------------------------------------------------------------


def listening_ports(
    name: str, service: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> set[int]:
    """The metrics ports a service listens on, as its own settings say."""
    if is_tolk(service):
        settings = settings_of(service, monkeypatch)
        command = service.get("command") or ["api"]
        if command == ["api"]:
            return {settings.api_port}
        if command == ["worker"] and settings.worker_metrics_address:
            return {int(settings.worker_metrics_address.rsplit(":", 1)[1])}
        return set()
    endpoint = environment(service).get("PROMETHEUS_ENDPOINT")  # Temporal's server
    return {int(endpoint.rsplit(":", 1)[1])} if endpoint else set()


def scrape_targets() -> list[tuple[str, str, int]]:
    """(job, host, port) of every target in deploy/prometheus.yml."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = []
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                targets.append((job["job_name"], host, int(port)))
        for dns in job.get("dns_sd_configs", []):
            assert dns.get("type", "SRV") == "A", "compose's DNS answers A records"
            targets += [(job["job_name"], host, int(dns["port"])) for host in dns["names"]]
    return targets


def test_prometheus_scrapes_services_on_the_ports_they_listen_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = services()
    targets = scrape_targets()
    assert targets
    for job, host, port in targets:
        assert host in found, f"{job}: {host} is no service"
        assert port in listening_ports(host, found[host], monkeypatch), f"{job}: {host}:{port}"
    scraped = {host for _, host, _ in targets}
    for name, service in found.items():
        if is_tolk(service) and service.get("command") in (["api"], ["worker"]):
            assert name in scraped, f"{name} is not scraped"


def test_grafana_is_provisioned_with_the_dashboard() -> None:
    grafana = services()["grafana"]
    dashboard = json.loads((DEPLOY / "grafana" / "tolk.json").read_text())
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    uids = {d["uid"] for d in datasources}
    used = set()
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            used.add(panel["datasource"]["uid"])
            used |= {t["datasource"]["uid"] for t in panel["targets"]}
    assert used and used <= uids
    assert any(d["url"] == "http://prometheus:9090" for d in datasources)
    providers = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "tolk.yml").read_text()
    )["providers"]
    folder = providers[0]["options"]["path"]
    assert mounted(grafana, f"{folder}/tolk.json") == (DEPLOY / "grafana" / "tolk.json")
    assert mounted(grafana, "/etc/grafana/provisioning") == DEPLOY / "grafana" / "provisioning"


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on this machine")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if version.returncode != 0:
        pytest.skip("the docker CLI has no compose plugin here")
    env = {**os.environ, "TOLK_SECRET_KEY": "k" * 32}
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


# --- the image -----------------------------------------------------------------------------


def test_the_dockerfile_builds_one_unprivileged_image_for_every_process() -> None:
    text = dockerfile()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    assert re.search(r"^USER tolk$", text, re.M)
    assert 'ENTRYPOINT ["tolk"]' in text
    assert "TOLK_API_HOST=0.0.0.0" in text
    assert "/healthz" in text
    assert "[dev]" not in text.replace("no [dev] extra", "")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "tolk" in scripts


def build_context(into: Path) -> Path:
    """A copy of what ``docker build .`` sends: the checkout minus ``.dockerignore``'s
    patterns (the forms this file uses: names, globs, ``**/`` prefixes)."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(rel: str) -> bool:
        for pattern in patterns:
            bare = pattern.removeprefix("**/")
            parts = rel.split("/")
            if fnmatch.fnmatch(rel, pattern) or any(fnmatch.fnmatch(p, bare) for p in parts):
                return True
            if any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts))):
                return True
        return False

    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for rel in tracked:
        if not ignored(rel) and (ROOT / rel).is_file():
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, into / rel)
    return into


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project as the image's ``pip install /src`` installs it (its dependencies from
    this environment): a wheel built from the build context, unpacked."""
    root = tmp_path_factory.mktemp("image")
    context = build_context(root / "src")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"),
         str(context)],
        check=True,
        timeout=600,
    )  # fmt: skip
    (wheel,) = (root / "dist").glob("tolk-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(root / "site")
    return root / "site"


def test_the_build_context_installs_every_package_and_file(installed: Path) -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package in tool["packages"]:
        assert (installed / package.replace(".", "/") / "__init__.py").exists(), package
    for module in tool["py-modules"]:
        assert (installed / f"{module}.py").exists(), module
    for package, globs in tool.get("package-data", {}).items():
        for glob in globs:
            assert list((installed / package.replace(".", "/")).glob(glob)), f"{package}/{glob}"


def tolk_commands() -> list[list[str]]:
    commands = {tuple(s.get("command") or ["api"]) for s in services().values() if is_tolk(s)}
    return [list(c) for c in sorted(commands)]


@pytest.mark.parametrize("command", tolk_commands(), ids=" ".join)
def test_the_image_has_every_command_compose_runs(
    installed: Path, command: list[str], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLK_")}
    env["PYTHONPATH"] = str(installed)  # the installed copy, not this checkout
    run = [sys.executable, "-c", "from cli.main import main; main()"]
    where = subprocess.run(
        [sys.executable, "-c", "import cli, sys; print(cli.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(installed))
    result = subprocess.run(
        [*run, *command, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    if result.returncode != 0 and command[0] == "db":
        has_db = subprocess.run([*run, "db", "--help"], cwd=tmp_path, env=env).returncode == 0
        if not has_db:
            pytest.skip("`tolk db upgrade` (Alembic migrations) is not on this branch yet")
    assert result.returncode == 0, result.stderr


# --- what a cluster needs of the code: `tolk temporal setup`, mTLS ---------------------------


def setup_cli(stack: Stack, namespace: str, attributes: dict[str, str]) -> subprocess.Popen[str]:
    env = {
        **stack.env,
        "TOLK_TEMPORAL_NAMESPACE": namespace,
        "TOLK_TEMPORAL_SEARCH_ATTRIBUTES": json.dumps(attributes),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "temporal", "setup", "--json", "--wait", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_setup(stack: Stack, namespace: str, attributes: dict[str, str]) -> tuple[int, str, str]:
    proc = setup_cli(stack, namespace, attributes)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


async def custom_attributes(stack: Stack, namespace: str) -> dict[str, str]:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.client import Client

    client = await Client.connect(stack.settings.temporal_target, namespace=namespace)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return {name: IndexedValueType.Name(kind) for name, kind in listed.custom_attributes.items()}


async def test_temporal_setup_registers_a_namespace_and_its_attributes_once(
    stack: Stack,
) -> None:
    namespace = f"tolk-setup-{os.urandom(4).hex()}"
    attributes = dict(stack.settings.temporal_search_attributes)
    assert attributes, "the test stack registers Tolk's search attributes"

    code, out, err = await asyncio.to_thread(run_setup, stack, namespace, attributes)
    assert code == 0, err
    first = json.loads(out)
    assert first["namespaceCreated"] is True
    assert first["searchAttributesAdded"] == sorted(attributes)
    found = await custom_attributes(stack, namespace)
    assert found["TolkTargetLocales"] == "INDEXED_VALUE_TYPE_KEYWORD_LIST"
    assert {name: found[name] for name in attributes} == {
        name: "INDEXED_VALUE_TYPE_" + re.sub(r"(?<!^)(?=[A-Z])", "_", kind).upper()
        for name, kind in attributes.items()
    }

    code, out, err = await asyncio.to_thread(run_setup, stack, namespace, attributes)
    assert code == 0, err
    again = json.loads(out)
    assert again["namespaceCreated"] is False and again["searchAttributesAdded"] == []

    # An attribute that exists with another type is refused, never changed.
    clash = {**attributes, "TolkEngine": "Int"}
    code, out, err = await asyncio.to_thread(run_setup, stack, namespace, clash)
    assert code == 1 and out == ""
    assert "TolkEngine exists" in err and "as Keyword, not Int" in err
    assert (await custom_attributes(stack, namespace))["TolkEngine"].endswith("_KEYWORD")


def test_temporal_setup_refuses_an_unknown_type(stack: Stack) -> None:
    code, out, err = run_setup(stack, "tolk-never-made", {"TolkThing": "Keywords"})
    assert code == 1 and out == "" and "TolkThing" in err and "Keywords" in err


@contextlib.asynccontextmanager
async def mtls_proxy(
    ca: trustme.CA, server_name: str, upstream: tuple[str, int]
) -> AsyncIterator[int]:
    """A TLS front for the dev server, as a cluster's is: its certificate names
    ``server_name``, and it requires a client certificate signed by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(server_name).configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_mtls_settings_reach_a_cluster_that_requires_a_client_certificate(
    stack: Stack, tmp_path: Path
) -> None:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    from connections import connect_temporal

    ca = trustme.CA()
    client_cert = ca.issue_cert("tolk-worker")
    files = {
        "ca": ca.cert_pem,
        "cert": client_cert.cert_chain_pems[0],
        "key": client_cert.private_key_pem,
    }
    for name, blob in files.items():
        blob.write_to_path(str(tmp_path / f"{name}.pem"))
    host, port = stack.settings.temporal_target.rsplit(":", 1)
    namespace = stack.settings.temporal_namespace

    async with mtls_proxy(ca, "temporal.cluster.test", (host, int(port))) as proxy_port:

        def settings(**tls: str) -> Settings:
            fields: dict[str, Any] = {
                "temporal_address": f"127.0.0.1:{proxy_port}",
                "temporal_namespace": namespace,
                "temporal_connect_retry_max_seconds": 1,
                **tls,
            }
            return Settings(**fields)

        full = {
            "temporal_tls_ca_file": str(tmp_path / "ca.pem"),
            "temporal_tls_cert_file": str(tmp_path / "cert.pem"),
            "temporal_tls_key_file": str(tmp_path / "key.pem"),
            "temporal_tls_server_name": "temporal.cluster.test",
        }
        client = await connect_temporal(settings(**full))
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
        assert described.namespace_info.name == namespace

        # Each setting matters: no client certificate, or the wrong server name, or no CA.
        without_cert = {k: v for k, v in full.items() if "cert_file" not in k and "key" not in k}
        without_name = {k: v for k, v in full.items() if k != "temporal_tls_server_name"}
        without_ca = {k: v for k, v in full.items() if k != "temporal_tls_ca_file"}
        for tls in (without_cert, without_name, without_ca):
            with pytest.raises(RuntimeError):
                await asyncio.wait_for(connect_temporal(settings(**tls)), 60)


def test_a_certificate_without_its_key_is_refused_at_start(tmp_path: Path) -> None:
    from connections import tls_config

    (tmp_path / "cert.pem").write_text("x")
    with pytest.raises(ValueError, match="go together"):
        tls_config(Settings(temporal_tls_cert_file=str(tmp_path / "cert.pem")))
    with pytest.raises(ValueError, match="false"):
        tls_config(Settings(temporal_tls=False, temporal_tls_server_name="t.example"))
    assert tls_config(Settings()) is None
