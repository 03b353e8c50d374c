"""A webhook receiver that verifies hookflow's signed calls with the official Standard Webhooks
library (pip install -r requirements.txt).

    WEBHOOK_SECRET=whsec_... PORT=9000 python receiver.py

Answers 204 to a call whose signature verifies and 401 to anything else. PORT=0 picks a free
port; the first line printed says which.
"""

import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

WEBHOOK = Webhook(os.environ["WEBHOOK_SECRET"])  # the action's secret, whsec_...
SEEN = set()  # webhook-id is stable across retries: keep a durable set in a real receiver


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # a GET action's calls carry no body, and verify the same way
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
            # Verified: now parse the body (JSON, XML or text, as the action's payload says).
            print("verified:", headers["webhook-id"], body.decode("utf-8"), flush=True)
        self.send_response(204)
        self.end_headers()

    do_GET = do_POST

    def log_message(self, format, *args):
        pass  # one line per call is printed above


if __name__ == "__main__":
    server = HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "9000"))), Receiver)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
