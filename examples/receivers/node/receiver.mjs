// A webhook receiver that verifies hookflow's signed calls with the official Standard Webhooks
// library (npm install).
//
//     WEBHOOK_SECRET=whsec_... PORT=9000 node receiver.mjs
//
// Answers 204 to a call whose signature verifies and 401 to anything else. PORT=0 picks a free
// port; the first line printed says which.

import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const webhook = new Webhook(process.env.WEBHOOK_SECRET); // the action's secret, whsec_...
const seen = new Set(); // webhook-id is stable across retries: keep it durably in a real receiver

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    // Verify the raw body, before parsing: re-serialised JSON would not match.
    const body = Buffer.concat(chunks).toString("utf8");
    let payload;
    try {
      // Checks the signature and the timestamp (5 minutes), then parses the JSON body.
      payload = webhook.verify(body, req.headers);
    } catch (err) {
      console.log("refused:", err.message);
      res.writeHead(401).end();
      return;
    }
    const id = req.headers["webhook-id"];
    if (!seen.has(id)) {
      seen.add(id);
      console.log("verified:", id, JSON.stringify(payload));
    }
    res.writeHead(204).end();
  });
});
server.listen(Number(process.env.PORT ?? 9000), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
