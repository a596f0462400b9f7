use clap::Parser;
use fleetwatch_gateway::Gateway;
use shared::config::{CommonArgs, Overrides};
use std::process::ExitCode;

/// fleetwatch gateway: the dashboard, REST API, WebSocket and Prometheus endpoint.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to bind [default: 127.0.0.1]
    #[arg(long)]
    host: Option<String>,
    /// Port; 0 picks a free one [default: 8082]
    #[arg(long)]
    port: Option<u16>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut flags = Overrides::default();
    flags.set("gateway.host", cli.host).set("gateway.port", cli.port);
    shared::service::main::<Gateway>(&cli.common, flags)
}
