//! Secrets at rest: basic-auth passwords, HMAC secrets and client keys are sealed with
//! XChaCha20-Poly1305 before they reach the database, so the database file (or a dump of it)
//! shows none of them. The key comes from `HOOKFLOW_SECRET_KEY` or a key file created with
//! 0600 permissions on first start.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hookflow_engine::store::StoreError;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Marks a sealed value; the version lets the scheme change later.
const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 24;

/// Seals and opens secrets with one 256-bit key.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// Signs login tokens: derived from the key, so a token is never a sealed secret.
    login_key: [u8; 32],
}

/// The key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the secret key must be 32 bytes in base64 (e.g. `openssl rand -base64 32`): {0}")]
    Format(String),
    #[error("secret key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

impl SecretBox {
    pub fn new(key: [u8; 32]) -> SecretBox {
        let mut derive = Sha256::new();
        derive.update(b"hookflow login tokens\0");
        derive.update(key);
        SecretBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
            login_key: derive.finalize().into(),
        }
    }

    /// The key login tokens are signed with (see `hookflow_engine::login_tokens`).
    pub fn login_key(&self) -> [u8; 32] {
        self.login_key
    }

    /// Parses a base64 key.
    pub fn parse_key(text: &str) -> Result<[u8; 32], KeyError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| KeyError::Format(e.to_string()))?;
        bytes
            .try_into()
            .map_err(|b: Vec<u8>| KeyError::Format(format!("it decodes to {} bytes", b.len())))
    }

    /// Reads the key file, or creates it (mode 0600) with a random key.
    pub fn load_or_create_key(path: &Path) -> Result<[u8; 32], KeyError> {
        let file_err = |source| KeyError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => SecretBox::parse_key(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = match options.open(path) {
                    Ok(file) => file,
                    // Another process starting beside us made it first.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return SecretBox::parse_key(
                            &std::fs::read_to_string(path).map_err(file_err)?,
                        );
                    }
                    Err(e) => return Err(file_err(e)),
                };
                writeln!(
                    file,
                    "{}",
                    base64::engine::general_purpose::STANDARD.encode(key)
                )
                .map_err(file_err)?;
                file.sync_all().map_err(file_err)?;
                Ok(key)
            }
            Err(e) => Err(file_err(e)),
        }
    }

    /// Whether `value` is a sealed secret (rather than one stored before sealing existed).
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        )
    }

    pub fn open(&self, sealed: &str) -> Result<String, StoreError> {
        let encoded = sealed
            .strip_prefix(PREFIX)
            .ok_or_else(|| StoreError::new("secret is not sealed"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| StoreError::new("sealed secret is corrupt"))?;
        if bytes.len() < NONCE_LEN {
            return Err(StoreError::new("sealed secret is corrupt"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self.cipher.decrypt(XNonce::from_slice(nonce), ciphertext).map_err(|_| {
            StoreError::new("a stored secret cannot be decrypted: is HOOKFLOW_SECRET_KEY the key it was saved with?")
        })?;
        String::from_utf8(plain).map_err(|_| StoreError::new("sealed secret is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_base64_and_files_are_private() {
        assert!(SecretBox::parse_key("short").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookflow.key");
        let key = SecretBox::load_or_create_key(&path).unwrap();
        assert_eq!(SecretBox::load_or_create_key(&path).unwrap(), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
