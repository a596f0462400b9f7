//! One HTTP attempt, and what its failure means for the next: retry, or give up now.

use anyhow::Context as _;
use std::fmt::Write as _;
use std::time::Duration;

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// Worth trying again: no connection, a timeout, 5xx, 408, 425, 429.
    Transient(String),
    /// The receiver refuses this request (another 4xx, a redirect): trying again would not help.
    Permanent(String),
}

/// A client with a time limit per request and no redirects (a redirected POST turns into a GET).
pub(crate) fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("fleetwatch-alerter/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
}

/// Sends `request`; a 2xx is success.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Result<(), Failure> {
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => return Err(Failure::Transient(error_chain(&err))),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let said: String = body.trim().chars().take(200).collect();
    let reason = if said.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {said}") };
    if status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429) {
        Err(Failure::Transient(reason))
    } else {
        Err(Failure::Permanent(reason))
    }
}

/// reqwest's own message is only the outermost cause ("error sending request").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// `sha256=<hex>`: HMAC-SHA256 of `body` under `secret`.
pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!("sha256={}", hex(ring::hmac::sign(&key, body).as_ref()))
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_rfc_4231_vectors() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
