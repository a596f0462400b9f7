//! Where alerts go beyond NATS: an Alertmanager (its v2 API) and signed JSON webhooks.
//!
//! Each sink reads FLEET_ALERTS through its own durable consumer (the outbox) and acks a
//! message only once it is delivered or dead-lettered, so a crash loses nothing, and each
//! runs in its own task, so a sink that is down delays neither the rules nor the other sinks.
//! docs/ALERT-SINKS.md has the whole contract.

mod alertmanager;
mod http;
mod outbox;
mod webhook;

use serde::{Deserialize, Serialize};
use shared::service::Context;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// `[alerter.alertmanager]`: alerts posted to an Alertmanager, re-sent while they fire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// Its base URL (`http://alertmanager:9093`); none turns the sink off. Default none.
    pub url: Option<String>,
    /// How often the firing alerts are posted again, s; each says it ends after four of
    /// these unless re-sent, as Prometheus does. Default 60.
    pub resend_secs: u64,
    /// Each alert's `generatorURL` is this plus `/alerts/<alert_id>`. Default
    /// `http://localhost:8082`, the dashboard.
    pub generator_base_url: String,
    /// One request's time limit, ms. Default 10000.
    pub timeout_ms: u64,
    /// Tries per batch before it is dead-lettered. Default 8.
    pub max_attempts: u32,
    /// The first retry's delay, doubled each time, ms. Default 500.
    pub retry_base_ms: u64,
    /// The longest delay between retries, ms. Default 30000.
    pub retry_max_ms: u64,
    /// Unacked alerts are redelivered after this long, after a crash, s. Default 30.
    pub ack_wait_secs: u64,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            url: None,
            resend_secs: 60,
            generator_base_url: "http://localhost:8082".into(),
            timeout_ms: 10_000,
            max_attempts: 8,
            retry_base_ms: 500,
            retry_max_ms: 30_000,
            ack_wait_secs: 30,
        }
    }
}

/// One `[[alerter.webhooks]]` entry: grouped notifications for people, POSTed as JSON.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Names its consumer (`alerter-sink-webhook-<name>`): letters, digits, `-`, `_`.
    pub name: String,
    pub url: String,
    /// Key of the body's HMAC-SHA256 in `X-Fleetwatch-Signature`.
    pub secret: String,
    /// Alerts of one rule, severity and change arriving within this long become one
    /// notification, ms. Default 1000.
    pub group_wait_ms: u64,
    /// Alerts listed in one notification; its count covers all of them. Default 500.
    pub max_alerts: usize,
    pub timeout_ms: u64,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub ack_wait_secs: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            url: String::new(),
            secret: String::new(),
            group_wait_ms: 1000,
            max_alerts: 500,
            timeout_ms: 10_000,
            max_attempts: 8,
            retry_base_ms: 500,
            retry_max_ms: 30_000,
            ack_wait_secs: 30,
        }
    }
}

/// Not derived: the secret stays out of logs.
impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("group_wait_ms", &self.group_wait_ms)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// How a sink retries one delivery.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
    pub timeout: Duration,
    pub ack_wait: Duration,
}

impl AlertmanagerConfig {
    fn retry(&self) -> Retry {
        retry(self.max_attempts, self.retry_base_ms, self.retry_max_ms, self.timeout_ms, self.ack_wait_secs)
    }
}

impl WebhookConfig {
    fn retry(&self) -> Retry {
        retry(self.max_attempts, self.retry_base_ms, self.retry_max_ms, self.timeout_ms, self.ack_wait_secs)
    }
}

fn retry(max_attempts: u32, base_ms: u64, max_ms: u64, timeout_ms: u64, ack_wait_secs: u64) -> Retry {
    Retry {
        max_attempts,
        base: Duration::from_millis(base_ms),
        max: Duration::from_millis(max_ms.max(base_ms)),
        timeout: Duration::from_millis(timeout_ms),
        ack_wait: Duration::from_secs(ack_wait_secs),
    }
}

/// Refuses a configuration the sinks cannot run with; for the alerter's `connect`.
pub fn check(alertmanager: &AlertmanagerConfig, webhooks: &[WebhookConfig]) -> anyhow::Result<()> {
    if let Some(url) = &alertmanager.url {
        check_url("alerter.alertmanager.url", url)?;
        anyhow::ensure!(alertmanager.resend_secs >= 1, "alerter.alertmanager.resend_secs must be at least 1");
        check_retry("alerter.alertmanager", &alertmanager.retry())?;
    }
    let mut names = BTreeSet::new();
    for webhook in webhooks {
        let what = format!("alerter.webhooks {:?}", webhook.name);
        shared::subjects::check_token("webhook name", &webhook.name).map_err(|err| anyhow::anyhow!("{what}: {err}"))?;
        anyhow::ensure!(names.insert(&webhook.name), "{what}: two webhooks have this name");
        check_url(&format!("{what} url"), &webhook.url)?;
        anyhow::ensure!(!webhook.secret.is_empty(), "{what}: a secret is needed to sign the notifications");
        anyhow::ensure!(webhook.max_alerts >= 1, "{what}: max_alerts must be at least 1");
        let retry = webhook.retry();
        check_retry(&what, &retry)?;
        // Messages wait unacked while a group gathers; they must not be redelivered meanwhile.
        anyhow::ensure!(
            Duration::from_millis(webhook.group_wait_ms) * 2 < retry.ack_wait,
            "{what}: group_wait_ms must be under half of ack_wait_secs"
        );
    }
    Ok(())
}

