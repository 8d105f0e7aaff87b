"""Hostile HTTP input: schemathesis derives requests for every operation from the OpenAPI schema that a
real server serves, valid ones and invalid ones (wrong types, numbers beyond 64 bits, odd strings and
encodings, unexpected content types and methods, missing or malformed credentials). No answer is a 5xx,
every error is a JSON body with a string "error" and "detail", and every status, content type and body
is one the schema documents.

One server with private reads, two passes: with an ingest token and an operator's session (so that every
write gets past authentication and its validation is what is fuzzed), then anonymous (every refusal).
``CHAOS_SCHEMATHESIS_EXAMPLES`` raises the examples per operation (default 25; about 1.5 minutes on two
cores), ``CHAOS_SCHEMATHESIS_SEED`` changes the generated input.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis

from tests.integration.cluster import ROOT, running_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
EXAMPLES = int(os.environ.get("CHAOS_SCHEMATHESIS_EXAMPLES", "25"))
SEED = int(os.environ.get("CHAOS_SCHEMATHESIS_SEED", "20261203"))
API = "/api/v1/monitoring/"
SCHEMA = API + "schema"
# Readable without credentials even when reads are private.
PUBLIC = {API + "health", API + "ready"}
CHECKS = [
    "not_a_server_error",
    "errors_are_json_bodies",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]
PASSWORD = "correct-horse-battery-staple-6"  # noqa: S105 (a throwaway user of the test database)


def error_body_problem(*, status: int, content_type: str, body: bytes) -> str | None:
    """Why an error response is not the API's JSON error body (None when it is, or is no error)."""
    if status < 400:
        return None
    if content_type.split(";")[0].strip().lower() != "application/json":
        return f"{status} with Content-Type {content_type!r}"
    try:
        document = json.loads(body)
    except ValueError:
        return f"{status} with a body that is not JSON: {body[:200]!r}"
    if not (
        isinstance(document, dict)
        and isinstance(document.get("error"), str)
        and isinstance(document.get("detail"), str)
    ):
        return f"{status} without a string error and detail: {body[:200]!r}"
    return None


