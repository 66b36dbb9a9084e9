"""Replay the Responses fixtures through the official openai Python SDK.

Serves every expected stream (`*/*.out.sse`) and answer (`response/*.out.json`) from a local
HTTP server and reads them with `client.responses.create` (plain and `stream=True`) and
`client.responses.stream` (which checks item identities and needs `response.completed` for
`get_final_response`). Usage: `<venv>/bin/python sdk_check.py <this directory>`.
"""
import glob, json, sys, threading, http.server, os
from openai import OpenAI
ROOT = sys.argv[1]
current = {"body": b"", "ctype": "text/event-stream"}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("content-length", 0)); self.rfile.read(n)
        self.send_response(200); self.send_header("content-type", current["ctype"])
        self.send_header("content-length", str(len(current["body"]))); self.end_headers()
        self.wfile.write(current["body"])
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
client = OpenAI(base_url=f"http://127.0.0.1:{srv.server_port}/v1", api_key="x", max_retries=0)
bad = 0
for path in sorted(glob.glob(f"{ROOT}/*/*.out.sse")):
    current.update(body=open(path, "rb").read(), ctype="text/event-stream")
    try:
        n = sum(1 for _ in client.responses.create(model="m", input="hi", stream=True))
        with client.responses.stream(model="m", input="hi") as s:
            for ev in s: pass
            last = ev.type
            if last == "response.completed":
                final = s.get_final_response()
                summary = (final.status, final.output_text[:40], [o.type for o in final.output])
            else:
                summary = last
        print("ok  ", os.path.relpath(path, ROOT), n, summary)
    except Exception as e:
        bad += 1; print("FAIL", os.path.relpath(path, ROOT), type(e).__name__, e)
for path in sorted(glob.glob(f"{ROOT}/response/*.out.json")):
    current.update(body=open(path, "rb").read(), ctype="application/json")
    try:
        r = client.responses.create(model="m", input="hi")
        print("ok  ", os.path.relpath(path, ROOT), r.status, repr(r.output_text[:30]), r.usage and r.usage.total_tokens)
    except Exception as e:
        bad += 1; print("FAIL", path, type(e).__name__, e)
sys.exit(1 if bad else 0)
