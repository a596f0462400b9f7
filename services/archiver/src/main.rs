use clap::Parser;
use fleetwatch_archiver::Archiver;
use shared::config::{CommonArgs, Overrides};
use std::path::PathBuf;
use std::process::ExitCode;

/// fleetwatch archiver: appends events, alerts and metrics to a DuckDB file, exactly once.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// DuckDB file [default: var/fleetwatch.duckdb]
    #[arg(long)]
    db_path: Option<PathBuf>,
    /// Days of raw data kept [default: 7]
    #[arg(long)]
    retention_days: Option<u32>,
    /// Seconds the active archiver may stay silent before a waiting one takes over [default: 10]
    #[arg(long)]
    lease_ttl_secs: Option<u64>,
    /// Days of alert history kept [default: 7]
    #[arg(long)]
    alert_retention_days: Option<u32>,
    /// Days of one-minute roll-ups kept [default: 30]
    #[arg(long)]
    metrics_retention_days: Option<u32>,
    /// How often the fleet's state is snapshotted into the archive, s [default: 120]
    #[arg(long)]
    snapshot_every_secs: Option<u64>,
    /// How often roll-ups and retention run, s [default: 60]
    #[arg(long)]
    maintain_every_secs: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut flags = Overrides::default();
    flags
        .set("archiver.db_path", cli.db_path)
        .set("archiver.retention_days", cli.retention_days)
        .set("archiver.lease_ttl_secs", cli.lease_ttl_secs)
        .set("archiver.alert_retention_days", cli.alert_retention_days)
        .set("archiver.metrics_retention_days", cli.metrics_retention_days)
        .set("archiver.snapshot_every_secs", cli.snapshot_every_secs)
        .set("archiver.maintain_every_secs", cli.maintain_every_secs);
    shared::service::main::<Archiver>(&cli.common, flags)
}
