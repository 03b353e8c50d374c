//! Accounts: users with roles, their API tokens and sign-in sessions, and the [`Principal`]
//! every request acts as.
//!
//! Roles follow ShopCtrl, where managing webhooks needs the shop owner admin role: an `admin`
//! sees every shop and manages users; a `shop_owner_admin` manages triggers, the queue and the
//! alerts of the shops assigned to them; a `viewer` reads (the assigned shops, or every shop
//! when none are assigned) and changes nothing.
//!
//! Passwords are argon2id hashes. API tokens and session tokens are random 256-bit values of
//! which only a SHA-256 digest is stored: they are high-entropy, so a fast digest is enough to
//! make a leaked table useless, and a lookup by digest is one indexed read.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{ApiTokenId, ShopId, Timestamp, UserId};
use crate::store::{Store, StoreError};
use crate::EngineError;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Every shop, users and settings.
    Admin,
    /// Triggers, queue and alerts of the shops assigned to them.
    ShopOwnerAdmin,
    /// Read-only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::ShopOwnerAdmin, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ShopOwnerAdmin => "shop_owner_admin",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a role; use admin, shop_owner_admin or viewer"))
    }
}

/// A user account.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub role: Role,
    /// The shops a shop owner admin (or a restricted viewer) acts for.
    pub shops: Vec<ShopId>,
    pub created_at: Timestamp,
}

/// A user's API token as listed: never the token itself, which is shown once at creation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub user_id: UserId,
    pub name: String,
    /// The first characters of the token, so its owner can tell tokens apart.
    pub prefix: String,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
}

/// Who a request acts as. `user == None` is the `--admin-token` (full rights, no account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: Option<UserId>,
    pub email: String,
    pub role: Role,
    pub shops: Vec<ShopId>,
}

impl Principal {
    /// The `--admin-token`'s principal.
    pub fn system() -> Principal {
        Principal {
            user: None,
            email: "admin token".to_owned(),
            role: Role::Admin,
            shops: Vec::new(),
        }
    }

    pub fn of(user: &User) -> Principal {
        Principal {
            user: Some(user.id),
            email: user.email.clone(),
            role: user.role,
            shops: user.shops.clone(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether it may change triggers, resend calls, acknowledge alerts, post events.
    pub fn can_write(&self) -> bool {
        matches!(self.role, Role::Admin | Role::ShopOwnerAdmin)
    }

    pub fn sees_shop(&self, shop: ShopId) -> bool {
        self.shop_scope().is_none_or(|shops| shops.contains(&shop))
    }

    /// The shops it sees; `None` = every shop.
    pub fn shop_scope(&self) -> Option<&[ShopId]> {
        match self.role {
            Role::Admin => None,
            Role::Viewer if self.shops.is_empty() => None,
            Role::ShopOwnerAdmin | Role::Viewer => Some(&self.shops),
        }
    }
}

/// The storage of accounts; part of [`crate::store::Store`].
#[async_trait::async_trait]
pub trait AccountStore: Send + Sync {
    /// The key login tokens are signed with, derived from the server's secret key; `None`
    /// when the store has none (then no login tokens are issued).
    fn login_token_key(&self) -> Option<[u8; 32]> {
        None
    }
    async fn count_users(&self) -> Result<u64, StoreError>;
    /// `None` when the email is taken.
    async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
        shops: &[ShopId],
        now: Timestamp,
    ) -> Result<Option<User>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// The user and their password hash.
    async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>, StoreError>;
    async fn update_user(
        &self,
        id: UserId,
        role: Role,
        shops: &[ShopId],
        now: Timestamp,
    ) -> Result<Option<User>, StoreError>;
    /// Also ends every session of the user.
    async fn set_password(
        &self,
        id: UserId,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// With their shops, tokens and sessions.
    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError>;
    async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
        digest: &str,
        prefix: &str,
        now: Timestamp,
    ) -> Result<ApiToken, StoreError>;
    async fn list_api_tokens(&self, user: Option<UserId>) -> Result<Vec<ApiToken>, StoreError>;
    /// `owner`: only when it belongs to this user (`None`: anyone's).
    async fn revoke_api_token(
        &self,
        id: ApiTokenId,
        owner: Option<UserId>,
    ) -> Result<bool, StoreError>;
    /// The owner of the token with this digest; notes the use (at most once a minute).
    async fn user_by_token(&self, digest: &str, now: Timestamp)
        -> Result<Option<User>, StoreError>;
    async fn create_session(
        &self,
        digest: &str,
        user: UserId,
        csrf: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// A live session, its idle expiry pushed forward; expired ones are gone.
    async fn session(
        &self,
        digest: &str,
        now: Timestamp,
    ) -> Result<Option<StoredSession>, StoreError>;
    async fn delete_session(&self, digest: &str) -> Result<(), StoreError>;
}

/// A signed-in session as stored.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub user: User,
    pub csrf: String,
    pub expires_at: Timestamp,
}

/// How long a session lasts without use, and at most.
pub const SESSION_IDLE_MS: i64 = 12 * 3600 * 1000;

/// How long a session lasts at most, however busy: a stolen cookie does not live forever.
pub const SESSION_MAX_MS: i64 = 7 * 24 * 3600 * 1000;

/// The prefix of every API token, so secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "hf_";

/// A fresh random secret: 32 bytes, base64url without padding.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A generated password for accounts made without one: 16 characters from an alphabet without
/// look-alikes (≈ 90 bits).
pub fn generated_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

/// The stored digest of a token (API or session): hex SHA-256.
pub fn token_digest(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// An argon2id hash in PHC string form. CPU-heavy (tens of ms): call from `spawn_blocking`.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters and a fresh salt cannot fail")
        .to_string()
}

/// Checks a password against a stored hash. CPU-heavy: call from `spawn_blocking`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash that no password matches, verified when an email is unknown so that a wrong email
/// takes as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_secret()))
}

/// Checks an email address enough to catch typos: one `@` with text on both sides, no spaces.
pub fn check_email(email: &str) -> Result<String, String> {
    let email = email.trim().to_lowercase();
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
                && email.len() <= 254 =>
        {
            Ok(email)
        }
        _ => Err(format!("{email:?} is not an email address")),
    }
}

