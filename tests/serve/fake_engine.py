"""A stand-in OpenAI-compatible engine, run as its own process (stdlib only) so that a test can make it slow or kill
it: `POST /v1/completions` answers `tok0 tok1 …` (max_tokens pieces), streamed as SSE chunks when asked, each piece
after `--token_seconds`, the whole answer after `--delay` seconds. It prints its port on the first line.

    python tests/serve/fake_engine.py --delay 5          # an engine slower than the front's --engine_timeout
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(delay: float, token_seconds: float) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(delay)
            pieces = [f"tok{k} " for k in range(body.get("max_tokens", 16))]
            if not body.get("stream"):
                answer = {"choices": [{"index": 0, "text": "".join(pieces), "finish_reason": "length"}]}
                data = json.dumps(answer | {"usage": {"completion_tokens": len(pieces)}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for k, piece in enumerate(pieces):
                finish = "length" if k == len(pieces) - 1 else None
                self._chunk({"choices": [{"index": 0, "text": piece, "finish_reason": finish}]})
                time.sleep(token_seconds)
            self._chunk("[DONE]")
            self.wfile.write(b"0\r\n\r\n")

        def _chunk(self, value: object) -> None:
            event = f"data: {value if isinstance(value, str) else json.dumps(value)}\n\n".encode()
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--token_seconds", type=float, default=0.0)
    args = parser.parse_args()
    serve(args.delay, args.token_seconds)
