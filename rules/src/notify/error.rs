//! Why a send failed, whether retrying can help, and when: HTTP status and SMTP reply classification, `Retry-After`.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Longest response-body excerpt kept in an error.
pub const BODY_EXCERPT_CHARS: usize = 300;

/// A failed send. Never contains a secret: URLs of Slack webhooks are not shown, and no request body is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("receiver {receiver}: no such receiver is configured")]
    UnknownReceiver { receiver: String },
    /// The peer answered with a non-success status.
    #[error("receiver {receiver}: {what}: HTTP {status}{}", body_suffix(body))]
    Http { receiver: String, what: String, status: u16, body: String, retry_after: Option<Duration> },
    /// No answer: connection refused or reset, DNS, TLS, timeout.
    #[error("receiver {receiver}: {what}: {message}")]
    Network { receiver: String, what: String, message: String },
    /// The SMTP server refused (with its reply code) or could not be reached (no code).
    #[error("receiver {receiver}: {what}: {message}")]
    Smtp { receiver: String, what: String, code: Option<u16>, message: String, transient: bool },
    /// The local rate limit would have made the send wait longer than allowed.
    #[error("receiver {receiver}: rate limit: the next send is allowed in {}s", wait.as_secs_f64().ceil())]
    RateLimited { receiver: String, wait: Duration },
    /// The notification cannot be turned into a message for this receiver (a bug or a bad configuration).
    #[error("receiver {receiver}: {message}")]
    Invalid { receiver: String, message: String },
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() { String::new() } else { format!(": {body}") }
}

impl SendError {
    pub fn receiver(&self) -> &str {
        match self {
            SendError::UnknownReceiver { receiver }
            | SendError::Http { receiver, .. }
            | SendError::Network { receiver, .. }
            | SendError::Smtp { receiver, .. }
            | SendError::RateLimited { receiver, .. }
            | SendError::Invalid { receiver, .. } => receiver,
        }
    }

    /// Whether a later attempt can succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            SendError::Http { status, .. } => status_is_transient(*status),
            SendError::Network { .. } | SendError::RateLimited { .. } => true,
            SendError::Smtp { transient, .. } => *transient,
            SendError::UnknownReceiver { .. } | SendError::Invalid { .. } => false,
        }
    }

    /// How long the peer asked us to wait (`Retry-After`), or the local rate limit's wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Http { retry_after, .. } => *retry_after,
            SendError::RateLimited { wait, .. } => Some(*wait),
            _ => None,
        }
    }

    /// The HTTP status, or the SMTP reply code, if the peer answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            SendError::Http { status, .. } => Some(*status),
            SendError::Smtp { code, .. } => *code,
            _ => None,
        }
    }
}

/// 408 (request timeout), 429 (throttled) and 5xx are worth retrying; any other 4xx means the request is wrong.
pub fn status_is_transient(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`. A date in the past
/// means no wait; anything unparsable is ignored.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is RFC 2822 syntax with an obsolete zone name.
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// The start of a response body, one line, for error messages.
pub fn excerpt(body: &str) -> String {
    let flat: String = body.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    super::truncate_chars(&flat, BODY_EXCERPT_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn http(status: u16) -> SendError {
        SendError::Http { receiver: "r".into(), what: "POST".into(), status, body: String::new(), retry_after: None }
    }

    #[test]
    fn statuses_classify() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(http(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 413, 422] {
            assert!(!http(s).is_transient(), "{s}");
        }
        let net = SendError::Network { receiver: "r".into(), what: "POST".into(), message: "refused".into() };
        assert!(net.is_transient());
        assert!(!SendError::UnknownReceiver { receiver: "r".into() }.is_transient());
        let smtp = |transient| SendError::Smtp {
            receiver: "r".into(),
            what: "send".into(),
            code: Some(if transient { 451 } else { 550 }),
            message: "x".into(),
            transient,
        };
        assert!(smtp(true).is_transient() && !smtp(false).is_transient());
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 27, 0).unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn messages_say_receiver_what_and_status() {
        let e = SendError::Http {
            receiver: "pager".into(),
            what: "POST https://events.pagerduty.com/v2/enqueue".into(),
            status: 400,
            body: excerpt("{\"status\":\"invalid event\",\n\"errors\":[\"x\"]}"),
            retry_after: None,
        };
        assert_eq!(
            e.to_string(),
            r#"receiver pager: POST https://events.pagerduty.com/v2/enqueue: HTTP 400: {"status":"invalid event", "errors":["x"]}"#
        );
        assert_eq!(e.status(), Some(400));
        let long = excerpt(&"y".repeat(1000));
        assert_eq!(long.chars().count(), BODY_EXCERPT_CHARS);
    }
}
