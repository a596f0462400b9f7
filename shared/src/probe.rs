//! The probes an orchestrator asks every service (`[probe] listen = "0.0.0.0:9090"`, off by
//! default): `GET /healthz` answers 200 while the process runs, `GET /readyz` 200 once the
//! service is set up and its NATS connection is up, 503 with the reason before and while
//! it is down. Plain HTTP/1.1 on its own port, so the three services without an HTTP
//! server have them too, and a probe never waits behind the gateway's or the collector's
//! auth, rate limits or load.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// `[probe]`, read by every service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// `host:port` to serve `/healthz` and `/readyz` on; empty (the default): no probes.
    pub listen: String,
}

/// Whether the service is ready: set once it is connected and set up.
#[derive(Clone, Default)]
pub struct Readiness(Arc<OnceLock<async_nats::Client>>);

impl Readiness {
    pub fn ready(&self, client: async_nats::Client) {
        let _ = self.0.set(client);
    }

    /// `None` when ready, else why not.
    fn not_ready(&self) -> Option<&'static str> {
        match self.0.get() {
            None => Some("starting: connecting to NATS and setting up"),
            Some(client) if client.connection_state() != async_nats::connection::State::Connected => {
                Some("the NATS connection is down; reconnecting")
            }
            Some(_) => None,
        }
    }
}

/// Binds `listen` (an error stops the service: a probe port taken is a deployment mistake)
/// and answers probes until `shutdown`.
pub async fn serve(
    listen: &str,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener =
        TcpListener::bind(listen).await.map_err(|err| anyhow::anyhow!("binding probe.listen {listen}: {err}"))?;
    info!(listen = %listener.local_addr()?, "probes on /healthz and /readyz");
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(answer(stream, readiness.clone()));
                    }
                    Err(err) => warn!(error = %err, "probe accept failed"),
                },
            }
        }
    }))
}

async fn answer(mut stream: TcpStream, readiness: Readiness) {
    // The request line is all a probe needs; a slow or endless sender gets nothing.
    let mut request = [0u8; 1024];
    let read = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut request)).await;
    let Ok(Ok(length)) = read else { return };
    let line = String::from_utf8_lossy(&request[..length]);
    let mut words = line.split_whitespace();
    let (status, body) = match (words.next(), words.next()) {
        (Some("GET" | "HEAD"), Some("/healthz")) => ("200 OK", "ok"),
        (Some("GET" | "HEAD"), Some("/readyz")) => match readiness.not_ready() {
            None => ("200 OK", "ready"),
            Some(why) => ("503 Service Unavailable", why),
        },
        (Some("GET" | "HEAD"), Some(_)) => ("404 Not Found", "only /healthz and /readyz here"),
        _ => ("405 Method Not Allowed", "GET /healthz or /readyz"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(address: std::net::SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer
    }

    #[tokio::test]
    async fn live_at_once_and_not_ready_before_the_service_is_set_up() {
        let shutdown = CancellationToken::new();
        let port = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
        let task = serve(&port.to_string(), Readiness::default(), shutdown.clone()).await.expect("serve");
        assert!(get(port, "/healthz").await.starts_with("HTTP/1.1 200 OK"));
        let ready = get(port, "/readyz").await;
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        assert!(ready.ends_with("starting: connecting to NATS and setting up"), "{ready}");
        assert!(get(port, "/metrics").await.starts_with("HTTP/1.1 404"));
        shutdown.cancel();
        task.await.expect("stops");
    }
}
