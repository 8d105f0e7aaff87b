"""daphne's HTTP request, hardened against input that daphne or Twisted answered without the application.

- Twisted parses the body of every POST sent as a form (``application/x-www-form-urlencoded``,
  ``multipart/form-data``) into ``request.args`` before daphne sees the request, and daphne never reads
  them. A multipart body Twisted cannot parse (JSON sent as multipart, a missing boundary) was answered
  with a bare ``400``, without a header or a body. Unparsed, the body goes to the application as it
  came, and the API answers it as any other body it does not take: a JSON ``415``.
- daphne decodes a few headers itself (``Daphne-Root-Path`` as ASCII; with ``--proxy-headers`` the
  forwarded address, port and scheme as UTF-8), and a value it could not decode ended in its ``500``
  page. Such a request is a ``400``.
- daphne's own error pages are HTML; under ``/api/`` they are the API's JSON error body.
"""

from __future__ import annotations

import json

from daphne import http_protocol

API_PREFIX = b"/api/"
ROOT_PATH_HEADER = b"daphne-root-path"
ERROR_CODES = {400: "bad_request", 500: "server_error", 503: "service_unavailable"}


class WebRequest(http_protocol.WebRequest):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    def process(self):
        if self._undecodable_header() is not None:
            self.basic_error(400, b"Bad Request", "A header value is not text.")
            return None
        return super().process()

    def _undecodable_header(self) -> bytes | None:
        """The name of a header daphne would fail to decode, if the request has one."""
        codecs = {ROOT_PATH_HEADER: "ascii"}
        server = self.server
        for name in (
            server.proxy_forwarded_address_header,
            server.proxy_forwarded_port_header,
            server.proxy_forwarded_proto_header,
        ):
            if name:
                codecs[name.lower().encode()] = "utf-8"
        for name, values in self.requestHeaders.getAllRawHeaders():
            codec = codecs.get(name.lower())
            for value in values if codec else ():
                try:
                    value.decode(codec)
                except UnicodeDecodeError:
                    return name
        return None

    def basic_error(self, status: int, status_text: bytes, body: str) -> None:
        if not (self.uri or b"").startswith(API_PREFIX):
            super().basic_error(status, status_text, body)
            return
        content = json.dumps({"error": ERROR_CODES.get(status, "error"), "detail": body}).encode()
        headers = [(b"Content-Type", b"application/json"), (b"Content-Length", str(len(content)).encode())]
        self.handle_reply({"type": "http.response.start", "status": status, "headers": headers})
        self.handle_reply({"type": "http.response.body", "body": content})


def install() -> None:
    """Serve HTTP with this request; call before daphne's server starts."""
    # daphne's factory builds every request from its module's ``WebRequest``, looked up by name.
    http_protocol.WebRequest = WebRequest
