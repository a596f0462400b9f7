//! The gateway: the dashboard at `/`, the REST API under `/api`, live updates on the
//! WebSocket `/ws/metrics` and Prometheus text at `/metrics`, all from what it follows on
//! NATS. It holds no state of its own beyond the current picture; what people do to alerts
//! (acknowledge, resolve, silence, raise) it hands to the collector as events.

mod alerts;
pub mod api;
mod assets;
mod history;
mod live;
mod prometheus;

use anyhow::Context as _;
pub use live::Live;
use serde::{Deserialize, Serialize};
use shared::service::{Context, Service};
use tokio_util::sync::CancellationToken;
use tracing::info;

/// `[gateway]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address to bind. Default `127.0.0.1`.
    pub host: String,
    /// Port; 0 picks a free one. Default 8082.
    pub port: u16,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self { host: "127.0.0.1".into(), port: 8082 }
    }
}

pub struct Gateway {
    context: Context,
    listener: tokio::net::TcpListener,
}

impl Service for Gateway {
    const NAME: &'static str = "gateway";
    type Config = GatewayConfig;

    async fn connect(context: Context, config: GatewayConfig) -> anyhow::Result<Self> {
        let address = format!("{}:{}", config.host, config.port);
        let listener = tokio::net::TcpListener::bind(&address).await.with_context(|| format!("binding {address}"))?;
        Ok(Self { context, listener })
    }

    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let nats = live::Nats { client: self.context.client.clone(), subjects: self.context.subjects.clone() };
        let live = Live::new(shutdown.clone(), Some(nats));
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(live.clone().follow_state(self.context.clone(), shutdown.clone()));
        tasks.spawn(live.clone().follow_bus(self.context.clone(), shutdown.clone()));
        let address = self.listener.local_addr()?;
        info!(url = %format!("http://{address}"), "dashboard listening");
        let server =
            axum::serve(self.listener, api::router(live)).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let served = server.await.context("http server");
        shutdown.cancel();
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        served
    }
}
