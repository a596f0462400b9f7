//! Host agent: reports the machine the collector runs on as a worker, so one collector can
//! run on every worker node. CPU, memory and network come from sysinfo; GPU utilisation
//! and memory from NVML when an NVIDIA driver is present (the library is loaded at run
//! time, so machines without one simply report no GPU).

use crate::publisher::{Outgoing, Publisher};
use serde::{Deserialize, Serialize};
use shared::Envelope;
use shared::event::{Capabilities, Event, HardwareKind, ReportedStatus};
use shared::ingest::validate;
use std::time::Duration;
use sysinfo::{Networks, System};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// `[collector.host_agent]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostAgentConfig {
    /// Report this machine as a worker. Default false.
    pub enabled: bool,
    /// Its worker id. Default: the host name, with characters not allowed in ids as `-`.
    pub worker_id: Option<String>,
    /// Heartbeat interval, ms. Default 1000.
    pub interval_ms: u64,
    /// Link speed that `network_pct` is relative to, Mbit/s. Default 1000.
    pub link_mbps: f64,
    /// Tasks it runs at once, as registered. Default 1.
    pub slots: u32,
}

impl Default for HostAgentConfig {
    fn default() -> Self {
        Self { enabled: false, worker_id: None, interval_ms: 1000, link_mbps: 1000.0, slots: 1 }
    }
}

/// One GPU reading: utilisation and memory used, percent.
struct GpuReading {
    utilisation_pct: f32,
    memory_pct: f32,
}

/// What NVML offers: the first GPU's name and memory, and its readings.
struct Gpus {
    nvml: nvml_wrapper::Nvml,
}

impl Gpus {
    fn open() -> Option<Self> {
        match nvml_wrapper::Nvml::init() {
            Ok(nvml) if nvml.device_count().unwrap_or(0) > 0 => Some(Self { nvml }),
            Ok(_) => None,
            Err(err) => {
                info!(reason = %err, "no NVML, reporting no GPU");
                None
            }
        }
    }

    fn describe(&self) -> Option<(String, f32)> {
        let device = self.nvml.device_by_index(0).ok()?;
        let memory = device.memory_info().ok()?;
        Some((device.name().ok()?, memory.total as f32 / 1e9))
    }

    /// Mean utilisation and memory use over every GPU.
    fn read(&self) -> Option<GpuReading> {
        let count = self.nvml.device_count().ok()?;
        let (mut utilisation, mut memory) = (0.0, 0.0);
        for index in 0..count {
            let device = self.nvml.device_by_index(index).ok()?;
            utilisation += device.utilization_rates().ok()?.gpu as f32;
            let info = device.memory_info().ok()?;
            memory += 100.0 * info.used as f32 / info.total.max(1) as f32;
        }
        Some(GpuReading { utilisation_pct: utilisation / count as f32, memory_pct: memory / count as f32 })
    }
}

/// A worker id from a host name: letters, digits, `-` and `_` kept, the rest as `-`.
pub fn worker_id_from(host: &str) -> String {
    let id: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .take(128)
        .collect();
    if id.is_empty() { "host".into() } else { id }
}

pub async fn run(config: HostAgentConfig, publisher: Publisher, shutdown: CancellationToken) -> anyhow::Result<()> {
    let worker_id = config
        .worker_id
        .clone()
        .unwrap_or_else(|| worker_id_from(&System::host_name().unwrap_or_else(|_| "host".into())));
    let mut system = System::new().map_err(|err| anyhow::anyhow!("reading this host: {err}"))?;
    let mut networks =
        Networks::new_with_refreshed_list().map_err(|err| anyhow::anyhow!("reading network interfaces: {err}"))?;
    let gpus = Gpus::open();
    let gpu = gpus.as_ref().and_then(Gpus::describe);
    system.refresh_memory();
    let capabilities = Capabilities {
        hardware: if gpu.is_some() { HardwareKind::Cuda } else { HardwareKind::Cpu },
        cpu_cores: System::physical_core_count().unwrap_or(1) as u32,
        memory_gb: system.total_memory() as f32 / 1e9,
        gpu_model: gpu.as_ref().map(|(name, _)| name.clone()),
        gpu_memory_gb: gpu.as_ref().map(|(_, memory)| *memory),
        slots: config.slots.max(1),
        tags: vec!["host-agent".into()],
    };
    info!(worker_id = %worker_id, hardware = capabilities.hardware.as_str(), gpu = ?capabilities.gpu_model, "host agent reporting");
    let registered = Event::WorkerRegistered { worker_id: worker_id.clone(), capabilities };
    publish(&publisher, registered).await;

    let interval_ms = config.interval_ms.max(100);
    let mut interval = tokio::time::interval(Duration::from_millis(interval_ms));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    system.refresh_cpu_usage();
    interval.tick().await;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        system.refresh_cpu_usage();
        system.refresh_memory();
        networks.refresh(true);
        let bytes: u64 = networks.values().map(|network| network.received() + network.transmitted()).sum();
        let link_bytes = config.link_mbps * 1e6 / 8.0 * interval_ms as f64 / 1000.0;
        let reading = gpus.as_ref().and_then(Gpus::read);
        let heartbeat = Event::Heartbeat {
            worker_id: worker_id.clone(),
            cpu_pct: Some(system.global_cpu_usage().clamp(0.0, 100.0)),
            memory_pct: Some(
                (100.0 * system.used_memory() as f64 / system.total_memory().max(1) as f64).clamp(0.0, 100.0) as f32,
            ),
            gpu_pct: reading.as_ref().map(|gpu| gpu.utilisation_pct.clamp(0.0, 100.0)),
            gpu_memory_pct: reading.as_ref().map(|gpu| gpu.memory_pct.clamp(0.0, 100.0)),
            network_pct: Some((100.0 * bytes as f64 / link_bytes).clamp(0.0, 100.0) as f32),
            running_tasks: Some(0),
            queued_tasks: Some(0),
        };
        publish(&publisher, heartbeat).await;
    }
    let stopped =
        Event::WorkerStatusChanged { worker_id, status: ReportedStatus::Offline, reason: "host agent stopped".into() };
    publish(&publisher, stopped).await;
    Ok(())
}

async fn publish(publisher: &Publisher, event: Event) {
    if let Err(err) = validate(&event) {
        warn!(error = %err, "host reading out of range, not sent");
        return;
    }
    if let Err(err) =
        publisher.publish(vec![Outgoing::fresh(Envelope::new(shared::now_ms(), "host-agent", event))]).await
    {
        warn!(error = format!("{err:#}"), "host reading not stored");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_become_valid_ids() {
        assert_eq!(worker_id_from("gpu-node-1.example.com"), "gpu-node-1-example-com");
        assert!(shared::subjects::check_token("worker_id", &worker_id_from("weird host!")).is_ok());
        assert_eq!(worker_id_from(""), "host");
    }
}
