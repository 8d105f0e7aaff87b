"""Request-body limit for API writes, enforced in ASGI before Django spools the body to disk.

Django's ASGI handler reads a whole request body before any view runs, and a chunked upload (no
Content-Length) reaches DRF as an empty body. This middleware reads API bodies itself, refuses
one over the limit with a JSON 413 at once, and hands Django a body with a correct Content-Length.
"""

from __future__ import annotations

from django.conf import settings

from monitoring.errors import error_json

WRITE_METHODS = {"POST", "PUT", "PATCH"}


class BodySizeLimitMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        limit = settings.MONITORING_INGEST_MAX_BODY_BYTES
        headers = [(name, value) for name, value in scope["headers"] if name.lower() != b"content-length"]
        declared = next((v for n, v in scope["headers"] if n.lower() == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(send, limit: int) -> None:
    body = error_json(code="payload_too_large", detail=f"Request body exceeds {limit} bytes.")
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
