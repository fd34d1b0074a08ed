//! Host-key trust: trust on first use, then only the recorded key. Pure decisions here; the keys
//! live in `ssh_host_key` (see [`super::store`]).

use russh::keys::{HashAlg, PublicKey};
use serde::Serialize;

/// The key a server presented during the handshake (already verified to sign the key exchange).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfferedKey {
    /// e.g. `ssh-ed25519`
    pub algorithm: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// One-line OpenSSH form, `ssh-ed25519 AAAA…`.
    pub public_key: String,
}

impl OfferedKey {
    pub fn from_key(key: &PublicKey) -> OfferedKey {
        let mut k = key.clone();
        k.set_comment("");
        OfferedKey {
            algorithm: key.algorithm().to_string(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            public_key: k.to_openssh().unwrap_or_default().trim().to_owned(),
        }
    }
}

impl OfferedKey {
    /// From an OpenSSH public key line (`ssh-ed25519 AAAA… comment`), e.g. a device's key known
    /// out of band, to pin it with [`super::store::set_trusted_key`].
    pub fn from_openssh(line: &str) -> Result<OfferedKey, String> {
        PublicKey::from_openssh(line.trim())
            .map(|k| OfferedKey::from_key(&k))
            .map_err(|e| format!("not an OpenSSH public key: {e}"))
    }
}

/// The key recorded for a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustedKey {
    pub algorithm: String,
    pub fingerprint: String,
    pub public_key: String,
    /// `first-use`, or who re-trusted it.
    pub trusted_by: String,
    pub trusted_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyDecision {
    /// The recorded key.
    Trusted,
    /// No key recorded yet: accept and record this one.
    FirstUse,
    /// A different key (or algorithm) than the recorded one: refuse.
    Changed,
}

/// Whole-key comparison (the fingerprint hashes algorithm and key), so a server that suddenly
/// presents a key of another algorithm is "changed", not "unknown".
pub fn decide(trusted: Option<&TrustedKey>, offered: &OfferedKey) -> HostKeyDecision {
    match trusted {
        None => HostKeyDecision::FirstUse,
        Some(t) if t.fingerprint == offered.fingerprint => HostKeyDecision::Trusted,
        Some(_) => HostKeyDecision::Changed,
    }
}

/// The host-key algorithms we accept, in our order of preference. Pinned here rather than taken
/// from russh's default so that a russh upgrade that reorders its list (the server presents the
/// key of the first algorithm both sides support) does not look like a changed key.
pub const HOST_KEY_ALGORITHMS: &[russh::keys::Algorithm] = &[
    russh::keys::Algorithm::Ed25519,
    russh::keys::Algorithm::Ecdsa { curve: russh::keys::EcdsaCurve::NistP256 },
    russh::keys::Algorithm::Ecdsa { curve: russh::keys::EcdsaCurve::NistP384 },
    russh::keys::Algorithm::Ecdsa { curve: russh::keys::EcdsaCurve::NistP521 },
    russh::keys::Algorithm::Rsa { hash: Some(HashAlg::Sha512) },
    russh::keys::Algorithm::Rsa { hash: Some(HashAlg::Sha256) },
    russh::keys::Algorithm::Rsa { hash: None },
];

#[cfg(test)]
mod tests {
    use super::*;

    // a lab router's host key; `ssh-keygen -lf` prints SHA256:yLCBMt5LxKsvHgrY0Vm5B/JwLanYLSnmyBVBZ6+KoXw
    const LAB_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFSIZf0bLoYRH/PYS79h18VQByHX3kAe1eJ3+SYrJ/km";

    #[test]
    fn first_use_then_only_the_same_key() {
        let offered = OfferedKey::from_key(&PublicKey::from_openssh(LAB_KEY).unwrap());
        assert_eq!(offered.algorithm, "ssh-ed25519");
        assert_eq!(offered.fingerprint, "SHA256:yLCBMt5LxKsvHgrY0Vm5B/JwLanYLSnmyBVBZ6+KoXw");
        assert_eq!(offered.public_key, LAB_KEY);
        assert_eq!(decide(None, &offered), HostKeyDecision::FirstUse);
        let trusted = TrustedKey {
            algorithm: offered.algorithm.clone(),
            fingerprint: offered.fingerprint.clone(),
            public_key: offered.public_key.clone(),
            trusted_by: "first-use".into(),
            trusted_at: chrono::Utc::now(),
        };
        assert_eq!(decide(Some(&trusted), &offered), HostKeyDecision::Trusted);
        let other = OfferedKey { fingerprint: "SHA256:other".into(), ..offered };
        assert_eq!(decide(Some(&trusted), &other), HostKeyDecision::Changed);
    }
}
