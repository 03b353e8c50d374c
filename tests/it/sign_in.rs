//! Sign-in limits: failures count per account (from any address) and per client address
//! (across accounts); the client behind a trusted proxy is the one it forwards, and a peer
//! that is not trusted cannot choose its address with a header. The lock's end is tested
//! beside the limiter (`sign_in_limits`), with its clock in the test's hands.
//!
//! SQLite only: the limits live in memory, not in the database.

use reqwest::header::COOKIE;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

const PASSWORD: &str = "correct horse battery";

/// Posts the sign-in form as a browser would, through a proxy that says the client is
/// `forwarded_for` (an `X-Forwarded-For` header) when given.
async fn sign_in(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http.get(app.url("/login")).send().await.unwrap();
    let csrf_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("hookflow_login_csrf="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .expect("the form sets its CSRF cookie");
    let mut request = http
        .post(app.url("/login"))
        .header(COOKIE, format!("hookflow_login_csrf={csrf_cookie}"))
        .form(&[
            ("_csrf", csrf_cookie.as_str()),
            ("email", email),
            ("password", password),
            ("next", "/"),
        ]);
    if let Some(client) = forwarded_for {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await.unwrap()
}

async fn add_user(app: &TestApp, email: &str) {
    let (status, user) = app
        .post_json(
            "/api/v1/users",
            json!({"email": email, "role": "viewer", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
}

/// Whether the answer is a lock: 429, `Retry-After`, and the page says when to try again.
async fn assert_locked(answer: reqwest::Response, what: &str) {
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS, "{what}");
    let retry_after: u64 = answer.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{what}: {retry_after}");
    let page = answer.text().await.unwrap();
    // The lock ends 15 minutes after the first failure, so a slow machine may see 14 or 13.
    let minutes: u64 = page
        .split("Too many sign-in attempts. Try again in ")
        .nth(1)
        .and_then(|rest| rest.split(" minutes.").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{what}: the page says when to try again: {page}"));
    assert!((10..=15).contains(&minutes), "{what}: {minutes} minutes");
    assert_eq!(
        minutes,
        retry_after.div_ceil(60),
        "{what}: the page and Retry-After agree"
    );
}

#[tokio::test]
async fn an_account_locks_after_5_failures_from_different_addresses() {
    let app = spawn_app_with(Backend::Sqlite, &["--trusted-proxies", "127.0.0.1"]).await;
    add_user(&app, "ann@example.com").await;
    for n in 1..=5 {
        let client = format!("203.0.113.{n}");
        let answer = sign_in(&app, "ann@example.com", "wrong password", Some(&client)).await;
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "failure {n} is a wrong password"
        );
    }
    // From a sixth address, with the right password, and with the email written differently.
    let answer = sign_in(&app, " ANN@example.com", PASSWORD, Some("203.0.113.6")).await;
    assert_locked(answer, "the account").await;
    // An account nobody has locks the same way: the answers do not tell which exist.
    for n in 1..=5 {
        let client = format!("198.51.100.{n}");
        sign_in(&app, "nobody@example.com", "wrong password", Some(&client)).await;
    }
    let answer = sign_in(&app, "nobody@example.com", "x", Some("198.51.100.9")).await;
    assert_locked(answer, "an account that does not exist").await;
    // Other accounts from those addresses are not locked.
    add_user(&app, "bob@example.com").await;
    let answer = sign_in(&app, "bob@example.com", PASSWORD, Some("203.0.113.1")).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_address_locks_after_20_failures_across_accounts_and_only_that_address() {
    let app = spawn_app_with(Backend::Sqlite, &["--trusted-proxies", "127.0.0.0/8"]).await;
    add_user(&app, "ann@example.com").await;
    for n in 1..=20 {
        let email = format!("guess{n}@example.com");
        let answer = sign_in(&app, &email, "wrong password", Some("203.0.113.7")).await;
        assert_eq!(answer.status(), StatusCode::OK, "failure {n}");
    }
    let answer = sign_in(&app, "ann@example.com", PASSWORD, Some("203.0.113.7")).await;
    assert_locked(answer, "the address").await;
    // Another client behind the same proxy signs in.
    let answer = sign_in(&app, "ann@example.com", PASSWORD, Some("203.0.113.8")).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    // A client that forwards its own X-Forwarded-For through the proxy is still itself: the
    // proxy's hop (the rightmost) counts, not the one the client wrote.
    let answer = sign_in(
        &app,
        "ann@example.com",
        PASSWORD,
        Some("198.51.100.1, 203.0.113.7"),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn without_a_trusted_proxy_the_forwarded_header_is_ignored() {
    // The default: no trusted proxies. The test's connections come from 127.0.0.1.
    let app = spawn_app(Backend::Sqlite).await;
    add_user(&app, "ann@example.com").await;
    for n in 1..=20 {
        let email = format!("guess{n}@example.com");
        let forged = format!("203.0.113.{n}");
        sign_in(&app, &email, "wrong password", Some(&forged)).await;
    }
    // Every failure counted against the peer, whatever the header claimed.
    let answer = sign_in(&app, "ann@example.com", PASSWORD, Some("198.51.100.1")).await;
    assert_locked(answer, "the peer's address").await;
}

#[tokio::test]
async fn a_proxy_that_is_not_listed_is_not_believed() {
    let app = spawn_app_with(Backend::Sqlite, &["--trusted-proxies", "10.0.0.0/8"]).await;
    add_user(&app, "ann@example.com").await;
    for n in 1..=20 {
        let email = format!("guess{n}@example.com");
        let forged = format!("203.0.113.{n}, 10.0.0.1");
        sign_in(&app, &email, "wrong password", Some(&forged)).await;
    }
    let answer = sign_in(&app, "ann@example.com", PASSWORD, None).await;
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_success_resets_the_account() {
    let app = spawn_app(Backend::Sqlite).await;
    add_user(&app, "ann@example.com").await;
    for _ in 0..4 {
        sign_in(&app, "ann@example.com", "wrong password", None).await;
    }
    let answer = sign_in(&app, "ann@example.com", PASSWORD, None).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    for _ in 0..4 {
        let answer = sign_in(&app, "ann@example.com", "wrong password", None).await;
        assert_eq!(answer.status(), StatusCode::OK, "the count started again");
    }
}
