"""compose.yaml, the whole stack in one file: valid against the Compose Specification's JSON schema (the copy
check-jsonschema ships), and the invariants its comments state. Its balancer's configuration,
deploy/haproxy/haproxy.cfg, is checked by haproxy itself and against the app's connection age.

No Docker engine is needed: the file is read as YAML (merge keys resolved, as Compose resolves them; the
`${...}` interpolations are left as text and read as such).
"""

from __future__ import annotations

import importlib.resources
import json
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
APP_SERVICES = ("migrate", "app1", "app2", "broadcaster1", "broadcaster2", "retention")
SERVICES = {"postgres", "redis", "lb", *APP_SERVICES}
READY_PATH = "/api/v1/monitoring/ready"
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt}, ${NAME+alt}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$")


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, dict]:
    return compose()["services"]


def compose_spec_schema() -> dict:
    """The Compose Specification's JSON schema as check-jsonschema vendors it (`--builtin-schema
    vendor.compose-spec`): a pinned dev dependency, nothing fetched or committed here."""
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text())


def interpolations(value: object) -> list[re.Match]:
    if isinstance(value, dict):
        return [m for item in value.values() for m in interpolations(item)]
    if isinstance(value, list):
        return [m for item in value for m in interpolations(item)]
    return list(INTERPOLATION.finditer(value)) if isinstance(value, str) else []


def default_of(value: str) -> str:
    """``value`` as Compose interpolates it with nothing set in the environment (defaults only)."""
    return INTERPOLATION.sub(lambda m: m["arg"] if m["op"] in ("-", ":-") else "", value)


def seconds(value: str) -> float:
    """An HAProxy time (default unit ms) in seconds."""
    number, unit = re.fullmatch(r"(\d+)(us|ms|s|m|h|d)?", value).groups()
    return int(number) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit or "ms"]


def haproxy_sections() -> dict[str, list[list[str]]]:
    """deploy/haproxy/haproxy.cfg as {"defaults": [[keyword, args...], ...], "backend app": ..., ...}."""
    sections: dict[str, list[list[str]]] = {}
    current = None
    for raw in HAPROXY_CONFIG.read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        words = shlex.split(line)
        if not raw[0].isspace():
            current = " ".join(words)
            sections[current] = []
        else:
            sections[current].append(words)
    return sections


def directives(section: str, *keyword: str) -> list[list[str]]:
    return [words[len(keyword) :] for words in haproxy_sections()[section] if tuple(words[: len(keyword)]) == keyword]


def max_connection_age() -> float:
    """WEBSOCKET_MAX_CONNECTION_AGE as the app servers get it: compose's value, else the settings' default."""
    from django.conf import settings

    configured = {
        default_of(str(services()[name].get("environment", {}).get("WEBSOCKET_MAX_CONNECTION_AGE", "")))
        for name in APP_SERVICES
    } - {""}
    return max([float(v) for v in configured] or [settings.WEBSOCKET_MAX_CONNECTION_AGE])


def test_compose_yaml_is_valid_against_the_compose_specification():
    schema = compose_spec_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors, "\n".join(errors)
    # The schema has teeth: a service key that does not exist is refused.
    assert not validator.is_valid({"services": {"app": {"image": "x", "imagee": "y"}}})


def test_no_version_key_and_every_service_present():
    assert "version" not in compose()
    assert set(services()) == SERVICES


def test_secrets_have_no_default_and_no_literal_value():
    environment = services()["app1"]["environment"]
    assert environment["SECRET_KEY"] == "${SECRET_KEY:?set SECRET_KEY}"
    for match in interpolations(compose()):
        if SECRET_NAME.search(match["name"]):
            assert match["op"] in (":?", "?"), f"{match[0]}: a secret must be required, never defaulted"
    for name, service in services().items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                matches = interpolations(value)
                assert matches and default_of(str(value)) == "", f"{name}.{key} must come from the environment"
    assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"]


def test_every_app_service_runs_the_one_image_built_from_the_dockerfile():
    builds = {
        name: (json.dumps(services()[name].get("build"), sort_keys=True), services()[name].get("image"))
        for name in APP_SERVICES
    }
    assert len(set(builds.values())) == 1, builds
    build = services()["app1"]["build"]
    assert build["context"] == "." and (ROOT / build["context"] / build["dockerfile"]) == ROOT / "Dockerfile"
    # app1 and app2 run the image's own CMD: the launcher with --proxy-headers on 0.0.0.0:8000.
    assert "command" not in services()["app1"] and "command" not in services()["app2"]
    cmd = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    assert all(f'"{word}"' in cmd for word in ("conflict_monitor.serve", "--proxy-headers", "8000"))
    for name in SERVICES - set(APP_SERVICES):
        assert "build" not in services()[name]


