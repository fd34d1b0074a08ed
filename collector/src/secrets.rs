//! Sealing secrets at rest: AES-256-GCM with a key from a file or `NETWARDEN_SECRET_KEY`.
//!
//! A sealed value is `version (1 byte) || nonce (12 bytes) || ciphertext+tag`. The nonce is fresh
//! from the OS for every seal, so sealing the same secret twice gives different bytes. Every seal
//! is bound to a context string (e.g. `device:spine1:snmp`) as associated data: a sealed value
//! copied to another row or column does not open there.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The environment variable holding the base64 key when no key file is configured.
pub const KEY_ENV: &str = "NETWARDEN_SECRET_KEY";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Format version 1: AES-256-GCM, 96-bit random nonce, context as associated data.
const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret key: {KEY_ENV} is not set and no key file is configured")]
    KeyNotConfigured,
    #[error("secret key file {}: {source}", path.display())]
    KeyFileRead { path: PathBuf, source: std::io::Error },
    /// `origin` names where the key came from; the key material itself is never included.
    #[error("{origin}: expected 32 bytes base64, got {got}")]
    InvalidKey { origin: String, got: String },
    #[error("secret key file {} already exists; refusing to overwrite it", path.display())]
    KeyFileExists { path: PathBuf },
    #[error("secret key file {}: cannot write: {source}", path.display())]
    KeyFileWrite { path: PathBuf, source: std::io::Error },
    #[error("cannot get random bytes from the OS: {0}")]
    Random(String),
    #[error("sealed secret: {0}")]
    Malformed(String),
    #[error("sealed secret ({context}): cannot open: wrong key, or the data is corrupted or belongs elsewhere")]
    Open { context: String },
}

/// Seals and opens secrets with one AES-256-GCM key. `Debug` never shows the key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox { key: <redacted> }")
    }
}

impl SecretBox {
    pub fn from_key(key: &[u8; KEY_LEN]) -> Self {
        Self { cipher: Aes256Gcm::new(key.into()) }
    }

    /// The configured key file if there is one, else `NETWARDEN_SECRET_KEY`.
    pub fn load(key_file: Option<&Path>) -> Result<Self, SecretError> {
        match key_file {
            Some(path) => Self::from_file(path),
            None => Self::from_env(),
        }
    }

