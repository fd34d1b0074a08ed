//! Database access: the connection pool, the migration runner and the embedded server.

pub mod embedded;
pub mod migrate;

pub use migrate::{Backend, BackendChoice, MigrateError, MigrateReport, migrate};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

pub type DbPool = Pool;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL is invalid: {0}")]
    BadUrl(tokio_postgres::Error),
    #[error("cannot build database pool: {0}")]
    Pool(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
}

/// A pool over `url` (a libpq-style URL or key=value string). Checks one connection now so a
/// wrong URL fails at start-up, not at the first poll.
pub async fn connect(url: &str, max_size: usize) -> Result<DbPool, DbError> {
    let cfg: tokio_postgres::Config = url.parse().map_err(DbError::BadUrl)?;
    let mgr =
        Manager::from_config(cfg, tokio_postgres::NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let pool = Pool::builder(mgr).max_size(max_size).build().map_err(|e| DbError::Pool(e.to_string()))?;
    let _probe = pool.get().await.map_err(|e| DbError::Connect(e.to_string()))?;
    Ok(pool)
}

/// A database error with the server's message and SQLSTATE (tokio-postgres' Display says only
/// "db error" for those).
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({}): {}", db.severity(), db.code().code(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; {d}"));
            }
            s
        }
        None => e.to_string(),
    }
}
