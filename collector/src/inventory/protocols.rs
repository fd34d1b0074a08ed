//! Names of SNMPv3 protocols as operators write them (aliases accepted) and as we store them.

use super::model::{AuthProtocol, PrivProtocol};
use std::fmt;

impl AuthProtocol {
    pub const ALL: [AuthProtocol; 6] = [
        AuthProtocol::Md5,
        AuthProtocol::Sha1,
        AuthProtocol::Sha224,
        AuthProtocol::Sha256,
        AuthProtocol::Sha384,
        AuthProtocol::Sha512,
    ];

    /// The canonical name, as written in files, the database and the API.
    pub fn name(self) -> &'static str {
        match self {
            AuthProtocol::Md5 => "MD5",
            AuthProtocol::Sha1 => "SHA",
            AuthProtocol::Sha224 => "SHA-224",
            AuthProtocol::Sha256 => "SHA-256",
            AuthProtocol::Sha384 => "SHA-384",
            AuthProtocol::Sha512 => "SHA-512",
        }
    }

    /// Case-insensitive; `-`, `_` and spaces are ignored, so `sha256`, `SHA_256` and `SHA-256`
    /// are one protocol, and `SHA1` is `SHA`.
    pub fn from_name(name: &str) -> Option<Self> {
        match squash(name).as_str() {
            "MD5" => Some(AuthProtocol::Md5),
            "SHA" | "SHA1" => Some(AuthProtocol::Sha1),
            "SHA224" => Some(AuthProtocol::Sha224),
            "SHA256" => Some(AuthProtocol::Sha256),
            "SHA384" => Some(AuthProtocol::Sha384),
            "SHA512" => Some(AuthProtocol::Sha512),
            _ => None,
        }
    }

    /// "MD5, SHA, SHA-224, ..." for error messages.
    pub fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

impl PrivProtocol {
    pub const ALL: [PrivProtocol; 4] =
        [PrivProtocol::Des, PrivProtocol::Aes128, PrivProtocol::Aes192, PrivProtocol::Aes256];

    pub fn name(self) -> &'static str {
        match self {
            PrivProtocol::Des => "DES",
            PrivProtocol::Aes128 => "AES",
            PrivProtocol::Aes192 => "AES-192",
            PrivProtocol::Aes256 => "AES-256",
        }
    }

    /// Case-insensitive; `-`, `_` and spaces are ignored; `AES128` is `AES`.
    pub fn from_name(name: &str) -> Option<Self> {
        match squash(name).as_str() {
            "DES" => Some(PrivProtocol::Des),
            "AES" | "AES128" => Some(PrivProtocol::Aes128),
            "AES192" => Some(PrivProtocol::Aes192),
            "AES256" => Some(PrivProtocol::Aes256),
            _ => None,
        }
    }

    pub fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

impl fmt::Display for AuthProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for PrivProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn squash(name: &str) -> String {
    name.chars().filter(|c| !matches!(c, '-' | '_' | ' ')).map(|c| c.to_ascii_uppercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_round_trip_and_match_serde() {
        for p in AuthProtocol::ALL {
            assert_eq!(AuthProtocol::from_name(p.name()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        }
        for p in PrivProtocol::ALL {
            assert_eq!(PrivProtocol::from_name(p.name()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        }
    }

    #[test]
    fn aliases() {
        let auth = |s| AuthProtocol::from_name(s);
        assert_eq!(auth("sha1"), Some(AuthProtocol::Sha1));
        assert_eq!(auth("Sha"), Some(AuthProtocol::Sha1));
        assert_eq!(auth("sha256"), Some(AuthProtocol::Sha256));
        assert_eq!(auth("SHA_512"), Some(AuthProtocol::Sha512));
        assert_eq!(auth("md5"), Some(AuthProtocol::Md5));
        assert_eq!(auth("SHA-999"), None);
        assert_eq!(auth(""), None);
        let privacy = |s| PrivProtocol::from_name(s);
        assert_eq!(privacy("aes"), Some(PrivProtocol::Aes128));
        assert_eq!(privacy("AES128"), Some(PrivProtocol::Aes128));
        assert_eq!(privacy("AES-128"), Some(PrivProtocol::Aes128));
        assert_eq!(privacy("aes-256"), Some(PrivProtocol::Aes256));
        assert_eq!(privacy("des"), Some(PrivProtocol::Des));
        assert_eq!(privacy("3DES"), None);
        assert_eq!(AuthProtocol::names(), "MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512");
        assert_eq!(PrivProtocol::names(), "DES, AES, AES-192, AES-256");
    }
}
