// The same check in TypeScript, for a handler in your framework of choice: pass the raw body
// (not a re-serialised object) and the request's headers.

import { Webhook } from "standardwebhooks";

const webhook = new Webhook(process.env.WEBHOOK_SECRET!); // the action's secret, whsec_...

/** The verified payload; throws if the signature or the timestamp does not check out. */
export function verifyHookflowCall(
  rawBody: string,
  headers: Record<string, string>,
): unknown {
  return webhook.verify(rawBody, headers);
}
