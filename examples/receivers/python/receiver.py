"""A webhook receiver that verifies hookflow's signed calls with the official Standard Webhooks
library (pip install -r requirements.txt).

    WEBHOOK_SECRET=whsec_... PORT=9000 python receiver.py

Answers 204 to a call whose signature verifies and 401 to anything else.
"""

import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

WEBHOOK = Webhook(os.environ["WEBHOOK_SECRET"])  # the action's secret, whsec_...
SEEN = set()  # webhook-id is stable across retries: keep a durable set in a real receiver


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        # Verify the raw bytes, before parsing: re-serialised JSON would not match.
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            WEBHOOK.verify(body, headers)  # also refuses timestamps older than 5 minutes
        except WebhookVerificationError as e:
            print("refused:", e, flush=True)
            self.send_response(401)
            self.end_headers()
            return
        if headers["webhook-id"] not in SEEN:
            SEEN.add(headers["webhook-id"])
            print("verified:", headers["webhook-id"], json.loads(body), flush=True)
        self.send_response(204)
        self.end_headers()


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "9000"))
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
