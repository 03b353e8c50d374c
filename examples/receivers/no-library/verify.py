"""Verifying a hookflow call with no library: the whole Standard Webhooks check."""
import base64, hashlib, hmac, time


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """`secret` is the action's whsec_... secret; `headers` have lower-case names."""
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(ts)) > 300:  # refuse replays of old calls
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    # Several signatures (space-separated) while a rotated secret is still valid: any may match.
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())
