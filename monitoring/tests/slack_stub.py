"""A local stand-in for Slack's Web API (``chat.postMessage``, ``chat.update``) that checks what it
is sent the way Slack does (bearer token, channel, JSON body) and records every call."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "xoxb-test-token"  # noqa: S105 (a test token for the stub)


class SlackStub:
    """``calls`` holds (method, body) of each accepted call; ``fail_next`` makes calls answer
    ``{"ok": false, "error": …}``; ``deleted`` timestamps answer ``message_not_found`` to updates."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.fail_next: list[str] = []
        self.deleted: set[str] = set()
        self._ts = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                method = self.path.rsplit("/", 1)[-1]
                answer = stub._answer(method, body, self.headers.get("Authorization"))
                raw = json.dumps(answer).encode()
                self.send_response(200)  # Slack answers 200 with ok: false for refused calls
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.api_url = f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def _answer(self, method: str, body: dict, auth: str | None) -> dict:
        if auth != f"Bearer {TOKEN}":
            return {"ok": False, "error": "invalid_auth"}
        if self.fail_next:
            return {"ok": False, "error": self.fail_next.pop(0)}
        if method not in ("chat.postMessage", "chat.update"):
            return {"ok": False, "error": "unknown_method"}
        if not body.get("channel") or not (body.get("text") or body.get("blocks")):
            return {"ok": False, "error": "invalid_arguments"}
        if method == "chat.update":
            if not body.get("ts") or body["ts"] in self.deleted:
                return {"ok": False, "error": "message_not_found"}
            self.calls.append((method, body))
            return {"ok": True, "channel": body["channel"], "ts": body["ts"], "text": body.get("text")}
        self._ts += 1
        ts = f"1700000000.{self._ts:06d}"
        self.calls.append((method, body))
        return {"ok": True, "channel": "C0ALERTS", "ts": ts, "message": {"text": body.get("text")}}

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> SlackStub:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
