use clap::Parser;
use fleetwatch_processor::Processor;
use shared::config::{CommonArgs, Overrides};
use std::process::ExitCode;

/// fleetwatch processor: folds FLEET_EVENTS into the fleet's state and publishes derived
/// metrics every tick.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Metrics tick, ms, 100 or more [default: 1000]
    #[arg(long)]
    tick_ms: Option<u64>,
    /// How often the state is snapshotted, s [default: 10]
    #[arg(long)]
    snapshot_every_secs: Option<u64>,
    /// How often every worker's metrics are sampled into FLEET_METRICS, s [default: 10]
    #[arg(long)]
    sample_secs: Option<u64>,
    /// Processors the fleet is split over: 1 or a divisor of 64 [default: 1]
    #[arg(long)]
    partitions: Option<u32>,
    /// The partition this processor folds, from 0; unset with --partitions over 1, it is
    /// the fleet tier that merges them
    #[arg(long)]
    partition: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut flags = Overrides::default();
    flags
        .set("processor.tick_ms", cli.tick_ms)
        .set("processor.snapshot_every_secs", cli.snapshot_every_secs)
        .set("processor.sample_secs", cli.sample_secs)
        .set("processor.partitions", cli.partitions)
        .set("processor.partition", cli.partition);
    shared::service::main::<Processor>(&cli.common, flags)
}
