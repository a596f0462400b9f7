//! The coordinator's REST API as it answers, and how its fields map to fleetwatch's. Extra
//! fields are ignored; a missing optional one is unknown, never filled in.

use serde::Deserialize;
use serde_json::value::RawValue;
use shared::event::{Capabilities, HardwareKind, ReportedStatus};

/// `GET /status`.
#[derive(Debug, Deserialize)]
pub struct Status {
    pub version: Option<serde_json::Value>,
    pub uptime: Option<serde_json::Value>,
}

/// `GET /api/workers` and `GET /api/tasks`: each item is parsed on its own, so one odd item
/// is dead-lettered and the rest still count.
#[derive(Debug, Deserialize)]
pub struct WorkerList {
    pub workers: Vec<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
pub struct TaskList {
    pub tasks: Vec<Box<RawValue>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    Active,
    Idle,
    Busy,
    Offline,
    RecoveryPending,
}

impl WorkerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Offline => "offline",
            Self::RecoveryPending => "recovery_pending",
        }
    }

    /// `busy` is busy because its running tasks say so; `recovery_pending` takes no work
    /// while the coordinator recovers it, which is what draining means here.
    pub fn reported(self) -> ReportedStatus {
        match self {
            Self::Active | Self::Idle | Self::Busy => ReportedStatus::Online,
            Self::Offline => ReportedStatus::Offline,
            Self::RecoveryPending => ReportedStatus::Draining,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Worker {
    pub worker_id: String,
    pub hostname: Option<String>,
    pub status: WorkerStatus,
    pub last_heartbeat: Option<String>,
    #[serde(default)]
    pub capabilities_summary: Option<Summary>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Summary {
    pub hardware: Option<Vec<String>>,
    pub gpu: Option<GpuSummary>,
    pub cpu: Option<CpuSummary>,
    pub memory_gb: Option<f32>,
}

#[derive(Debug, Deserialize)]
pub struct GpuSummary {
    pub name: Option<String>,
    pub count: Option<u32>,
    pub memory_gb: Option<f32>,
}

#[derive(Debug, Deserialize)]
pub struct CpuSummary {
    pub cores: Option<u32>,
    pub threads: Option<u32>,
}

impl Worker {
    /// Its primary hardware is the first accelerator it lists, else `cpu`; what it lists
    /// is kept as `hardware:<kind>` tags. Slots are not in the summary: 1.
    pub fn capabilities(&self) -> Capabilities {
        let summary = self.capabilities_summary.as_ref();
        let listed: Vec<&str> =
            summary.and_then(|summary| summary.hardware.as_ref()).into_iter().flatten().map(String::as_str).collect();
        let kinds: Vec<HardwareKind> = listed.iter().map(|name| hardware_kind(name)).collect();
        let hardware = kinds
            .iter()
            .copied()
            .find(|kind| *kind != HardwareKind::Cpu)
            .or_else(|| kinds.first().copied())
            .unwrap_or(HardwareKind::Other);
        let gpu = summary.and_then(|summary| summary.gpu.as_ref());
        let cpu = summary.and_then(|summary| summary.cpu.as_ref());
        let mut tags: Vec<String> = listed.iter().map(|name| format!("hardware:{name}")).collect();
        if let Some(count) = gpu.and_then(|gpu| gpu.count) {
            tags.push(format!("gpus:{count}"));
        }
        if let Some(hostname) = &self.hostname {
            tags.push(format!("host:{hostname}"));
        }
        Capabilities {
            hardware,
            cpu_cores: cpu.and_then(|cpu| cpu.cores.or(cpu.threads)).unwrap_or(0),
            memory_gb: summary.and_then(|summary| summary.memory_gb).unwrap_or(0.0),
            gpu_model: gpu.and_then(|gpu| gpu.name.clone()),
            gpu_memory_gb: gpu.and_then(|gpu| gpu.memory_gb),
            slots: 1,
            tags,
        }
    }
}

fn hardware_kind(name: &str) -> HardwareKind {
    HardwareKind::ALL.into_iter().find(|kind| kind.as_str().eq_ignore_ascii_case(name)).unwrap_or(HardwareKind::Other)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
    Migrating,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 6] =
        [Self::Pending, Self::Running, Self::Completed, Self::Failed, Self::Cancelled, Self::Migrating];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Migrating => "migrating",
        }
    }

    /// How far along fleetwatch's lifecycle: queued 0, running 2, finished 3. A migrating
    /// task is back in the queue until it runs elsewhere.
    pub fn stage(self) -> u8 {
        match self {
            Self::Pending | Self::Migrating => 0,
            Self::Running => 2,
            Self::Completed | Self::Failed | Self::Cancelled => 3,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Task {
    pub task_id: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub status: TaskStatus,
    pub created: Option<String>,
    pub started: Option<String>,
    pub ended: Option<String>,
    pub worker_id: Option<String>,
    pub priority: Option<f64>,
}

/// `GET /api/tasks/{id}`: what the list leaves out.
#[derive(Debug, Default, Deserialize)]
pub struct TaskDetail {
    pub config: Option<TaskConfig>,
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TaskConfig {
    pub model: Option<String>,
}

impl TaskDetail {
    pub fn error_text(&self) -> Option<String> {
        match self.error.as_ref()? {
            serde_json::Value::Null => None,
            serde_json::Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// The coordinator's clock: ISO 8601 in its local time with no offset
/// (`2026-11-25T11:41:57.726330`), `utc_offset` ahead of UTC. A time that names its own
/// offset keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    pub offset_minutes: i64,
}

impl Clock {
    /// `+HH:MM`, `-HH:MM`, `Z` or `UTC`.
    pub fn parse(offset: &str) -> anyhow::Result<Self> {
        let offset = offset.trim();
        if offset.eq_ignore_ascii_case("utc") || offset.eq_ignore_ascii_case("z") {
            return Ok(Self { offset_minutes: 0 });
        }
        let bad = || anyhow::anyhow!("utc_offset {offset:?} is not +HH:MM, -HH:MM or UTC");
        let sign = match offset.chars().next() {
            Some('+') => 1,
            Some('-') => -1,
            _ => return Err(bad()),
        };
        let (hours, minutes) = offset[1..].split_once(':').ok_or_else(bad)?;
        let (hours, minutes): (i64, i64) = (hours.parse().map_err(|_| bad())?, minutes.parse().map_err(|_| bad())?);
        if hours > 14 || minutes > 59 {
            return Err(bad());
        }
        Ok(Self { offset_minutes: sign * (hours * 60 + minutes) })
    }

    /// ms since the epoch; `None` for a text that is not such a time.
    pub fn millis(self, text: &str) -> Option<i64> {
        let millis = shared::time::parse_rfc3339(text)?;
        let own_offset = text.get(19..).is_some_and(|rest| rest.contains(['Z', 'z', '+', '-']));
        Some(if own_offset { millis } else { millis - self.offset_minutes * 60_000 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_move_by_the_offset_and_explicit_ones_keep_theirs() {
        let utc = Clock::parse("UTC").expect("utc");
        let berlin = Clock::parse("+01:00").expect("offset");
        assert_eq!(utc.millis("2026-11-25T11:41:57.726330"), Some(1_795_606_917_726));
        assert_eq!(utc.millis("2026-11-25T11:41:57"), Some(1_795_606_917_000), "no microseconds when zero");
        assert_eq!(berlin.millis("2026-11-25T12:41:57"), Some(1_795_606_917_000));
        assert_eq!(berlin.millis("2026-11-25T11:41:57Z"), Some(1_795_606_917_000));
        assert_eq!(utc.millis("yesterday"), None);
        assert!(Clock::parse("Europe/Berlin").is_err());
        assert_eq!(Clock::parse("-05:30").expect("offset").offset_minutes, -330);
    }

    #[test]
    fn a_worker_summary_gives_what_it_knows() {
        let worker: Worker = serde_json::from_str(
            r#"{"worker_id": "w1", "hostname": "gpu-box", "status": "recovery_pending", "last_heartbeat": null,
                "capabilities_summary": {"hardware": ["cpu", "cuda"], "gpu": {"name": "A100", "count": 2, "memory_gb": 80},
                                         "cpu": {"model": "EPYC", "cores": 64, "threads": 128}, "memory_gb": 512}}"#,
        )
        .expect("parses");
        assert_eq!(worker.status.reported(), ReportedStatus::Draining);
        let capabilities = worker.capabilities();
        assert_eq!(capabilities.hardware, HardwareKind::Cuda);
        assert_eq!((capabilities.cpu_cores, capabilities.memory_gb), (64, 512.0));
        assert_eq!(capabilities.gpu_model.as_deref(), Some("A100"));
        assert_eq!(capabilities.tags, ["hardware:cpu", "hardware:cuda", "gpus:2", "host:gpu-box"]);
        let bare: Worker = serde_json::from_str(r#"{"worker_id": "w2", "status": "idle"}"#).expect("parses");
        assert_eq!(bare.capabilities().hardware, HardwareKind::Other);
    }
}
