use clap::Parser;
use fleetwatch_collector::Collector;
use shared::config::{CommonArgs, Overrides};
use std::process::ExitCode;

/// fleetwatch collector: validates heartbeats and task events from the demo fleet, NATS
/// ingest and HTTP push, and publishes them to the FLEET_EVENTS stream.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Demo fleet size; 0 turns the demo off [default: 24]
    #[arg(long)]
    demo_workers: Option<usize>,
    /// Demo fleet seed [default: 42]
    #[arg(long)]
    demo_seed: Option<u64>,
    /// Demo tick, ms [default: 1000]
    #[arg(long)]
    demo_tick_ms: Option<u64>,
    /// Address for HTTP ingest [default: 127.0.0.1]
    #[arg(long)]
    http_host: Option<String>,
    /// Port for HTTP ingest; 0 picks a free one [default: 8083]
    #[arg(long)]
    http_port: Option<u16>,
    /// Poll this coordinator's REST API for workers and tasks (http://host:port)
    #[arg(long)]
    coordinator: Option<String>,
    /// Coordinator poll interval, ms [default: 2000]
    #[arg(long)]
    coordinator_poll_ms: Option<u64>,
    /// Report this machine as a worker (CPU, memory, network; GPUs through NVML)
    #[arg(long)]
    host_agent: bool,
    /// The host agent's worker id [default: the host name]
    #[arg(long)]
    host_worker_id: Option<String>,
    /// Serve the HTTP ingest with no token on an address other hosts can reach
    #[arg(long)]
    insecure: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut flags = Overrides::default();
    flags
        .set("collector.demo.workers", cli.demo_workers)
        .set("collector.demo.enabled", cli.demo_workers.map(|workers| workers > 0))
        .set("collector.demo.seed", cli.demo_seed)
        .set("collector.demo.tick_ms", cli.demo_tick_ms)
        .set("collector.http.host", cli.http_host)
        .set("collector.http.port", cli.http_port)
        .set("collector.http.insecure", cli.insecure.then_some(true))
        .set("collector.coordinator.url", cli.coordinator)
        .set("collector.coordinator.poll_ms", cli.coordinator_poll_ms)
        .set("collector.host_agent.enabled", cli.host_agent.then_some(true))
        .set("collector.host_agent.worker_id", cli.host_worker_id);
    shared::service::main::<Collector>(&cli.common, flags)
}
