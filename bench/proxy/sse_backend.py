"""A stand-in app for the proxy measurements: Python's http.server, threaded.

GET /events  a Server-Sent Events stream, one event every 0.5 s with an increasing id
             (it resumes after Last-Event-ID) and the backend's name in the data.
GET /        a short text answer naming the backend (the load loop's request).
GET /readyz  200.
Run: python3 sse_backend.py NAME PORT
"""

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[1]
PORT = int(sys.argv[2])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/events"):
            self.events()
            return
        body = f"{NAME}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def events(self):
        last = int(self.headers.get("Last-Event-ID") or 0)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            while True:
                last += 1
                self.wfile.write(f"id: {last}\ndata: {NAME}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 256  # 100 streams connect at once
ThreadingHTTPServer(("", PORT), Handler).serve_forever()
