//! The `ssh_host_key` and `device_cli_fact` tables (migrations/0005_ssh_and_configs.sql): the only
//! code that reads or writes them.

use super::hostkey::{OfferedKey, TrustedKey};
use serde::Serialize;
use tokio_postgres::GenericClient;

/// The key a device is trusted with, if any.
pub async fn trusted_key(
    client: &impl GenericClient,
    device_id: i64,
) -> Result<Option<TrustedKey>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT algorithm, fingerprint, public_key, trusted_by, trusted_at FROM ssh_host_key WHERE device_id = $1",
            &[&device_id],
        )
        .await?;
    Ok(row.map(|r| TrustedKey {
        algorithm: r.get(0),
        fingerprint: r.get(1),
        public_key: r.get(2),
        trusted_by: r.get(3),
        trusted_at: r.get(4),
    }))
}

/// Records `offered` as the device's key on first use. If another session recorded a key first,
/// that one stays and is returned, for the caller to compare.
pub async fn learn_key(
    client: &impl GenericClient,
    device_id: i64,
    offered: &OfferedKey,
) -> Result<TrustedKey, tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO ssh_host_key (device_id, algorithm, fingerprint, public_key, trusted_by) \
             VALUES ($1, $2, $3, $4, 'first-use') ON CONFLICT (device_id) DO NOTHING",
            &[&device_id, &offered.algorithm, &offered.fingerprint, &offered.public_key],
        )
        .await?;
    Ok(trusted_key(client, device_id).await?.expect("the row was just inserted or already there"))
}

pub async fn touch_key(client: &impl GenericClient, device_id: i64) -> Result<(), tokio_postgres::Error> {
    client.execute("UPDATE ssh_host_key SET last_seen = now() WHERE device_id = $1", &[&device_id]).await?;
    Ok(())
}

/// Keeps the key a device presented instead of the trusted one, for the admin to inspect.
pub async fn record_refused(
    client: &impl GenericClient,
    device_id: i64,
    offered: &OfferedKey,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE ssh_host_key SET refused_algorithm = $2, refused_fingerprint = $3, refused_public_key = $4, \
             refused_at = now(), refused_count = refused_count + 1 WHERE device_id = $1",
            &[&device_id, &offered.algorithm, &offered.fingerprint, &offered.public_key],
        )
        .await?;
    Ok(())
}

/// Sets the trusted key by hand, e.g. to pin a key known out of band (or, in tests, a wrong one).
pub async fn set_trusted_key(
    client: &impl GenericClient,
    device_id: i64,
    key: &OfferedKey,
    by: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO ssh_host_key (device_id, algorithm, fingerprint, public_key, trusted_by) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (device_id) DO UPDATE SET algorithm = $2, fingerprint = $3, public_key = $4, trusted_by = $5, \
             trusted_at = now(), refused_algorithm = NULL, refused_fingerprint = NULL, refused_public_key = NULL, \
             refused_at = NULL, refused_count = 0",
            &[&device_id, &key.algorithm, &key.fingerprint, &key.public_key, &by],
        )
        .await?;
    Ok(())
}

/// What [`retrust`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Retrust {
    /// The refused key is now the trusted one.
    Trusted { fingerprint: String, previous: String },
    /// No refused key was on record: the stored key was forgotten and the next connection learns
    /// whatever key the device presents (trust on first use again).
    Forgotten { previous: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum RetrustError {
    #[error("no device named {0:?}")]
    NoDevice(String),
    #[error("{device}: the refused key is {refused}, not {expected}: nothing changed")]
    FingerprintMismatch { device: String, refused: String, expected: String },
    #[error("{device}: no refused key on record to trust as {expected}")]
    NothingRefused { device: String, expected: String },
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// An admin's decision after a "host key changed" refusal: trust the key the device presented
/// instead (the last refused one; if `expected` is given, only if its fingerprint is that), or,
/// with nothing refused on record, forget the key so the next connection learns it.
pub async fn retrust(
    client: &impl GenericClient,
    device: &str,
    expected: Option<&str>,
    by: &str,
) -> Result<Retrust, RetrustError> {
    let row = client
        .query_opt(
            "SELECT d.id, k.fingerprint, k.refused_algorithm, k.refused_fingerprint, k.refused_public_key \
             FROM device d LEFT JOIN ssh_host_key k ON k.device_id = d.id WHERE d.name = $1",
            &[&device],
        )
        .await?
        .ok_or_else(|| RetrustError::NoDevice(device.to_owned()))?;
    let device_id: i64 = row.get(0);
    let previous: Option<String> = row.get(1);
    let refused: Option<OfferedKey> = match (row.get(2), row.get(3), row.get(4)) {
        (Some(algorithm), Some(fingerprint), Some(public_key)) => {
            Some(OfferedKey { algorithm, fingerprint, public_key })
        }
        _ => None,
    };
    match (refused, expected) {
        (Some(key), Some(exp)) if key.fingerprint != exp => Err(RetrustError::FingerprintMismatch {
            device: device.to_owned(),
            refused: key.fingerprint,
            expected: exp.to_owned(),
        }),
        (Some(key), _) => {
            set_trusted_key(client, device_id, &key, by).await?;
            tracing::warn!(device, fingerprint = %key.fingerprint, by, "ssh host key re-trusted");
            Ok(Retrust::Trusted { fingerprint: key.fingerprint, previous: previous.unwrap_or_default() })
        }
        (None, Some(exp)) => Err(RetrustError::NothingRefused { device: device.to_owned(), expected: exp.to_owned() }),
        (None, None) => {
            client.execute("DELETE FROM ssh_host_key WHERE device_id = $1", &[&device_id]).await?;
            tracing::warn!(device, by, "ssh host key forgotten; the next connection trusts on first use");
            Ok(Retrust::Forgotten { previous })
        }
    }
}

/// Stores the outcome of collecting one fact: its data, or why it failed (the old data is kept
/// only when there is no new data; a failure clears it, so stale facts never look fresh).
pub async fn store_fact(
    client: &impl GenericClient,
    device_id: i64,
    fact: &str,
    data: Result<&serde_json::Value, &str>,
) -> Result<(), tokio_postgres::Error> {
    let (data, error) = match data {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    client
        .execute(
            "INSERT INTO device_cli_fact (device_id, fact, collected_at, data, error) VALUES ($1, $2, now(), $3, $4) \
             ON CONFLICT (device_id, fact) DO UPDATE SET collected_at = now(), data = $3, error = $4",
            &[&device_id, &fact, &data, &error],
        )
        .await?;
    Ok(())
}

/// A device's stored CLI facts: (fact, collected at, data, error).
pub async fn facts(
    client: &impl GenericClient,
    device_id: i64,
) -> Result<
    Vec<(String, chrono::DateTime<chrono::Utc>, Option<serde_json::Value>, Option<String>)>,
    tokio_postgres::Error,
> {
    let rows = client
        .query(
            "SELECT fact, collected_at, data, error FROM device_cli_fact WHERE device_id = $1 ORDER BY fact",
            &[&device_id],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
}
