use clap::Parser;
use fleetwatch_alerter::Alerter;
use shared::config::{CommonArgs, Overrides};
use std::process::ExitCode;

/// fleetwatch alerter: evaluates alert rules over FLEET_EVENTS and publishes alerts on
/// `<prefix>.alerts.<severity>.<rule>`.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// CPU percent at or above which a worker is overloaded [default: 90]
    #[arg(long)]
    overload_cpu_pct: Option<f32>,
    /// How long the CPU must stay that high before the alert fires, s [default: 30]
    #[arg(long)]
    overload_for_secs: Option<u64>,
    /// Disable alert generation (the guide's `--no-alerts`; config `alerter.enable_alerts`)
    #[arg(long)]
    no_alerts: bool,
    /// Alerters the fleet's rules are split over: 1 or a divisor of 64 [default: 1]
    #[arg(long)]
    partitions: Option<u32>,
    /// The partition whose workers and tasks this alerter watches, from 0; unset with
    /// --partitions over 1, it is the fleet tier that runs the fleet-wide rules
    #[arg(long)]
    partition: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut flags = Overrides::default();
    flags
        .set("alerter.rules.worker_overloaded.cpu_pct", cli.overload_cpu_pct)
        .set("alerter.rules.worker_overloaded.for_secs", cli.overload_for_secs)
        .set("alerter.enable_alerts", cli.no_alerts.then_some(false))
        .set("alerter.partitions", cli.partitions)
        .set("alerter.partition", cli.partition);
    shared::service::main::<Alerter>(&cli.common, flags)
}
