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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut flags = Overrides::default();
    flags
        .set("alerter.rules.worker_overloaded.cpu_pct", cli.overload_cpu_pct)
        .set("alerter.rules.worker_overloaded.for_secs", cli.overload_for_secs)
        .set("alerter.enable_alerts", cli.no_alerts.then_some(false));
    shared::service::main::<Alerter>(&cli.common, flags)
}
