#!/usr/bin/env python3
"""receiver.py: the test HTTP receiver that stands in for Affilae and Swaarm.

It records exactly what arrived (method, path, raw query, headers in order with their raw
names, body, time) and answers as it is told, so that TAP and unit tests can check the wire
format and make the sender face errors, slowness, hangs and dropped connections.

    python3 receiver.py --port-file FILE [--host 127.0.0.1] [--verbose]

binds port 0 (the kernel picks a free port), writes the port to FILE (atomically) and
serves until SIGTERM or SIGINT. Python 3 standard library only.

Control paths (never recorded):
    GET  /__requests   JSON list of the recorded requests, oldest first (?since=N: from the
                       N-th on, counting from 0)
    GET  /__stats      JSON {"requests", "in_flight", "max_in_flight", "connections"}
    POST /__reset      forgets requests, statistics and behaviours
    POST /__behave     JSON {"status": 503, "delay_ms": 0,
                             "mode": "normal|hang|close|big|echo", "echo_pad": 0,
                             "retry_after": "2", "body": "...", "times": N,
                             "path_prefix": "/postback", "big_bytes": 20000000,
                             "headers": {"X-Name": "value"}}
Every key is optional. A behaviour applies to requests whose path starts with path_prefix
(default: every path); the longest matching prefix wins, and a new behaviour for the same
prefix replaces the old one. With "times" it applies to the next N matching requests and is
then dropped (the default answer comes back); without, until /__reset.

Default answers: 200 "OK"; GET /click answers 200 {"id": "<unique id>"} as Swaarm's
/click?no_redirect=true does. Modes: hang never answers (until the client gives up or
the receiver stops), close closes the connection without answering, big sends a body of
big_bytes bytes (streamed, so the receiver itself stays small), echo answers (with the
status) what an error page of a proxy or firewall shows: echo_pad bytes of 'x', the request
line as received, the same with lower-case %xx escapes, the same decoded, the headers as
received and the request body.
"""

import argparse
import json
import os
import re
import select
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The longest a "hang" lasts when the client never gives up: bounded, like every loop.
HANG_LIMIT_S = 600


