//! Configuration: defaults, then a TOML file, then `FLEETWATCH_*` environment variables,
//! then command-line flags, each overriding the one before.
//!
//! One file serves every service: `[nats]`, `[log]` and `[fleet]` are shared, and each service reads
//! its own section (`[collector]`, `[gateway]`, ...). Environment variables nest with a
//! double underscore: `FLEETWATCH_NATS__URL`, `FLEETWATCH_GATEWAY__PORT`.

use clap::ValueEnum;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "fleetwatch.toml";

/// A password, token or key from the config or the environment: never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// How a service proves itself to nats-server (at most one way) and checks the server:
/// `[nats]`'s credential keys. schemas/permissions.md gives each service's permissions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Server URL, or several separated by commas. Default `nats://127.0.0.1:4222`.
    pub url: String,
    /// Subject prefix. Default `fleet`.
    pub prefix: String,
    /// How long to keep trying the first connection, seconds. Default 30.
    pub connect_timeout_secs: u64,
    /// A NATS credentials file (JWT and nkey seed, from `nsc`). Default none.
    pub credentials: Option<PathBuf>,
    /// User name, with `password`. Default none.
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// A token the server's `authorization { token }` wants. Default none.
    pub token: Option<Secret>,
    /// An nkey seed (`SU...`), whose public key the server lists. Default none.
    pub nkey_seed: Option<Secret>,
    /// Insist on TLS even when the URL says `nats://`. `tls://` URLs, and servers that
    /// require it, use TLS anyway. Default false.
    pub tls_required: bool,
    /// PEM file of the CA that signed the server's certificate, when not a public one.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM), for servers that verify clients.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// How long FLEET_EVENTS keeps events, hours. Default 168 (7 days).
    pub events_max_age_hours: u64,
    /// Size cap of FLEET_EVENTS, MiB of messages as stored before compression; the oldest
    /// events go first. At 10,000 demo workers it holds about 70 minutes. Default 24576.
    pub events_max_mib: i64,
    /// How long FLEET_METRICS keeps system, task and per-worker samples, hours. Default 6.
    pub metrics_max_age_hours: u64,
    /// Size cap of FLEET_METRICS, MiB. Default 2048.
    pub metrics_max_mib: i64,
    /// How many JetStream servers keep each stream, bucket and object store this service
    /// creates: 1, or 3 on a three-node cluster (any two then hold every acknowledged
    /// message). Default 1.
    pub replicas: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            prefix: crate::subjects::DEFAULT_PREFIX.into(),
            connect_timeout_secs: 30,
            credentials: None,
            user: None,
            password: None,
            token: None,
            nkey_seed: None,
            tls_required: false,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            events_max_age_hours: 7 * 24,
            events_max_mib: 24 * 1024,
            metrics_max_age_hours: 6,
            metrics_max_mib: 2048,
            replicas: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object a line, for log shippers.
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`. Default `human`.
    pub format: LogFormat,
    /// A tracing filter (`info`, `debug`, `fleetwatch_gateway=debug,info`). Default `info`;
    /// `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Human, level: "info".into() }
    }
}

/// `[fleet]`: what makes a worker's status, the same for every service that folds events
/// (the processor live, the archiver for the past), so both see the same fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// A worker with no heartbeat for this long is disconnected, s. Default 15.
    pub lost_after_secs: u64,
    /// A worker with no heartbeat for this long is retired: it leaves the live state, s.
    /// Default 600.
    pub retire_after_secs: u64,
    /// CPU at or above this makes a worker overloaded, percent. Default 90.
    pub overload_cpu_pct: f32,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self { lost_after_secs: 15, retire_after_secs: 600, overload_cpu_pct: 90.0 }
    }
}

/// The sections every service reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommonConfig {
    pub nats: NatsConfig,
    pub log: LogConfig,
    pub fleet: FleetConfig,
    pub probe: crate::probe::ProbeConfig,
}

