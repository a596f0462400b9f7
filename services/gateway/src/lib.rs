//! The gateway: the dashboard at `/`, the REST API under `/api` (described at
//! `/api/openapi.json`), live updates on the WebSocket `/ws/metrics` and Prometheus text at
//! `/metrics`, all from what it follows and asks on NATS. It holds no state of its own
//! beyond the current picture; what people do to alerts (acknowledge, resolve, silence,
//! raise) it hands to the collector as events.

mod alerts;
pub mod api;
mod assets;
pub mod auth;
mod content_type;
mod csv;
mod faults;
mod guard;
mod history;
mod live;
mod openapi;
mod performance;
mod prometheus;
mod session;
mod tasks;
mod topology;
mod workers;
mod ws;

use anyhow::Context as _;
pub use live::Live;
use serde::{Deserialize, Serialize};
use shared::service::{Context, Service};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The dashboard's colours until a person picks theirs (the browser remembers that).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    Dark,
    Light,
}

/// `[gateway]`. The monitoring guide's options and keys that belong to the dashboard live
/// here (README: "The monitoring guide's options").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address to bind. Default `127.0.0.1`.
    pub host: String,
    /// Port; 0 picks a free one. Default 8082.
    pub port: u16,
    /// The theme pages start in (`dark` or `light`) until a person picks one. Default dark.
    pub theme: Theme,
    /// How often pages read the REST API again, s; 0: never (the WebSocket still updates
    /// what it carries). Default 2.
    pub auto_refresh: u32,
    /// Live updates over the WebSocket `/ws/metrics`; off, pages read the REST API every
    /// `auto_refresh` seconds instead. Default true.
    pub real_time_enabled: bool,
    /// The WebSocket sends each topic's latest value at most once per this many seconds; 0:
    /// as each arrives (every processor tick). Alert and worker changes always go at once.
    /// Default 0.
    pub update_interval: f64,
    /// Most workers a page draws at once: the overview's grid, a page of the workers table,
    /// an opened topology group. Default 50.
    pub max_workers_shown: usize,
    /// Write the dashboard's files (`index.html`, `assets/`) here at start, to serve them
    /// from another web server or look at them. Default: none.
    pub output_dir: Option<PathBuf>,
    /// Open the dashboard in a browser once listening (`$BROWSER`, else `xdg-open`).
    /// Default false.
    pub browser: bool,
    /// Who may read and who may change things (README: Security). Default: nobody is asked,
    /// which only a loopback `host` allows.
    pub auth: auth::AuthConfig,
    /// Serve with no users or tokens on an address other hosts can reach. Default false.
    pub insecure: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8082,
            theme: Theme::Dark,
            auto_refresh: 2,
            real_time_enabled: true,
            update_interval: 0.0,
            max_workers_shown: 50,
            output_dir: None,
            browser: false,
            auth: auth::AuthConfig::default(),
            insecure: false,
        }
    }
}

/// What the pages are told of the configuration (`<meta name="fleetwatch-config">`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Settings {
    pub theme: Theme,
    pub auto_refresh: u32,
    pub real_time_enabled: bool,
    pub update_interval: f64,
    pub max_workers_shown: usize,
}

impl Default for Settings {
    fn default() -> Self {
        GatewayConfig::default().settings()
    }
}

impl GatewayConfig {
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=shared::paging::MAX_LIMIT).contains(&self.max_workers_shown),
            "gateway.max_workers_shown must be 1 to {}, got {}",
            shared::paging::MAX_LIMIT,
            self.max_workers_shown
        );
        anyhow::ensure!(
            self.update_interval.is_finite() && (0.0..=3600.0).contains(&self.update_interval),
            "gateway.update_interval must be 0 to 3600 seconds, got {}",
            self.update_interval
        );
        Ok(())
    }

    pub fn settings(&self) -> Settings {
        Settings {
            theme: self.theme,
            auto_refresh: self.auto_refresh,
            real_time_enabled: self.real_time_enabled,
            update_interval: self.update_interval,
            max_workers_shown: self.max_workers_shown,
        }
    }
}

pub struct Gateway {
    context: Context,
    config: GatewayConfig,
    auth: Arc<auth::Auth>,
    listener: tokio::net::TcpListener,
}

impl Service for Gateway {
    const NAME: &'static str = "gateway";
    type Config = GatewayConfig;

    fn check(config: &GatewayConfig) -> anyhow::Result<()> {
        config.check()?;
        let auth = auth::Auth::new(&config.auth)?;
        shared::access::check_exposure("the gateway", &config.host, auth.required(), config.insecure)
    }

    async fn connect(context: Context, config: GatewayConfig) -> anyhow::Result<Self> {
        let mut auth = auth::Auth::new(&config.auth)?;
        auth.any_host = config.insecure;
        let auth = Arc::new(auth);
        if !auth.required() {
            warn!(
                "gateway.auth has no users or tokens: everyone who reaches the gateway may read and change everything"
            );
        }
        if let Some(dir) = &config.output_dir {
            assets::write_to(dir, &config.settings())
                .with_context(|| format!("writing the dashboard to {}", dir.display()))?;
            info!(dir = %dir.display(), "dashboard files written");
        }
        let address = format!("{}:{}", config.host, config.port);
        let listener = tokio::net::TcpListener::bind(&address).await.with_context(|| format!("binding {address}"))?;
        Ok(Self { context, config, auth, listener })
    }

    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let nats = live::Nats { client: self.context.client.clone(), subjects: self.context.subjects.clone() };
        let live = Live::new(shutdown.clone(), Some(nats), self.config.settings());
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(live.clone().follow_state(self.context.clone(), shutdown.clone()));
        tasks.spawn(live.clone().follow_bus(self.context.clone(), shutdown.clone()));
        let address = self.listener.local_addr()?;
        let url = format!("http://{address}");
        info!(url = %url, "dashboard listening");
        if self.config.browser {
            open_browser(&url);
        }
        // The peer's address feeds the write and sign-in rate limits.
        let app = api::router(live, self.auth).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let server = axum::serve(self.listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let served = server.await.context("http server");
        shutdown.cancel();
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        served
    }
}

/// The guide's `--browser`: `$BROWSER <url>`, else `xdg-open <url>`, in the background.
fn open_browser(url: &str) {
    let browser = std::env::var("BROWSER").unwrap_or_else(|_| "xdg-open".into());
    match std::process::Command::new(&browser)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            // Reaped in the background: a browser launcher may outlive nothing or run long.
            std::thread::spawn(move || child.wait());
            info!(browser = %browser, url = %url, "opened the dashboard in a browser");
        }
        Err(err) => warn!(browser = %browser, error = %err, "cannot open a browser; open the dashboard yourself"),
    }
}
