#!/usr/bin/env python3
"""A page of s2s.deliveries for ./run-demo --serve (Python standard library only).

    deliveries_page.py --port-file FILE --psql PSQL --host DIR --pgport N

Serves, on 127.0.0.1 only, an HTML page with the rows of s2s.deliveries (newest first),
s2s.queue_stats and, for one delivery (/?id=N), its s2s.attempts and s2s.preview (secrets
masked): what a person clicking through the demo shop wants to see after each click. It
reads the database with psql as the cluster's superuser, through the throwaway cluster's
socket directory; it only ever runs fixed SELECTs (the id is bound as an integer).
"""
import argparse
import html
import http.server
import os
import subprocess
import urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--port-file", required=True)
ap.add_argument("--psql", required=True)
ap.add_argument("--host", required=True)
ap.add_argument("--pgport", required=True)
args = ap.parse_args()


def query(sql):
    """Rows of a SELECT as lists of strings (header first); an error as one row."""
    p = subprocess.run(
        [args.psql, "-X", "-q", "-A", "-F", "\x1f", "-R", "\x1e", "-P", "footer=off",
         "-P", "null=NULL", "-h", args.host, "-p", args.pgport, "-U", "postgres",
         "-d", "postgres", "-c", sql],
        capture_output=True, text=True, timeout=10)
    if p.returncode != 0:
        return [["error"], [p.stderr.strip()]]
    return [r.split("\x1f") for r in p.stdout.rstrip("\n").split("\x1e") if r != ""]


def table(rows, link_first=False):
    if not rows:
        return "<p>(nothing)</p>"
    out = ["<table><tr>" + "".join("<th>%s</th>" % html.escape(h) for h in rows[0]) + "</tr>"]
    for r in rows[1:]:
        cells = []
        for i, v in enumerate(r):
            v = html.escape(v)
            if link_first and i == 0:
                v = '<a href="/?id=%s">%s</a>' % (v, v)
            cells.append("<td>%s</td>" % v)
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table>"


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>s2s.deliveries</title>
<meta http-equiv="refresh" content="5">
<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:90%%}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#eee}</style></head><body>
<h1>s2s_tracking demo: the queue</h1>
<p>Refreshes every 5 seconds. Click a delivery's id for its attempts and the exact request
(<code>s2s.preview</code>, secrets masked). <a href="/">all deliveries</a></p>
%s</body></html>"""


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/":
            self.send_error(404)
            return
        params = urllib.parse.parse_qs(url.query)
        parts = []
        ident = params.get("id", [""])[0]
        if ident.isdigit() and len(ident) < 18:
            parts.append("<h2>delivery %s: attempts</h2>" % ident)
            parts.append(table(query(
                "SELECT attempt, started_at, round(duration_ms::numeric, 1) AS ms, http_status, "
                "error, left(response, 200) AS response FROM s2s.attempts "
                "WHERE delivery_id = %d ORDER BY attempt" % int(ident))))
            parts.append("<h2>the request (s2s.preview)</h2>")
            parts.append(table(query(
                "SELECT method, url, array_to_string(headers, E'\\n') AS headers, body "
                "FROM s2s.preview(%d)" % int(ident))))
        parts.append("<h2>s2s.queue_stats</h2>")
        parts.append(table(query(
            "SELECT endpoint, kind, enabled, paused, pending, sending, retrying, sent, failed, "
            "skipped, oldest_waiting_age, last_success_at FROM s2s.queue_stats ORDER BY endpoint")))
        parts.append("<h2>s2s.deliveries (newest first, at most 200)</h2>")
        parts.append(table(query(
            "SELECT id, endpoint, kind, conversion_id AS order_id, event_id, amount, currency, "
            "click_ids, user_id, status, attempts, last_http_status AS http, last_error, "
            "created_at, sent_at FROM s2s.deliveries ORDER BY id DESC LIMIT 200"),
            link_first=True))
        body = (PAGE % "\n".join(parts)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
server.serve_forever()