fn check_url(what: &str, url: &str) -> anyhow::Result<()> {
    // This build's HTTP client has no TLS: an https URL would fail on every delivery.
    anyhow::ensure!(
        url.starts_with("http://") && url.len() > "http://".len(),
        "{what} must be an http:// URL (this build has no TLS: put a TLS proxy in front for https), not {url:?}"
    );
    Ok(())
}

fn check_retry(what: &str, retry: &Retry) -> anyhow::Result<()> {
    anyhow::ensure!(retry.max_attempts >= 1, "{what}: max_attempts must be at least 1");
    anyhow::ensure!(retry.ack_wait >= Duration::from_secs(1), "{what}: ack_wait_secs must be at least 1");
    anyhow::ensure!(!retry.timeout.is_zero(), "{what}: timeout_ms must be above 0");
    Ok(())
}

/// Runs every configured sink, each in its own task, until `shutdown`. A sink that fails
/// (NATS away, say) is logged and started again after a pause; it never stops the alerter.
pub async fn run(
    context: Context,
    alertmanager: AlertmanagerConfig,
    webhooks: Vec<WebhookConfig>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    check(&alertmanager, &webhooks)?;
    let mut tasks = JoinSet::new();
    if let Some(url) = alertmanager.url.clone() {
        let (context, shutdown) = (context.clone(), shutdown.clone());
        tasks.spawn(supervise("alertmanager".into(), shutdown.clone(), move || {
            alertmanager::run(context.clone(), alertmanager.clone(), url.clone(), shutdown.clone())
        }));
    }
    for webhook in webhooks {
        let (context, shutdown) = (context.clone(), shutdown.clone());
        tasks.spawn(supervise(format!("webhook {}", webhook.name), shutdown.clone(), move || {
            webhook::run(context.clone(), webhook.clone(), shutdown.clone())
        }));
    }
    if tasks.is_empty() {
        return Ok(());
    }
    info!(sinks = tasks.len(), "alert sinks started");
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Runs `sink` until it returns cleanly (on shutdown); an error restarts it after a pause
/// that grows to a minute.
async fn supervise<F, Fut>(name: String, shutdown: CancellationToken, mut sink: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut pause = Duration::from_secs(1);
    loop {
        match sink().await {
            Ok(()) => return,
            Err(err) => warn!(sink = %name, error = format!("{err:#}"), "alert sink failed; restarting it"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Section {
        alertmanager: AlertmanagerConfig,
        webhooks: Vec<WebhookConfig>,
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closures return figment's own error
    fn sinks_are_configured_from_the_file_and_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "fleetwatch.toml",
                "[alerter.alertmanager]\nresend_secs = 5\n[[alerter.webhooks]]\nname = \"a\"\nurl = \"http://a\"\nsecret = \"x\"\n",
            )?;
            jail.set_env("FLEETWATCH_ALERTER__ALERTMANAGER__URL", "http://am:9093");
            let args = shared::config::CommonArgs::default();
            let flags = shared::config::Overrides::default();
            let (_, section): (_, Section) = shared::config::load("alerter", &args, flags).map_err(|err| *err)?;
            assert_eq!(section.alertmanager.url.as_deref(), Some("http://am:9093"));
            assert_eq!(section.alertmanager.resend_secs, 5);
            assert_eq!((section.webhooks[0].name.as_str(), section.webhooks[0].max_attempts), ("a", 8));

            // The environment replaces the file's list: one variable, figment's inline syntax.
            jail.set_env(
                "FLEETWATCH_ALERTER__WEBHOOKS",
                r#"[{name="ops", url="http://hooks:8080/fleet", secret="s3cret", max_attempts=3}]"#,
            );
            let (_, section): (_, Section) =
                shared::config::load("alerter", &args, shared::config::Overrides::default()).map_err(|err| *err)?;
            let ops = &section.webhooks[0];
            assert_eq!(section.webhooks.len(), 1);
            assert_eq!(
                (ops.name.as_str(), ops.url.as_str(), ops.secret.as_str()),
                ("ops", "http://hooks:8080/fleet", "s3cret")
            );
            assert_eq!((ops.max_attempts, ops.group_wait_ms), (3, 1000));
            assert!(check(&section.alertmanager, &section.webhooks).is_ok());
            assert!(!format!("{ops:?}").contains("s3cret"), "the secret stays out of logs");
            Ok(())
        });
    }

    #[test]
    fn bad_sinks_are_refused() {
        let good =
            WebhookConfig { name: "ops".into(), url: "http://h/x".into(), secret: "k".into(), ..Default::default() };
        let am = AlertmanagerConfig::default();
        assert!(check(&am, std::slice::from_ref(&good)).is_ok());
        for bad in [
            WebhookConfig { name: "ops.team".into(), ..good.clone() },
            WebhookConfig { url: "https://h/x".into(), ..good.clone() },
            WebhookConfig { secret: String::new(), ..good.clone() },
            WebhookConfig { max_attempts: 0, ..good.clone() },
            WebhookConfig { group_wait_ms: 20_000, ..good.clone() },
        ] {
            assert!(check(&am, std::slice::from_ref(&bad)).is_err(), "{bad:?}");
        }
        assert!(check(&am, &[good.clone(), good.clone()]).is_err(), "names are unique");
        let am = AlertmanagerConfig { url: Some("alertmanager:9093".into()), ..Default::default() };
        assert!(check(&am, &[]).is_err());
    }
}