/// Passwords: at least 10 characters (NIST SP 800-63B asks for 8; long beats complex).
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < 10 {
        return Err("must have at least 10 characters".to_owned());
    }
    if password.len() > 1024 {
        return Err("must have at most 1024 bytes".to_owned());
    }
    Ok(())
}

impl crate::Engine {
    // ---- users ----

    /// Creates a user; without a password one is generated and returned (shown once).
    pub async fn create_user(
        &self,
        email: &str,
        password: Option<&str>,
        role: Role,
        shops: &[ShopId],
    ) -> Result<(User, Option<String>), EngineError> {
        create_user(self.store.as_ref(), email, password, role, shops).await
    }

    pub async fn list_users(&self) -> Result<Vec<User>, EngineError> {
        Ok(self.store.list_users().await?)
    }

    pub async fn get_user(&self, id: UserId) -> Result<User, EngineError> {
        self.store
            .get_user(id)
            .await?
            .ok_or_else(|| user_not_found(id))
    }

    /// Changes a user's role and shops; the last admin stays an admin.
    pub async fn update_user(
        &self,
        id: UserId,
        role: Role,
        shops: &[ShopId],
    ) -> Result<User, EngineError> {
        let current = self.get_user(id).await?;
        if current.role == Role::Admin && role != Role::Admin {
            self.keep_an_admin(id).await?;
        }
        check_shops(self.store.as_ref(), shops).await?;
        self.store
            .update_user(id, role, shops, Timestamp::now())
            .await?
            .ok_or_else(|| user_not_found(id))
    }

    /// Sets a new password and signs the user out everywhere.
    pub async fn set_password(&self, id: UserId, password: &str) -> Result<(), EngineError> {
        check_password(password).map_err(|m| invalid("password", m))?;
        let hash = hash_blocking(password.to_owned()).await?;
        if !self.store.set_password(id, &hash, Timestamp::now()).await? {
            return Err(user_not_found(id));
        }
        Ok(())
    }

    /// Deletes a user with their tokens and sessions; the last admin cannot be deleted.
    pub async fn delete_user(&self, id: UserId) -> Result<(), EngineError> {
        let current = self.get_user(id).await?;
        if current.role == Role::Admin {
            self.keep_an_admin(id).await?;
        }
        if !self.store.delete_user(id).await? {
            return Err(user_not_found(id));
        }
        Ok(())
    }