# Runs inside the schemathesis process, which imports this module for it (SCHEMATHESIS_HOOKS).
@schemathesis.check
def errors_are_json_bodies(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    problem = error_body_problem(
        status=response.status_code,
        content_type=(response.headers.get("content-type") or [""])[0],
        body=response.content,
    )
    assert problem is None, problem


@dataclass(frozen=True)
class Pass:
    name: str
    exit_code: int
    output: str
    seconds: float
    exchanges: list[dict]  # the HAR entries: every request and its response
    operations: frozenset[str]  # "METHOD /path" of each operation the coverage or fuzzing phase ran

    def statuses(self) -> Counter:
        return Counter(entry["response"]["status"] for entry in self.exchanges)

    def problems(self) -> list[str]:
        found = []
        for entry in self.exchanges:
            request, response = entry["request"], entry["response"]
            content = response["content"]
            body = content.get("text", "")
            body = base64.b64decode(body) if content.get("encoding") == "base64" else body.encode()
            problem = error_body_problem(status=response["status"], content_type=content.get("mimeType", ""), body=body)
            if problem is not None:
                found.append(f"{request['method']} {request['url']}: {problem}")
        return found

    def figures(self) -> str:
        statuses = self.statuses()
        classes = Counter(f"{status // 100}xx" for status in statuses.elements())
        return (
            f"{self.name}: {len(self.operations)} operations, {len(self.exchanges):,} requests in "
            f"{self.seconds:.0f} s; {', '.join(f'{name} {count:,}' for name, count in sorted(classes.items()))}; "
            f"5xx: {classes['5xx']}; errors that are not a JSON error body: {len(self.problems())}"
        )


def run_schemathesis(*, name: str, location: str, workdir: Path, headers: dict[str, str], url: str = "") -> Pass:
    reports = workdir / name
    reports.mkdir()
    argv = [sys.executable, "-m", "schemathesis.cli", "run", location, *(["--url", url] if url else [])]
    for header, value in headers.items():
        argv += ["--header", f"{header}: {value}"]
    argv += [
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        # Also the operation that serves the schema, which schemathesis otherwise leaves out.
        "--include-path-regex",
        f"^{API}",
        "--generation-database",
        "none",
        "--report",
        "har,ndjson",
        "--report-har-path",
        str(reports / "exchanges.har"),
        "--report-ndjson-path",
        str(reports / "events.ndjson"),
        "--no-color",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": __name__}
    started = time.monotonic()
    # The working directory takes whatever schemathesis leaves behind; the repository gets nothing.
    finished = subprocess.run(
        argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=120 + 8 * EXAMPLES, check=False
    )
    seconds = time.monotonic() - started
    exchanges = json.loads((reports / "exchanges.har").read_text())["log"]["entries"]
    operations = set()
    for line in (reports / "events.ndjson").read_text().splitlines():
        event = json.loads(line).get("ScenarioFinished")
        if event and event["phase"] in ("coverage", "fuzzing") and event["status"] in ("success", "failure"):
            operations.add(event["recorder"]["label"])
    return Pass(name, finished.returncode, finished.stdout + finished.stderr, seconds, exchanges, frozenset(operations))


def log_in(*, base: str) -> dict[str, str]:
    """An operator's session through the admin's login form: the headers that carry it and its CSRF token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/admin/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    form = urllib.parse.urlencode(
        {"username": "operator", "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/admin/"}
    ).encode()
    opener.open(urllib.request.Request(f"{base}/admin/login/", data=form), timeout=10).read()
    cookies = {cookie.name: cookie.value for cookie in jar}
    assert "sessionid" in cookies, "the operator's login failed"
    return {
        "Cookie": f"sessionid={cookies['sessionid']}; csrftoken={cookies['csrftoken']}",
        "X-CSRFToken": cookies["csrftoken"],
    }


def fetch_schema(*, url: str, key: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def seed_data() -> str:
    """An ingest key, the operator, and alerts, metrics and a running run for the operations to find."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from monitoring.models import Alert
    from monitoring.services.metrics import MetricInput, record_metrics
    from monitoring.services.runs import record_run
    from monitoring.services.tokens import create_ingest_token

    # Hashed as the server hashes (the test settings' fast MD5 hasher is unknown to it).
    hashed = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    get_user_model().objects.create(username="operator", password=hashed, is_staff=True)
    for number, severity in enumerate(("critical", "high", "medium")):
        Alert.objects.create(
            fingerprint=f"hostile-{number}", rule_name="hostile", source=f"s{number}", severity=severity, summary="x"
        )
    record_metrics(metrics=[MetricInput(source="acled", geocoding_attempts=100, geocoding_successes=90)])
    record_run(source="acled", stage="scrape")
    _, key = create_ingest_token(name="hostile-http")
    return key


@pytest.mark.timeout(300 + 20 * EXAMPLES)
def test_generated_hostile_requests_get_no_5xx_and_only_json_errors(tmp_path):
    key = seed_data()
    with running_cluster(
        logs=tmp_path,
        servers=("a",),
        broadcasters=0,
        MONITORING_PUBLIC_READ="0",
        MONITORING_METRICS_TOKEN="hostile-http-scrape",
        # This test fuzzes input, not rates: no limit may turn its answers into 429s
        # (monitoring/tests/api/test_throttling.py tests the limits).
        API_THROTTLE_INGEST="off",
        API_THROTTLE_USER="off",
        API_THROTTLE_ANON="off",
        # Plain http in the test: cookies marked Secure would never come back.
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
    ) as cluster:
        base = f"http://127.0.0.1:{cluster.port('a')}"
        schema = fetch_schema(url=f"{base}{SCHEMA}?format=json", key=key)
        (tmp_path / "openapi.json").write_text(json.dumps(schema))
        documented = {f"{method.upper()} {path}" for path, item in schema["paths"].items() for method in item}
        authenticated = run_schemathesis(
            name="authenticated",
            location=f"{base}{SCHEMA}?format=json",
            workdir=tmp_path,
            headers={"Authorization": f"Token {key}", **log_in(base=base)},
        )
        # The schema is private too: the anonymous pass reads the one just served.
        anonymous = run_schemathesis(
            name="anonymous", location=str(tmp_path / "openapi.json"), url=base, workdir=tmp_path, headers={}
        )
        server_log = cluster.log_tail("a", lines=30)
        counted = {
            status: cluster.metric_total("a", "conflict_monitor_http_responses_total", status=status)
            for status in ("2xx", "4xx", "5xx")
        }

    for run in (authenticated, anonymous):
        assert run.exit_code == 0, f"schemathesis found problems in the {run.name} pass:\n{run.output[-6000:]}"
        assert run.operations == documented, f"{run.name}: untested {sorted(documented - run.operations)}"
        assert not [status for status in run.statuses() if status >= 500], f"{run.name}:\n{server_log}"
        assert run.problems() == [], run.problems()[:20]
    # Authenticated, every operation got past authentication at least once: its input was fuzzed.
    admitted = {
        (entry["request"]["method"], urllib.parse.urlsplit(entry["request"]["url"]).path)
        for entry in authenticated.exchanges
        if entry["response"]["status"] not in (401, 403)
    }
    for operation in documented:
        method, template = operation.split(" ", 1)
        pattern = re.compile(re.sub(r"\{\w+\}", "[^/]+", template) + "$")
        assert any(m == method and pattern.match(path) for m, path in admitted), f"{operation}: always refused"
    # Anonymous, nothing but liveness and readiness answered with a success.
    succeeded = {
        urllib.parse.urlsplit(entry["request"]["url"]).path
        for entry in anonymous.exchanges
        if entry["response"]["status"] < 400
    }
    assert succeeded <= PUBLIC, sorted(succeeded - PUBLIC)
    # The server's own count agrees: no 5xx, and at least every 4xx the two passes saw.
    seen_4xx = sum(n for run in (authenticated, anonymous) for s, n in run.statuses().items() if 400 <= s < 500)
    assert counted["5xx"] == 0 and counted["4xx"] >= seen_4xx, (counted, seen_4xx)
    print(
        f"\nschemathesis over {len(documented)} operations, {EXAMPLES} examples per operation, seed {SEED}, "
        f"checks {', '.join(CHECKS)}\n{authenticated.figures()}\n{anonymous.figures()}\nthe server counted "
        f"{counted['2xx']:,.0f} 2xx, {counted['4xx']:,.0f} 4xx, {counted['5xx']:,.0f} 5xx "
        f"(conflict_monitor_http_responses_total)"
    )
