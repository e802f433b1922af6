"""The Dockerfile and docker-compose.yml keep the platform's names, ports and configuration.

There is no Docker engine here, so both files are parsed: the compose file with PyYAML, the
Dockerfile with a small instruction parser. The health-check command of both is run for real
against a stub HTTP server, and the compose environment is fed to ``Settings``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from interaction_recommender.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "docker-compose.yml"

SERVICE = "interaction-recommender-service"
MIGRATE = "interaction-recommender-migrate"
DB = "interaction-db"
REDIS = "cinemate-redis"
BROKER = "cinemate-broker"
KAFKA_UI = "kafka-ui"

# docs/contract.md, "Names shared with the platform": environment variables.
PLATFORM_ENV = {
    "DATABASE_URL": "postgresql+asyncpg://admin:admin@interaction-db:5432/interaction_db",
    "REDIS_URL": "redis://cinemate-redis:6379",
    "KAFKA_BOOTSTRAP_SERVERS": "cinemate-broker:9092",
    "MODEL_PATH": "/app/models/recommender.pkl",
    "ENABLE_CONSUMERS": "true",
    "ENABLE_KAFKA": "true",
}

# docs/contract.md, "Names shared with the platform": container names.
CONTAINER_NAMES = {
    SERVICE: "cinemate-interaction-recommender",
    DB: "cinemate-interaction-postgres",
    REDIS: "cinemate-redis",
    BROKER: "cinemate-broker",
}

# Variables for the interpreter and the image itself, not for the service's Settings.
_NON_SETTINGS_ENV_PREFIXES = ("PYTHON", "PIP_", "PATH")


# --- Dockerfile parsing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD arguments."""
        value = json.loads(self.args)
        assert isinstance(value, list), f"line {self.line}: {self.keyword} is not a JSON array"
        assert all(isinstance(v, str) for v in value), f"line {self.line}: non-string argument"
        return value


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with ``\\`` continuations joined; comment and blank lines dropped (also
    inside a continued instruction, as Docker does)."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        keyword, _, args = " ".join(p for p in parts if p).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        parts = []
    assert not parts, f"the instruction starting at line {start} ends with a dangling '\\'"
    return instructions


def split_stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"line {instruction.line}: {instruction.keyword} before the first FROM"
        stages[-1].append(instruction)
    return stages


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword != "ENV":
            continue
        tokens = shlex.split(instruction.args)
        if tokens and "=" not in tokens[0]:  # legacy form: ENV NAME value with spaces
            env[tokens[0]] = " ".join(tokens[1:])
            continue
        for token in tokens:
            name, sep, value = token.partition("=")
            assert sep, f"line {instruction.line}: ENV token {token!r} has no '='"
            env[name] = value
    return env


def healthcheck_command(instruction: Instruction) -> tuple[dict[str, str], list[str]]:
    options, sep, command = instruction.args.partition("CMD ")
    assert sep, f"line {instruction.line}: HEALTHCHECK without CMD"
    parsed_options = dict(opt.lstrip("-").split("=", 1) for opt in options.split())
    return parsed_options, Instruction("CMD", command.strip(), instruction.line).exec_form()


@pytest.fixture(scope="module")
def dockerfile_stages() -> list[list[Instruction]]:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    stages = split_stages(parse_dockerfile(DOCKERFILE.read_text()))
    assert stages, "the Dockerfile has no FROM"
    return stages


@pytest.fixture(scope="module")
def final_stage(dockerfile_stages: list[list[Instruction]]) -> list[Instruction]:
    return dockerfile_stages[-1]


def _only(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in stage if i.keyword == keyword]


# --- compose parsing --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    assert isinstance(data.get("services"), dict), "docker-compose.yml has no services mapping"
    return data


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    services: dict[str, Any] = compose["services"]
    assert name in services, f"compose has no service {name!r} (has {sorted(services)})"
    service: dict[str, Any] = services[name]
    return service