    /// The first start of a fresh installation: with no user at all, creates
    /// `admin@localhost` with a generated password (returned, to be shown once).
    pub async fn ensure_first_admin(&self) -> Result<Option<(User, String)>, EngineError> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let (user, password) = self
            .create_user("admin@localhost", None, Role::Admin, &[])
            .await?;
        Ok(password.map(|p| (user, p)))
    }

    async fn keep_an_admin(&self, leaving: UserId) -> Result<(), EngineError> {
        let others = self
            .store
            .list_users()
            .await?
            .iter()
            .filter(|u| u.role == Role::Admin && u.id != leaving)
            .count();
        if others == 0 {
            return Err(EngineError::Conflict(
                "this is the last admin; make another user admin first".into(),
            ));
        }
        Ok(())
    }

    // ---- API tokens ----

    /// Creates an API token for `user`; the token is returned once, only its digest is kept.
    pub async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
    ) -> Result<(ApiToken, String), EngineError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(invalid("name", "must have 1 to 100 characters"));
        }
        self.get_user(user).await?;
        let secret = format!("{TOKEN_PREFIX}{}", random_secret());
        let prefix: String = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
        let token = self
            .store
            .create_api_token(
                user,
                name,
                &token_digest(&secret),
                &prefix,
                Timestamp::now(),
            )
            .await?;
        Ok((token, secret))
    }

    pub async fn list_api_tokens(
        &self,
        user: Option<UserId>,
    ) -> Result<Vec<ApiToken>, EngineError> {
        Ok(self.store.list_api_tokens(user).await?)
    }

    /// Revokes a token; `owner`: only one of theirs (`None`: anyone's, for admins).
    pub async fn revoke_api_token(
        &self,
        id: ApiTokenId,
        owner: Option<UserId>,
    ) -> Result<(), EngineError> {
        if !self.store.revoke_api_token(id, owner).await? {
            return Err(EngineError::NotFound(format!(
                "API token {id} does not exist"
            )));
        }
        Ok(())
    }

    /// Who an API token belongs to; `None` for an unknown (or revoked) token.
    pub async fn principal_for_token(&self, token: &str) -> Result<Option<Principal>, EngineError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        Ok(self
            .store
            .user_by_token(&token_digest(token), Timestamp::now())
            .await?
            .map(|u| Principal::of(&u)))
    }

    // ---- sign-in sessions ----

    /// Checks an email and password; `None` when either is wrong (the same time either way).
    pub async fn check_credentials(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Option<User>, EngineError> {
        let found = match check_email(email) {
            Ok(email) => self.store.user_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = found
            .as_ref()
            .map_or_else(|| decoy_hash().to_owned(), |(_, h)| h.clone());
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .map_err(|e| {
                EngineError::Store(StoreError::new(format!("password check failed: {e}")))
            })?;
        Ok(found.filter(|_| ok).map(|(user, _)| user))
    }

    /// Starts a session: returns the session token (for the cookie) and its CSRF token.
    pub async fn create_session(&self, user: UserId) -> Result<(String, String), EngineError> {
        let token = random_secret();
        let csrf = random_secret();
        self.store
            .create_session(&token_digest(&token), user, &csrf, Timestamp::now())
            .await?;
        Ok((token, csrf))
    }

    /// The principal and CSRF token of a live session.
    pub async fn session(&self, token: &str) -> Result<Option<(Principal, String)>, EngineError> {
        Ok(self
            .store
            .session(&token_digest(token), Timestamp::now())
            .await?
            .map(|s| (Principal::of(&s.user), s.csrf)))
    }

    pub async fn end_session(&self, token: &str) -> Result<(), EngineError> {
        Ok(self.store.delete_session(&token_digest(token)).await?)
    }
}

/// Creates a user (the engine's and the CLI's way); without a password one is generated and
/// returned, to be shown once.
pub async fn create_user(
    store: &dyn Store,
    email: &str,
    password: Option<&str>,
    role: Role,
    shops: &[ShopId],
) -> Result<(User, Option<String>), EngineError> {
    let email = check_email(email).map_err(|m| invalid("email", m))?;
    let generated = password.is_none().then(generated_password);
    let password = password.or(generated.as_deref()).unwrap_or_default();
    check_password(password).map_err(|m| invalid("password", m))?;
    check_shops(store, shops).await?;
    let hash = hash_blocking(password.to_owned()).await?;
    let user = store
        .create_user(&email, &hash, role, shops, Timestamp::now())
        .await?
        .ok_or_else(|| EngineError::Conflict(format!("a user with email {email} exists")))?;
    Ok((user, generated))
}

async fn check_shops(store: &dyn Store, shops: &[ShopId]) -> Result<(), EngineError> {
    for (i, shop) in shops.iter().enumerate() {
        if store.get_shop(*shop).await?.is_none() {
            return Err(invalid(
                format!("shops[{i}]"),
                format!("shop {shop} does not exist"),
            ));
        }
    }
    Ok(())
}

async fn hash_blocking(password: String) -> Result<String, EngineError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| EngineError::Store(StoreError::new(format!("password hashing failed: {e}"))))
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn user_not_found(id: UserId) -> EngineError {
    EngineError::NotFound(format!("user {id} does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, shops: &[i64]) -> Principal {
        Principal {
            user: Some(UserId(1)),
            email: "a@b.c".into(),
            role,
            shops: shops.iter().map(|s| ShopId(*s)).collect(),
        }
    }

    #[test]
    fn a_shop_owner_admin_sees_only_the_assigned_shops() {
        let p = principal(Role::ShopOwnerAdmin, &[1]);
        assert!(p.sees_shop(ShopId(1)));
        assert!(!p.sees_shop(ShopId(2)));
        assert!(p.can_write());
        assert!(!p.is_admin());
        // Without shops they see none, rather than all.
        assert!(!principal(Role::ShopOwnerAdmin, &[]).sees_shop(ShopId(1)));
    }

    #[test]
    fn a_viewer_reads_everything_unless_restricted_and_writes_nothing() {
        assert!(principal(Role::Viewer, &[]).sees_shop(ShopId(9)));
        assert!(!principal(Role::Viewer, &[1]).sees_shop(ShopId(9)));
        assert!(!principal(Role::Viewer, &[]).can_write());
    }

    #[test]
    fn an_admin_sees_every_shop() {
        let p = principal(Role::Admin, &[1]);
        assert!(p.sees_shop(ShopId(2)));
        assert_eq!(p.shop_scope(), None);
    }

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("owner".parse::<Role>().is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            check_email(" Ann@Shop.example ").unwrap(),
            "ann@shop.example"
        );
        assert!(check_email("ann").is_err());
        assert!(check_email("a@b@c").is_err());
        assert!(check_email("@b").is_err());
    }
}
