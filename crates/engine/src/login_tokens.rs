//! Login tokens for platform APIs whose clients sign in with a user's credentials (Skladon's
//! `POST /v21/users/login`, whose answer is the `authorization: Bearer <JWT>` its webhook
//! routes take beside `x-api-key`).
//!
//! A token is a JWT (HS256) naming the user and the one shop it acts for, signed with a key
//! derived from the server's secret key: every node sharing that key accepts it, and no table
//! holds it. It is good only on the platform API it was issued for, never on `/api/v1`. It
//! stops working when it expires, when its user is deleted, loses the shop, or changes their
//! password (the claims carry a fingerprint of the password hash), and when the user's role
//! changes, the current role applies.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::accounts::{token_digest, Principal};
use crate::model::{ShopId, Timestamp, UserId};
use crate::service::{Engine, EngineError};

/// How long a login token is good for.
pub const LOGIN_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// The JWT header every login token has.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// A token handed out by a login.
#[derive(Debug, Clone)]
pub struct LoginToken {
    pub token: String,
    pub expires_at: Timestamp,
}

/// What a login came to.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    Token(LoginToken),
    /// The email or the password is wrong (the same answer either way).
    BadCredentials,
    /// The credentials are right, but the user may not act for the shop.
    OtherShop,
}

/// The claims of a login token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user's id.
    sub: i64,
    email: String,
    /// The shop the token acts for.
    shop: i64,
    /// The platform API it is good for (`"skladon"`).
    aud: String,
    /// Issued and expiry times, in seconds since the epoch (as JWTs count).
    iat: i64,
    exp: i64,
    /// The first bytes of the SHA-256 of the password hash: a new password ends the token.
    pwd: String,
}

impl Engine {
    /// Signs a user in for `shop` on the platform API `audience`.
    pub async fn login_for_shop(
        &self,
        email: &str,
        password: &str,
        shop: ShopId,
        audience: &str,
    ) -> Result<LoginOutcome, EngineError> {
        let key = self.login_key()?;
        let Some(user) = self.check_credentials(email, password).await? else {
            return Ok(LoginOutcome::BadCredentials);
        };
        if !Principal::of(&user).sees_shop(shop) {
            return Ok(LoginOutcome::OtherShop);
        }
        let Some((_, hash)) = self.store.user_by_email(&user.email).await? else {
            return Ok(LoginOutcome::BadCredentials);
        };
        let now = Timestamp::now();
        let expires_at = now.plus_millis(LOGIN_TOKEN_TTL.as_millis() as i64);
        let claims = Claims {
            sub: user.id.0,
            email: user.email.clone(),
            shop: shop.0,
            aud: audience.to_owned(),
            iat: now.0 / 1000,
            exp: expires_at.0 / 1000,
            pwd: fingerprint(&hash),
        };
        let payload = serde_json::to_vec(&claims).expect("claims always serialise");
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = URL_SAFE_NO_PAD.encode(sign(&key, &signed).finalize().into_bytes());
        Ok(LoginOutcome::Token(LoginToken {
            token: format!("{signed}.{signature}"),
            expires_at,
        }))
    }

    /// Who a login token for `audience` acts as, and for which shop; `None` when it is not
    /// one (forged, expired, for another API, or its user changed).
    pub async fn principal_for_login_token(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<Option<(Principal, ShopId)>, EngineError> {
        let Some(key) = self.store.login_token_key() else {
            return Ok(None);
        };
        let Some((signed, signature)) = token.rsplit_once('.') else {
            return Ok(None);
        };
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return Ok(None);
        };
        if sign(&key, signed).verify_slice(&signature).is_err() {
            return Ok(None);
        }
        let Some((header, payload)) = signed.split_once('.') else {
            return Ok(None);
        };
        if header != URL_SAFE_NO_PAD.encode(HEADER) {
            return Ok(None);
        }
        let Some(claims) = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice::<Claims>(&p).ok())
        else {
            return Ok(None);
        };
        if claims.aud != audience || claims.exp * 1000 <= Timestamp::now().0 {
            return Ok(None);
        }
        let Some((user, hash)) = self.store.user_by_email(&claims.email).await? else {
            return Ok(None);
        };
        let shop = ShopId(claims.shop);
        let principal = Principal::of(&user);
        let valid = user.id == UserId(claims.sub)
            && fingerprint(&hash) == claims.pwd
            && principal.sees_shop(shop);
        Ok(valid.then_some((principal, shop)))
    }

    fn login_key(&self) -> Result<[u8; 32], EngineError> {
        self.store
            .login_token_key()
            .ok_or_else(|| EngineError::Invalid {
                field: "login".into(),
                message: "this server has no secret key to sign login tokens with".into(),
            })
    }
}

fn sign(key: &[u8; 32], message: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message.as_bytes());
    mac
}

fn fingerprint(password_hash: &str) -> String {
    token_digest(password_hash)[..16].to_owned()
}