def test_migrate_runs_once_before_anything_that_uses_the_database():
    migrate = services()["migrate"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]
    # A restart policy would run a finished one-shot again and again.
    assert migrate.get("restart", "no") == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in set(APP_SERVICES) - {"migrate"}:
        assert services()[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert services()[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
        environment = services()[name]["environment"]
        assert {"SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"} <= set(environment), name
        assert environment["DATABASE_URL"].endswith("@postgres:5432/conflict_monitor")
        assert environment["REDIS_URL"] == "redis://redis:6379/0"


def test_postgres_and_redis_are_health_checked_and_postgres_keeps_its_data():
    postgres, redis = services()["postgres"], services()["redis"]
    assert postgres["image"] == "postgres:15"
    assert "pg_isready" in postgres["healthcheck"]["test"]
    volume = postgres["volumes"][0].split(":")
    assert volume[1] == "/var/lib/postgresql/data" and volume[0] in compose()["volumes"]
    assert "redis-cli" in redis["healthcheck"]["test"]


def test_only_the_balancer_is_published_and_it_balances_both_servers():
    for name, service in services().items():
        assert ("ports" in service) == (name == "lb"), name
    lb = services()["lb"]
    assert lb["image"].split(":")[0] in ("haproxy", "nginx")
    assert lb["ports"] == ["8000:8000"]
    source, target, *_ = lb["volumes"][0].split(":")
    assert (ROOT / source).resolve() == HAPROXY_CONFIG and target == "/usr/local/etc/haproxy/haproxy.cfg"
    environment = lb["environment"]
    assert (environment["APP1_ADDR"], environment["APP2_ADDR"]) == ("app1:8000", "app2:8000")
    assert environment["LB_BIND"] == ":8000"
    # Its health checks' Host is one the servers answer (Django refuses any other with a 400).
    allowed = default_of(services()["app1"]["environment"]["ALLOWED_HOSTS"]).split(",")
    assert default_of(environment["LB_CHECK_HOST"]) in allowed
    assert {name: lb["depends_on"][name]["condition"] for name in ("app1", "app2")}


def test_two_broadcasters_with_metrics_inside_the_network():
    broadcasters = [name for name, s in services().items() if s.get("command", [])[-1:] == ["run_broadcaster"]]
    assert sorted(broadcasters) == ["broadcaster1", "broadcaster2"]
    for name in broadcasters:
        environment = services()[name]["environment"]
        assert environment["MONITORING_BROADCASTER_METRICS_ADDR"] == "0.0.0.0"
        assert environment["MONITORING_BROADCASTER_METRICS_PORT"] == "9101"
        assert services()[name]["expose"] == ["9101"] and "ports" not in services()[name]


def test_retention_prunes_daily_and_its_script_reaches_the_image():
    retention = services()["retention"]
    assert retention["command"] == ["sh", "deploy/retention.sh"]
    assert int(retention["environment"]["RETENTION_DAYS"]) >= 30  # prune_metrics refuses fewer
    assert int(retention["environment"]["RETENTION_INTERVAL"]) == 86400
    script = (ROOT / "deploy" / "retention.sh").read_text()
    assert 'manage.py prune_metrics --days "$days"' in script and 'sleep "$interval"' in script
    excluded = [line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert not {"deploy", "deploy/retention.sh", "*.sh"} & set(excluded)


def test_the_balancer_outlasts_the_servers_connection_age_and_checks_readiness():
    age = max_connection_age()
    tunnel = directives("defaults", "timeout", "tunnel")
    assert tunnel and seconds(tunnel[0][0]) > age, (tunnel, age)
    # Before the upgrade, plain HTTP timeouts apply; set, so that nothing waits forever.
    for kind in ("connect", "client", "server"):
        assert directives("defaults", "timeout", kind), kind
    assert directives("backend app", "option", "httpchk")
    send = " ".join(directives("backend app", "http-check", "send")[0])
    assert f"uri {READY_PATH}" in send and "hdr Host" in send
    assert directives("backend app", "http-check", "expect") == [["status", "200"]]
    servers = directives("backend app", "server")
    assert [words[:2] for words in servers] == [["app1", "${APP1_ADDR}"], ["app2", "${APP2_ADDR}"]]
    assert "check" in directives("backend app", "default-server")[0]
    assert directives("backend app", "balance") == [["leastconn"]]
    # The servers trust X-Forwarded-For (--proxy-headers): a client's own is dropped, the balancer's added.
    assert ["X-Forwarded-For"] in directives("frontend http", "http-request", "del-header")
    assert ["forwardfor"] in directives("frontend http", "option")


def test_haproxy_accepts_the_configuration_as_compose_and_make_stack_fill_it():
    haproxy = shutil.which("haproxy")
    if not haproxy:
        pytest.fail("haproxy is missing: .ci/run installs it (apt-get install haproxy)", pytrace=False)
    compose_env = {key: default_of(str(value)) for key, value in services()["lb"]["environment"].items()}
    stack_env = {"LB_BIND": "127.0.0.1:8000", "APP1_ADDR": "127.0.0.1:8001", "APP2_ADDR": "127.0.0.1:8002"}
    for environment in (compose_env, stack_env):
        result = subprocess.run(
            [haproxy, "-c", "-f", str(HAPROXY_CONFIG)], env=environment, capture_output=True, text=True, timeout=30
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        # Outside compose's network app1 and app2 do not resolve; the balancer starts anyway and resolves them
        # at run time (init-addr none, resolvers).
        warnings = [line for line in output.splitlines() if "WARNING" in line and "could not resolve" not in line]
        assert not warnings, output
