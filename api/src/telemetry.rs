//! Logging set-up: human-readable by default, JSON with `NETWARDEN_LOG_FORMAT=json`.

pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("NETWARDEN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("NETWARDEN_LOG_FORMAT").is_ok_and(|v| v == "json");
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { b.json().try_init() } else { b.try_init() };
}
