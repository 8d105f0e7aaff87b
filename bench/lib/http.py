"""Keep-alive HTTP clients for the load generators: blocking (``http.client``) and on asyncio streams."""

from __future__ import annotations

import asyncio
import http.client
import time


class KeepAliveClient:
    """One keep-alive connection to 127.0.0.1; counts reconnects so a server that drops keep-alive shows up."""

    def __init__(self, port: int, *, timeout: float = 300, headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.headers = headers or {}
        self.requests = 0
        self.reconnects = 0

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[float, http.client.HTTPResponse, bytes]:
        """(milliseconds until the whole body was read, the response, its body)."""
        if self.requests and self.conn.sock is None:
            self.reconnects += 1
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
        response = self.conn.getresponse()
        payload = response.read()
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.requests += 1
        return elapsed_ms, response, payload

    def close(self) -> None:
        self.conn.close()


async def http_request(
    port: int, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None, conn=None
) -> tuple[int, bytes]:
    """Minimal HTTP/1.1 on asyncio streams (``conn`` = (reader, writer) for keep-alive)."""
    own = conn is None
    reader, writer = conn if conn is not None else await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        response_headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
        if response_headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await reader.readline()).strip(), 16):
                chunks.append(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()
            return status, b"".join(chunks)
        return status, await reader.readexactly(int(response_headers.get("content-length", 0)))
    finally:
        if own:
            writer.close()