class State:
    """Everything the handlers share, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.reset()

    def reset(self):
        self.requests = []
        self.behaviours = {}        # path_prefix -> dict
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0
        self.click_seq = 0

    def pick_behaviour(self, path):
        """The behaviour for this request (consuming one of its "times"), or None."""
        best = None
        for prefix, b in self.behaviours.items():
            if path.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        if best is None:
            return None
        b = self.behaviours[best]
        if b.get("times") is not None:
            b["times"] -= 1
            if b["times"] <= 0:
                del self.behaviours[best]
        return b


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    verbose = False

    def version_string(self):
        return "s2s-test-receiver/1"

    def setup(self):
        super().setup()
        with STATE.lock:
            STATE.connections += 1
            self.conn_id = STATE.connections

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("receiver: %s\n" % (fmt % args))

    # Every method goes through one handler.
    def do_GET(self):
        self.handle_any()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers, up to the empty line
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_simple(self, status, body, content_type="text/plain", extra=None):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_control(self, path, query, body):
        if path == "/__requests" and self.command == "GET":
            since = 0
            for part in query.split("&"):
                if part.startswith("since=") and part[6:].isdigit():
                    since = int(part[6:])
            with STATE.lock:
                data = json.dumps(STATE.requests[since:])
            self.send_simple(200, data, "application/json")
        elif path == "/__stats" and self.command == "GET":
            with STATE.lock:
                data = json.dumps({"requests": len(STATE.requests),
                                   "in_flight": STATE.in_flight,
                                   "max_in_flight": STATE.max_in_flight,
                                   "connections": STATE.connections})
            self.send_simple(200, data, "application/json")
        elif path == "/__reset" and self.command == "POST":
            with STATE.lock:
                STATE.reset()
            self.send_simple(200, "reset")
        elif path == "/__behave" and self.command == "POST":
            try:
                b = json.loads(body.decode("utf-8") or "{}")
                if not isinstance(b, dict):
                    raise ValueError("a JSON object is expected")
                if b.get("mode", "normal") not in ("normal", "hang", "close", "big", "echo"):
                    raise ValueError("unknown mode %r" % b.get("mode"))
                if b.get("times") is not None:
                    b["times"] = int(b["times"])
            except ValueError as e:
                self.send_simple(400, "bad behaviour: %s" % e)
                return
            with STATE.lock:
                STATE.behaviours[b.get("path_prefix") or ""] = b
            self.send_simple(200, "ok")
        else:
            self.send_simple(404, "unknown control path")

    def handle_any(self):
        path, _, query = self.path.partition("?")
        body = self.read_body()
        if path.startswith("/__"):
            self.handle_control(path, query, body)
            return

        now = time.time()
        with STATE.lock:
            STATE.requests.append({
                "method": self.command,
                "path": path,
                "query": query,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("utf-8", errors="replace"),
                "time": now,
                "connection": self.conn_id,
                "http_version": self.request_version,
            })
            STATE.in_flight += 1
            STATE.max_in_flight = max(STATE.max_in_flight, STATE.in_flight)
            b = STATE.pick_behaviour(path) or {}
        try:
            self.answer(path, b, body)
        finally:
            with STATE.lock:
                STATE.in_flight -= 1

    def echo(self, body):
        """The request as an error page quotes it (mode echo)."""
        line = self.requestline
        lower = re.sub(r"%[0-9A-Fa-f]{2}", lambda m: m.group(0).lower(), line)
        parts = ["x" * self._echo_pad]
        parts += [line, "\n", lower, "\n", urllib.parse.unquote(line), "\n"]
        parts += ["%s: %s\n" % (k, v) for k, v in self.headers.items()]
        parts += ["\n", body.decode("utf-8", errors="replace")]
        return "".join(parts)

    def answer(self, path, b, req_body=b""):
        delay = float(b.get("delay_ms") or 0) / 1000.0
        if delay > 0:
            STATE.stopping.wait(delay)
        mode = b.get("mode") or "normal"
        if mode == "hang":
            self.hang()
            return
        if mode == "close":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return

        status = int(b.get("status") or 200)
        extra = dict(b.get("headers") or {})
        if b.get("retry_after") is not None:
            extra["Retry-After"] = str(b["retry_after"])

        if mode == "big":
            size = int(b.get("big_bytes") or 20000000)
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            chunk = b"x" * 65536
            sent = 0
            try:
                while sent < size and self.command != "HEAD":
                    n = min(len(chunk), size - sent)
                    self.wfile.write(chunk[:n])
                    sent += n
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            return

        if mode == "echo":
            self._echo_pad = int(b.get("echo_pad") or 0)
            body, ctype = self.echo(req_body), "text/plain"
        elif b.get("body") is not None:
            body, ctype = b["body"], "text/plain"
        elif path == "/click" and self.command == "GET":
            with STATE.lock:
                STATE.click_seq += 1
                seq = STATE.click_seq
            body = json.dumps({"id": "clk%d-%s" % (seq, uuid.uuid4().hex[:12])})
            ctype = "application/json"
        else:
            body, ctype = "OK", "text/plain"
        self.send_simple(status, body, ctype, extra)

    def hang(self):
        """Answers nothing until the client closes its end (or the receiver stops)."""
        self.close_connection = True
        sock = self.connection
        deadline = time.time() + HANG_LIMIT_S
        while not STATE.stopping.is_set() and time.time() < deadline:
            try:
                r, _, _ = select.select([sock], [], [], 0.2)
                if r and not sock.recv(65536):
                    return          # the client gave up
            except OSError:
                return


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Many concurrent clients connect at once in the tests: a deep accept queue.
    request_queue_size = 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    Handler.verbose = args.verbose
    Server.address_family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    server = Server((args.host, 0), Handler)
    port = server.server_address[1]

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, args.port_file)

    def stop(signum, frame):
        STATE.stopping.set()
        # shutdown() waits for serve_forever to return: not from the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        STATE.stopping.set()
        server.server_close()


if __name__ == "__main__":
    main()