def _scalar(value: object) -> str:
    # What compose passes to the container: booleans as true/false, numbers as text.
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        env: dict[str, str] = {}
        for item in raw:
            name, _, value = str(item).partition("=")
            env[name] = value
        return env
    return {name: _scalar(value) for name, value in raw.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):  # short syntax means service_started
        return dict.fromkeys(raw, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def _ports(service: dict[str, Any]) -> set[str]:
    ports = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            ports.add(f"{port.get('published')}:{port.get('target')}")
        else:
            ports.add(str(port))
    return ports


def _networks(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = service.get("networks") or {}
    if isinstance(raw, list):
        return {name: {} for name in raw}
    return {name: spec or {} for name, spec in raw.items()}


# --- the parser itself --------------------------------------------------------------------------


def test_dockerfile_parser_joins_continuations_and_skips_comments() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "FROM python:3.11-slim AS builder\n"
        "RUN a \\\n"
        "    # a comment inside the continuation\n"
        "    && b\n"
        "\n"
        "from python:3.11-slim\n"
        'ENV A=1 B="two words" \\\n'
        "    C=3\n"
        'CMD ["x", "y"]\n'
    )
    instructions = parse_dockerfile(text)
    assert [i.keyword for i in instructions] == ["FROM", "RUN", "FROM", "ENV", "CMD"]
    assert instructions[1].args == "a && b"
    assert instructions[1].line == 3
    stages = split_stages(instructions)
    assert len(stages) == 2
    assert env_of(stages[1]) == {"A": "1", "B": "two words", "C": "3"}
    assert stages[1][-1].exec_form() == ["x", "y"]
    with pytest.raises(AssertionError):
        parse_dockerfile("FROM python:3.11-slim\nRUN a \\\n")


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_python_311_slim(
    dockerfile_stages: list[list[Instruction]],
) -> None:
    assert len(dockerfile_stages) >= 2, "the Dockerfile must be multi-stage (builder + runtime)"
    stage_names: set[str] = set()
    for stage in dockerfile_stages:
        tokens = stage[0].args.split()
        image = next(t for t in tokens if not t.startswith("--"))
        if image.lower() not in stage_names:
            assert image.split("@")[0] == "python:3.11-slim", (
                f"line {stage[0].line}: every stage must build on python:3.11-slim "
                f"(the builder's venv is copied into the runtime), got {image!r}"
            )
        if len(tokens) >= 3 and tokens[-2].upper() == "AS":
            stage_names.add(tokens[-1].lower())


def test_builder_builds_a_wheel_and_runtime_copies_the_venv(
    dockerfile_stages: list[list[Instruction]], final_stage: list[Instruction]
) -> None:
    builder_runs = " ".join(i.args for s in dockerfile_stages[:-1] for i in _only(s, "RUN"))
    assert "pip wheel" in builder_runs or "build --wheel" in builder_runs, (
        "a builder stage must build a wheel of the project"
    )
    copies = [i.args for i in _only(final_stage, "COPY") if "--from=" in i.args]
    assert any("/opt/venv" in args for args in copies), (
        "the final stage must COPY --from the builder's venv"
    )
    assert all("pip install" not in i.args for i in _only(final_stage, "RUN")), (
        "the final stage must not install packages itself"
    )
    assert env_of(final_stage).get("PATH", "").startswith("/opt/venv/bin:"), (
        "the venv's bin must lead PATH so `recommender` and `python` resolve to it"
    )


def test_dockerfile_copies_only_existing_files_the_dockerignore_keeps() -> None:
    ignored = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for expected in (".venv", ".git", "var", "*.pkl", "bench/results", ".cache"):
        assert expected in ignored, f".dockerignore must exclude {expected!r}"
    for instruction in parse_dockerfile(DOCKERFILE.read_text()):
        if instruction.keyword != "COPY" or "--from=" in instruction.args:
            continue
        sources = [t for t in shlex.split(instruction.args) if not t.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"line {instruction.line}: COPY {source} is missing"
            assert source.rstrip("/") not in ignored, (
                f"line {instruction.line}: COPY {source} but .dockerignore excludes it"
            )


def test_final_stage_runs_as_a_fixed_non_root_user(final_stage: list[Instruction]) -> None:
    users = _only(final_stage, "USER")
    assert users, "the final stage must set USER (it would run as root)"
    user, _, group = users[-1].args.partition(":")
    assert user not in {"root", "0"}, f"the final USER is root: {users[-1].args!r}"
    assert user.isdigit(), f"USER should be a fixed numeric uid, got {user!r}"
    assert group != "0", "the final USER's group must not be root"
    runs = " ".join(i.args for i in _only(final_stage, "RUN"))
    assert f"--uid {user}" in runs, f"the final stage must create the user with uid {user}"
    for directory in ("/app/models", "/app/var"):
        assert directory in runs, f"the final stage must create {directory}"
    assert f"chown -R {user}" in runs, f"/app must be owned by uid {user}"
    workdirs = _only(final_stage, "WORKDIR")
    assert workdirs, "the final stage must set WORKDIR"
    assert workdirs[-1].args == "/app", f"WORKDIR must be /app, got {workdirs[-1].args!r}"


def test_final_stage_environment_and_port(final_stage: list[Instruction]) -> None:
    env = env_of(final_stage)
    expected = {
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HOST": "0.0.0.0",
        "PORT": "8000",
        "DATA_DIR": "/app/var",
        "MODEL_PATH": "/app/models/recommender.pkl",
    }
    for name, value in expected.items():
        assert env.get(name) == value, f"ENV {name} must be {value!r}, got {env.get(name)!r}"
    exposed = " ".join(i.args for i in _only(final_stage, "EXPOSE")).split()
    assert "8000" in exposed or "8000/tcp" in exposed, f"EXPOSE 8000 missing (got {exposed})"


def test_dockerfile_env_names_are_settings_fields(final_stage: list[Instruction]) -> None:
    for name in env_of(final_stage):
        if name.startswith(_NON_SETTINGS_ENV_PREFIXES):
            continue
        assert name.lower() in Settings.model_fields, (
            f"Dockerfile ENV {name} is not a Settings field: the service would ignore it"
        )


def test_cmd_runs_recommender_serve(final_stage: list[Instruction]) -> None:
    assert not _only(final_stage, "ENTRYPOINT"), "an ENTRYPOINT would wrap `recommender serve`"
    cmds = _only(final_stage, "CMD")
    assert cmds, "the final stage has no CMD"
    assert cmds[-1].exec_form() == ["recommender", "serve"]
    # ...and that command exists: the console script and its subcommands.
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.get("recommender") == "interaction_recommender.cli:main"
    from interaction_recommender.cli import app

    commands = {
        c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands
    }
    assert {"serve", "migrate"} <= commands, f"the CLI has {sorted(commands)}"


# --- the health checks, run for real -----------------------------------------------------------


class _StubHealth:
    def __init__(self) -> None:
        self.status = 200
        self.paths: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.paths.append(self.path)
                body = b'{"status": "x"}'
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]


@pytest.fixture
def stub_health() -> Iterator[_StubHealth]:
    stub = _StubHealth()
    thread = threading.Thread(target=stub.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.server.shutdown()
        stub.server.server_close()
        thread.join(timeout=5)


def _dockerfile_healthcheck() -> list[str]:
    stages = split_stages(parse_dockerfile(DOCKERFILE.read_text()))
    checks = _only(stages[-1], "HEALTHCHECK")
    assert checks, "the final stage has no HEALTHCHECK"
    options, command = healthcheck_command(checks[-1])
    assert "start-period" in options, "HEALTHCHECK needs a start period (startup runs migrations)"
    return command


def _compose_healthcheck() -> list[str]:
    check = yaml.safe_load(COMPOSE_FILE.read_text())["services"][SERVICE].get("healthcheck")
    assert check and not check.get("disable"), f"compose {SERVICE} has no healthcheck"
    test = check["test"]
    assert isinstance(test, list), "the compose healthcheck must be exec form"
    assert test[0] == "CMD", f"the compose healthcheck must be CMD (no shell), got {test[0]!r}"
    return [str(t) for t in test[1:]]


def _run_check(command: list[str], port: int) -> int:
    assert command[:2] == ["python", "-c"], f"health check is not `python -c`: {command[:2]}"
    assert "urllib" in command[2], "the health check must use urllib (no curl in python:slim)"
    env = {**os.environ, "PORT": str(port)}
    done = subprocess.run(
        [sys.executable, "-c", command[2]], env=env, capture_output=True, timeout=30, check=False
    )
    return done.returncode


@pytest.mark.parametrize("source", ["Dockerfile", "docker-compose.yml"])
def test_health_check_gets_health_and_fails_on_non_2xx(
    source: str, stub_health: _StubHealth
) -> None:
    command = _dockerfile_healthcheck() if source == "Dockerfile" else _compose_healthcheck()

    stub_health.status = 200
    assert _run_check(command, stub_health.port) == 0, f"{source}: check fails on a 200"
    assert stub_health.paths == ["/health"], f"{source}: check requested {stub_health.paths}"

    stub_health.status = 503  # GET /health answers 503 when the service is unhealthy
    assert _run_check(command, stub_health.port) != 0, f"{source}: check passes on a 503"
    stub_health.status = 404
    assert _run_check(command, stub_health.port) != 0, f"{source}: check passes on a 404"


@pytest.mark.parametrize("source", ["Dockerfile", "docker-compose.yml"])
def test_health_check_fails_when_nothing_listens(source: str) -> None:
    command = _dockerfile_healthcheck() if source == "Dockerfile" else _compose_healthcheck()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    assert _run_check(command, free_port) != 0, f"{source}: check passes with no server"


# --- docker-compose.yml -----------------------------------------------------------------------


def test_compose_uses_the_compose_spec(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the compose spec has no top-level `version:`"
    expected = {SERVICE, MIGRATE, DB, REDIS, BROKER, KAFKA_UI}
    missing = expected - set(compose["services"])
    assert not missing, f"compose lacks services {sorted(missing)}"


def test_container_names_match_the_runbooks(compose: dict[str, Any]) -> None:
    for service, container in CONTAINER_NAMES.items():
        actual = _service(compose, service).get("container_name")
        assert actual == container, f"{service}: container_name {actual!r}, expected {container!r}"


def test_service_environment_is_exactly_the_platforms(compose: dict[str, Any]) -> None:
    env = compose_env(_service(compose, SERVICE))
    for name, value in PLATFORM_ENV.items():
        assert env.get(name) == value, f"{SERVICE}: {name}={env.get(name)!r}, expected {value!r}"
    migrate_env = compose_env(_service(compose, MIGRATE))
    assert migrate_env.get("DATABASE_URL") == PLATFORM_ENV["DATABASE_URL"], (
        "the migrate job must migrate the database the service uses"
    )


@pytest.mark.parametrize("service", [SERVICE, MIGRATE])
def test_compose_env_names_are_settings_fields(compose: dict[str, Any], service: str) -> None:
    env = compose_env(_service(compose, service))
    assert env, f"{service} sets no environment"
    unknown = sorted(name for name in env if name.lower() not in Settings.model_fields)
    assert not unknown, f"{service} sets {unknown}, which are not Settings fields (typo?)"


def test_service_ports_network_aliases_and_volume(compose: dict[str, Any]) -> None:
    service = _service(compose, SERVICE)
    assert "8090:8000" in _ports(service), f"{SERVICE} must publish 8090:8000"
    networks = _networks(service)
    assert networks, f"{SERVICE} is on no network"
    aliases = {alias for spec in networks.values() for alias in spec.get("aliases") or []}
    for alias in ("interaction-recommender-service", "interaction-recommender"):
        assert alias in aliases, f"callers use the host name {alias!r}: add it as a network alias"
    mounts = [str(v) if not isinstance(v, dict) else v.get("target") for v in service["volumes"]]
    assert any(str(m).endswith(":/app/models") or m == "/app/models" for m in mounts), (
        f"{SERVICE} needs a volume for /app/models, got {mounts}"
    )
    build = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    assert context == ".", f"{SERVICE} must build from the repository root, got {build!r}"
    assert service.get("restart") == "unless-stopped"


def test_service_waits_for_its_dependencies_and_the_migration(compose: dict[str, Any]) -> None:
    depends = _depends_on(_service(compose, SERVICE))
    assert depends.get(DB) == "service_healthy", f"{SERVICE} must wait for a healthy {DB}"
    assert depends.get(REDIS) == "service_healthy", f"{SERVICE} must wait for a healthy {REDIS}"
    assert depends.get(BROKER) in {"service_started", "service_healthy"}, (
        f"{SERVICE} must depend on {BROKER}"
    )
    assert depends.get(MIGRATE) == "service_completed_successfully", (
        f"{SERVICE} must start only after `recommender migrate` succeeded"
    )


def test_migrate_job_runs_recommender_migrate(compose: dict[str, Any]) -> None:
    service = _service(compose, SERVICE)
    migrate = _service(compose, MIGRATE)
    command = migrate.get("command")
    if isinstance(command, str):
        command = shlex.split(command)
    assert command == ["recommender", "migrate"], f"{MIGRATE} runs {command!r}"
    same_image = migrate.get("image") is not None and migrate.get("image") == service.get("image")
    assert same_image or migrate.get("build") == service.get("build"), (
        f"{MIGRATE} must run the service's own image"
    )
    assert _depends_on(migrate).get(DB) == "service_healthy", f"{MIGRATE} must wait for {DB}"
    assert str(migrate.get("restart")) == "no", f"{MIGRATE} is a one-shot job: restart 'no'"


def test_database_service(compose: dict[str, Any]) -> None:
    db = _service(compose, DB)
    assert str(db.get("image", "")).startswith("postgres:15"), f"{DB} image {db.get('image')!r}"
    env = compose_env(db)
    assert env.get("POSTGRES_USER") == "admin"
    assert env.get("POSTGRES_PASSWORD") == "admin"
    assert env.get("POSTGRES_DB") == "interaction_db"
    assert "5433:5432" in _ports(db), f"{DB} must publish 5433:5432"
    volumes = [str(v) for v in db.get("volumes") or []]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in volumes), f"{DB} needs a volume"


def test_redis_and_broker_services(compose: dict[str, Any]) -> None:
    redis = _service(compose, REDIS)
    assert str(redis.get("image", "")).startswith("redis:7"), f"{REDIS} image"

    broker = _service(compose, BROKER)
    assert broker.get("image") == "apache/kafka:3.9.0", f"{BROKER} image {broker.get('image')!r}"
    env = compose_env(broker)
    expected = {
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://cinemate-broker:9092",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }
    for name, value in expected.items():
        assert env.get(name) == value, f"{BROKER}: {name}={env.get(name)!r}, expected {value!r}"
    node_id = env.get("KAFKA_NODE_ID", "")
    assert node_id.isdigit(), f"{BROKER}: KAFKA_NODE_ID must be set, got {node_id!r}"
    assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "").startswith(f"{node_id}@"), (
        f"{BROKER}: the controller quorum must be this node"
    )
    protocol_map = dict(
        pair.split(":", 1)
        for pair in env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "").split(",")
    )
    assert {"PLAINTEXT", "CONTROLLER"} <= set(protocol_map), (
        f"{BROKER}: protocol map {protocol_map}"
    )
    assert env.get("KAFKA_CONTROLLER_LISTENER_NAMES") == "CONTROLLER"
    cluster_id = env.get("CLUSTER_ID")
    if cluster_id is not None:  # kafka-storage format rejects anything but a base64url UUID
        try:
            raw = base64.urlsafe_b64decode(cluster_id + "==")
        except (binascii.Error, ValueError):
            raw = b""
        assert len(cluster_id) == 22 and len(raw) == 16, f"CLUSTER_ID {cluster_id!r} is no UUID"


def test_kafka_ui(compose: dict[str, Any]) -> None:
    ui = _service(compose, KAFKA_UI)
    assert str(ui.get("image", "")).startswith("provectuslabs/kafka-ui")
    assert "8989:8080" in _ports(ui), "kafka-ui must be on port 8989 (the runbooks' URL)"
    env = compose_env(ui)
    assert env.get("KAFKA_CLUSTERS_0_NAME"), "kafka-ui needs a cluster name"
    assert env.get("KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS") == "cinemate-broker:9092"


def test_backing_services_have_healthchecks(compose: dict[str, Any]) -> None:
    probes = {DB: "pg_isready", REDIS: "redis-cli", BROKER: "kafka", SERVICE: "/health"}
    for name, probe in probes.items():
        check = _service(compose, name).get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        test = check.get("test")
        text = " ".join(test) if isinstance(test, list) else str(test)
        assert probe in text, f"{name}'s healthcheck should use {probe!r}, got {text!r}"


def test_all_services_share_a_declared_network_and_volumes_are_declared(
    compose: dict[str, Any],
) -> None:
    declared_networks = set(compose.get("networks") or {})
    declared_volumes = set(compose.get("volumes") or {})
    shared: set[str] | None = None
    for name, service in compose["services"].items():
        networks = set(_networks(service))
        assert networks, f"{name} is on no declared network"
        assert networks <= declared_networks, f"{name} uses undeclared networks"
        shared = networks if shared is None else shared & networks
        for volume in service.get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if source and not source.startswith((".", "/", "~")):
                assert source in declared_volumes, f"{name}: volume {source!r} is not declared"
    assert shared, "the services must share one network (they address each other by name)"


# --- the compose environment drives Settings -------------------------------------------------


def test_settings_from_the_container_environment_select_the_platform(
    compose: dict[str, Any], final_stage: list[Instruction], monkeypatch: pytest.MonkeyPatch
) -> None:
    image_env = {
        name: value
        for name, value in env_of(final_stage).items()
        if not name.startswith(_NON_SETTINGS_ENV_PREFIXES)
    }
    # The container sees the image's ENV, overridden by the compose file's environment (the
    # operator's ADMIN_TOKEN interpolated, as `docker compose up` does).
    service_env = compose_env(_service(compose, SERVICE)) | {"ADMIN_TOKEN": "an-operators-token-1"}
    for name, value in {**image_env, **service_env}.items():
        monkeypatch.setenv(name, value)

    settings = Settings()

    assert settings.database_url == PLATFORM_ENV["DATABASE_URL"]
    assert not settings.is_sqlite, "the platform deployment must run on Postgres"
    assert not settings.migrate_on_start, "Postgres is migrated by the migrate job, not serve"
    assert settings.redis_url == PLATFORM_ENV["REDIS_URL"]
    assert settings.enable_kafka is True
    assert settings.kafka_bootstrap_servers == PLATFORM_ENV["KAFKA_BOOTSTRAP_SERVERS"]
    assert settings.enable_consumers is True
    assert settings.effective_model_path == Path("/app/models/recommender.pkl")
    assert settings.host == "0.0.0.0", "inside a container the server must bind every interface"
    assert settings.port == 8000


def test_compose_requires_an_admin_token(compose: dict[str, Any]) -> None:
    """Secure by default (issue 17, defect 9): the service refuses to start from compose without
    ADMIN_TOKEN (`${ADMIN_TOKEN:?...}` makes `docker compose up` fail with the message); the Java
    callers send no token, so API_TOKENS stays optional."""
    env = compose_env(_service(compose, SERVICE))
    required = re.fullmatch(r"\$\{ADMIN_TOKEN:\?(.+)\}", env.get("ADMIN_TOKEN", ""))
    assert required, f"ADMIN_TOKEN={env.get('ADMIN_TOKEN')!r} is not required"
    assert "ADMIN_TOKEN" in required.group(1)  # the message says what to set
    assert "API_TOKENS" not in env
