"""A real forwarding HTTP proxy for client tests: nginx's body limit, outages, cuts."""

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

PROXY_BODY_LIMIT = 1024 * 1024  # nginx's default client_max_body_size


def proxy_to(
    upstream: str,
    *,
    body_limit: int = PROXY_BODY_LIMIT,
    status: int | None = None,
    fault: Callable[[BaseHTTPRequestHandler, int], bool] | None = None,
):
    """Start the proxy; `fault(handler, length)` may answer or cut a request itself
    (returning True), before anything reaches the upstream server."""
    target = urlsplit(upstream)

    class Proxy(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if fault is not None and fault(self, length):
                self.close_connection = True
                return
            if status is not None or length > body_limit:
                # nginx reads and drops the body it refuses (lingering close), so the
                # client finishes sending and reads the answer.
                remaining = length
                while remaining:
                    remaining -= len(self.rfile.read(min(remaining, 1 << 20)) or b"x" * remaining)
                code = status or 413
                page = f"<html><body><h1>{code}</h1><hr>nginx</body></html>".encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(page)
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else None
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = dict(self.headers.items())  # Host kept, as nginx is told to
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