    /// Reads a key file holding the base64 of 32 bytes (surrounding whitespace ignored).
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SecretError::KeyFileRead { path: path.to_owned(), source })?;
        warn_if_readable_by_others(path);
        Self::from_base64(&text, &format!("secret key file {}", path.display()))
    }

    pub fn from_env() -> Result<Self, SecretError> {
        match std::env::var(KEY_ENV) {
            Ok(text) => Self::from_base64(&text, &format!("secret key {KEY_ENV}")),
            Err(std::env::VarError::NotPresent) => Err(SecretError::KeyNotConfigured),
            Err(std::env::VarError::NotUnicode(_)) => Err(SecretError::InvalidKey {
                origin: format!("secret key {KEY_ENV}"),
                got: "a value that is not UTF-8".to_owned(),
            }),
        }
    }

    /// `origin` is used in the error only ("secret key file /x", "secret key NETWARDEN_SECRET_KEY").
    fn from_base64(text: &str, origin: &str) -> Result<Self, SecretError> {
        let invalid = |got: String| SecretError::InvalidKey { origin: origin.to_owned(), got };
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid("an empty value".to_owned()));
        }
        // The decode error is safe to show: it names a position, not the key.
        let bytes = BASE64.decode(text).map_err(|e| invalid(format!("invalid base64 ({e})")))?;
        let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| invalid(format!("{} bytes", bytes.len())))?;
        Ok(Self::from_key(&key))
    }

    /// Creates a new random key at `path` (mode 0600, parent directories created) and returns
    /// the box for it. Refuses to overwrite an existing file: losing a key loses every secret.
    pub fn generate_key_file(path: &Path) -> Result<Self, SecretError> {
        use std::os::unix::fs::OpenOptionsExt as _;

        let write_err = |source| SecretError::KeyFileWrite { path: path.to_owned(), source };
        let mut key = [0u8; KEY_LEN];
        OsRng.try_fill_bytes(&mut key).map_err(|e| SecretError::Random(e.to_string()))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(write_err)?;
        }
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|source| {
                match source.kind() {
                    std::io::ErrorKind::AlreadyExists => SecretError::KeyFileExists { path: path.to_owned() },
                    _ => write_err(source),
                }
            })?;
        let written = file.write_all(format!("{}\n", BASE64.encode(key)).as_bytes()).and_then(|()| file.sync_all());
        if let Err(source) = written {
            // A half-written key file would be refused on the next start; don't leave one.
            let _ = std::fs::remove_file(path);
            return Err(write_err(source));
        }
        tracing::info!(path = %path.display(), "generated a new secret key file");
        Ok(Self::from_key(&key))
    }

    /// Encrypts `plaintext`, bound to `context` (which must be given again to open it).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.try_fill_bytes(&mut nonce).map_err(|e| SecretError::Random(e.to_string()))?;
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            // Only fails for plaintexts beyond GCM's ~64 GiB limit.
            .map_err(|_| SecretError::Malformed("plaintext too long to seal".to_owned()))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        let (&version, rest) = sealed.split_first().ok_or_else(|| SecretError::Malformed("empty value".to_owned()))?;
        if version != FORMAT_V1 {
            return Err(SecretError::Malformed(format!("unknown format version {version}")));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Malformed(format!("too short ({} bytes)", sealed.len())));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| SecretError::Open { context: context.to_owned() })
    }
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "secret key file is accessible by group or others; chmod 600 it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_box(byte: u8) -> SecretBox {
        SecretBox::from_key(&[byte; KEY_LEN])
    }

    #[test]
    fn seal_then_open_round_trips_and_uses_fresh_nonces() {
        let sb = key_box(7);
        let a = sb.seal("device:x:snmp", b"community").unwrap();
        let b = sb.seal("device:x:snmp", b"community").unwrap();
        assert_ne!(a, b, "two seals of one secret must differ");
        assert_eq!(a[0], FORMAT_V1);
        assert_eq!(a.len(), 1 + NONCE_LEN + b"community".len() + TAG_LEN);
        assert_eq!(sb.open("device:x:snmp", &a).unwrap(), b"community");
        assert_eq!(sb.open("device:x:snmp", &sb.seal("device:x:snmp", b"").unwrap()).unwrap(), b"");
    }

    #[test]
    fn wrong_key_context_or_corruption_fail_clearly() {
        let sealed = key_box(1).seal("device:x:snmp", b"secret").unwrap();
        let open_err = |sb: &SecretBox, ctx: &str, data: &[u8]| sb.open(ctx, data).unwrap_err().to_string();

        let wrong_key = open_err(&key_box(2), "device:x:snmp", &sealed);
        assert!(wrong_key.contains("wrong key"), "{wrong_key}");
        assert!(wrong_key.contains("device:x:snmp"), "{wrong_key}");
        assert!(open_err(&key_box(1), "device:y:snmp", &sealed).contains("wrong key"));

        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(open_err(&key_box(1), "device:x:snmp", &flipped).contains("corrupted"));

        let mut versioned = sealed.clone();
        versioned[0] = 9;
        assert_eq!(open_err(&key_box(1), "device:x:snmp", &versioned), "sealed secret: unknown format version 9");
        assert_eq!(open_err(&key_box(1), "c", &[]), "sealed secret: empty value");
        assert_eq!(open_err(&key_box(1), "c", &sealed[..10]), "sealed secret: too short (10 bytes)");
    }

    #[test]
    fn debug_is_redacted() {
        let sb = key_box(0xAB);
        let shown = format!("{sb:?} {sb:#?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
    }

    #[test]
    fn key_file_errors_name_the_file_and_never_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short.key");
        std::fs::write(&short, BASE64.encode([9u8; 16])).unwrap();
        let err = SecretBox::from_file(&short).unwrap_err().to_string();
        assert_eq!(err, format!("secret key file {}: expected 32 bytes base64, got 16 bytes", short.display()));

        let garbage = dir.path().join("garbage.key");
        std::fs::write(&garbage, "not base64 at all!!").unwrap();
        let err = SecretBox::from_file(&garbage).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "secret key file {}: expected 32 bytes base64, got invalid base64",
                garbage.display()
            )),
            "{err}"
        );
        assert!(!err.contains("not base64 at all"), "{err}");

        let empty = dir.path().join("empty.key");
        std::fs::write(&empty, "\n").unwrap();
        assert!(SecretBox::from_file(&empty).unwrap_err().to_string().ends_with("got an empty value"));

        let missing = dir.path().join("missing.key");
        let err = SecretBox::from_file(&missing).unwrap_err().to_string();
        assert!(err.starts_with(&format!("secret key file {}: ", missing.display())), "{err}");
    }

    #[test]
    fn generated_key_file_is_private_reloadable_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret.key");
        let generated = SecretBox::generate_key_file(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        let sealed = generated.seal("ctx", b"hello").unwrap();
        let reloaded = SecretBox::load(Some(&path)).unwrap();
        assert_eq!(reloaded.open("ctx", &sealed).unwrap(), b"hello");

        let before = std::fs::read(&path).unwrap();
        let err = SecretBox::generate_key_file(&path).unwrap_err();
        assert!(matches!(err, SecretError::KeyFileExists { .. }), "{err}");
        assert!(err.to_string().contains("refusing to overwrite"));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn base64_key_from_text() {
        let text = format!("  {}\n", BASE64.encode([3u8; KEY_LEN]));
        let sb = SecretBox::from_base64(&text, "secret key test").unwrap();
        assert_eq!(key_box(3).open("c", &sb.seal("c", b"x").unwrap()).unwrap(), b"x");
        let err = SecretBox::from_base64(&BASE64.encode([3u8; 33]), "secret key NETWARDEN_SECRET_KEY");
        assert_eq!(
            err.unwrap_err().to_string(),
            "secret key NETWARDEN_SECRET_KEY: expected 32 bytes base64, got 33 bytes"
        );
        assert_eq!(
            SecretError::KeyNotConfigured.to_string(),
            "secret key: NETWARDEN_SECRET_KEY is not set and no key file is configured"
        );
    }
}