/// Flags every service takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// TOML configuration file [default: ./fleetwatch.toml when it exists]
    #[arg(long, env = "FLEETWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// NATS server URL(s) [default: nats://127.0.0.1:4222]
    #[arg(long)]
    pub nats_url: Option<String>,
    /// Subject prefix [default: fleet]
    #[arg(long)]
    pub prefix: Option<String>,
    /// Log format [default: human]
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter [default: info]
    #[arg(long)]
    pub log_level: Option<String>,
    /// Debug logging, the same as --log-level debug
    #[arg(long)]
    pub debug: bool,
    /// Serve /healthz and /readyz on this host:port [default: none]
    #[arg(long)]
    pub probe_listen: Option<String>,
    /// Read the configuration (file, environment, flags), say what is wrong with it, and exit
    #[arg(long)]
    pub check_config: bool,
}

/// Values given on the command line, as dotted keys (`gateway.port`).
#[derive(Debug, Default)]
pub struct Overrides(Vec<(String, serde_json::Value)>);

impl Overrides {
    /// Records `key = value` when the flag was given.
    pub fn set<T: Serialize>(&mut self, key: &str, value: Option<T>) -> &mut Self {
        if let Some(value) = value.and_then(|value| serde_json::to_value(value).ok()) {
            self.0.push((key.to_owned(), value));
        }
        self
    }
}

/// Loads the shared sections and the service's own `section`.
pub fn load<S>(
    section: &str,
    args: &CommonArgs,
    service_flags: Overrides,
) -> Result<(CommonConfig, S), Box<figment::Error>>
where
    S: Serialize + DeserializeOwned + Default,
{
    let mut flags = Overrides::default();
    flags
        .set("nats.url", args.nats_url.clone())
        .set("nats.prefix", args.prefix.clone())
        .set("log.format", args.log_format)
        .set("log.level", args.log_level.clone().or(args.debug.then(|| "debug".to_owned())))
        .set("probe.listen", args.probe_listen.clone());

    let mut figment = Figment::new()
        .merge(Serialized::default("nats", NatsConfig::default()))
        .merge(Serialized::default("log", LogConfig::default()))
        .merge(Serialized::default("fleet", FleetConfig::default()))
        .merge(Serialized::default("probe", crate::probe::ProbeConfig::default()))
        .merge(Serialized::default(section, S::default()));
    figment = match &args.config {
        Some(path) => figment.merge(Toml::file_exact(path)),
        None => figment.merge(Toml::file(DEFAULT_CONFIG_FILE)),
    };
    figment = figment.merge(Env::prefixed("FLEETWATCH_").split("__").ignore(&["config"]));
    for (key, value) in flags.0.into_iter().chain(service_flags.0) {
        figment = figment.merge(Serialized::default(&key, value));
    }
    let common = CommonConfig {
        nats: figment.extract_inner("nats")?,
        log: figment.extract_inner("log")?,
        fleet: figment.extract_inner("fleet")?,
        probe: figment.extract_inner("probe")?,
    };
    let own = figment.extract_inner(section)?;
    Ok((common, own))
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment's own error
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Demo {
        port: u16,
        name: String,
    }

    #[test]
    fn file_then_environment_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "fleetwatch.toml",
                "[nats]\nurl = \"nats://file:4222\"\nprefix = \"filed\"\n[demo]\nport = 1\nname = \"file\"\n[other]\nx = 1\n",
            )?;
            jail.set_env("FLEETWATCH_DEMO__PORT", "2");
            jail.set_env("FLEETWATCH_NATS__PREFIX", "envd");
            let args = CommonArgs { prefix: Some("flagged".into()), debug: true, ..CommonArgs::default() };
            let mut flags = Overrides::default();
            flags.set("demo.name", Some("flag"));
            let (common, demo): (CommonConfig, Demo) = load("demo", &args, flags).map_err(|err| *err)?;
            assert_eq!(common.nats.url, "nats://file:4222");
            assert_eq!(common.nats.prefix, "flagged");
            assert_eq!(common.log.level, "debug");
            assert_eq!(demo, Demo { port: 2, name: "flag".into() });
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_in_a_section_is_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("fleetwatch.toml", "[demo]\nprot = 1\n")?;
            let result: Result<(CommonConfig, Demo), _> = load("demo", &CommonArgs::default(), Overrides::default());
            assert!(result.is_err());
            Ok(())
        });
    }
}
