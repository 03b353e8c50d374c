//! A webhook receiver that verifies hookflow's signed calls with the official Standard Webhooks
//! library.
//!
//!     WEBHOOK_SECRET=whsec_... PORT=9000 cargo run
//!
//! Answers 204 to a call whose signature verifies and 401 to anything else.

use std::collections::HashSet;

use standardwebhooks::Webhook;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let secret = std::env::var("WEBHOOK_SECRET")?; // the action's secret, whsec_...
    let webhook = Webhook::new(&secret)?;
    let port = std::env::var("PORT").unwrap_or_else(|_| "9000".into());
    let server = tiny_http::Server::http(format!("127.0.0.1:{port}"))?;
    println!("listening on http://127.0.0.1:{port}");
    // webhook-id is stable across retries: keep it durably in a real receiver.
    let mut seen = HashSet::new();
    for mut request in server.incoming_requests() {
        // Verify the raw bytes, before parsing: re-serialised JSON would not match.
        let mut body = Vec::new();
        request.as_reader().read_to_end(&mut body)?;
        let mut headers = http::HeaderMap::new();
        for h in request.headers() {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(h.field.as_str().as_str().as_bytes()),
                http::HeaderValue::from_str(h.value.as_str()),
            ) {
                headers.append(name, value);
            }
        }
        // Checks the signature and the timestamp (5 minutes).
        let status = match webhook.verify(&body, &headers) {
            Ok(()) => {
                let id = headers["webhook-id"].to_str().unwrap_or_default().to_owned();
                if seen.insert(id.clone()) {
                    println!("verified: {id} {}", String::from_utf8_lossy(&body));
                }
                204
            }
            Err(err) => {
                println!("refused: {err}");
                401
            }
        };
        request.respond(tiny_http::Response::empty(status))?;
    }
    Ok(())
}
