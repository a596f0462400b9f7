//! The messages the distributed testing framework's workers send their coordinator, taken on
//! the ingest (NATS and HTTP) beside the canonical events, so such a worker can report to
//! fleetwatch directly:
//!
//! - `{"type": "heartbeat", "worker_id", "hardware_metrics": {..}}` becomes a heartbeat.
//! - `{"type": "task_result", "worker_id", "task_id", "status": "completed"|"failed",
//!   "execution_time_seconds"?, "hardware_metrics"?, "error"?}` becomes the task's start
//!   (`execution_time_seconds` before its end, when given), its end, and a heartbeat when it
//!   carries hardware metrics.
//!
//! `hardware_metrics` is `{"cpu_percent", "memory_percent", "memory_used_gb",
//! "memory_available_gb", "gpu": [{"index", "memory_allocated_gb", "memory_total_gb",
//! "memory_utilization_percent"}]}`: CPU and memory map to theirs, GPU memory is the mean
//! over the GPUs; GPU utilisation, network and task counts are not in it and stay unknown.

use serde::Deserialize;
use serde::de::IgnoredAny;
use shared::event::Event;
use shared::ingest::IngestMessage;

/// Enough of a message to tell the framework's from a canonical event: their heartbeat has
/// the same `type` as ours, but carries `hardware_metrics`.
#[derive(Deserialize)]
pub struct Probe<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a str>,
    hardware_metrics: Option<IgnoredAny>,
}

impl Probe<'_> {
    pub fn is_worker_message(&self) -> bool {
        self.kind == Some("task_result") || (self.kind == Some("heartbeat") && self.hardware_metrics.is_some())
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMessage {
    Heartbeat {
        worker_id: String,
        hardware_metrics: HardwareMetrics,
    },
    TaskResult {
        worker_id: String,
        task_id: String,
        status: ResultStatus,
        execution_time_seconds: Option<f64>,
        hardware_metrics: Option<HardwareMetrics>,
        error: Option<String>,
    },
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Completed,
    Failed,
}

#[derive(Deserialize)]
pub struct HardwareMetrics {
    cpu_percent: Option<f32>,
    memory_percent: Option<f32>,
    #[serde(default)]
    gpu: Vec<Gpu>,
}

#[derive(Deserialize)]
struct Gpu {
    memory_allocated_gb: Option<f32>,
    memory_total_gb: Option<f32>,
    memory_utilization_percent: Option<f32>,
}

impl Gpu {
    fn memory_pct(&self) -> Option<f32> {
        self.memory_utilization_percent.or(match (self.memory_allocated_gb, self.memory_total_gb) {
            (Some(used), Some(total)) if total > 0.0 => Some(100.0 * used / total),
            _ => None,
        })
    }
}

impl HardwareMetrics {
    fn heartbeat(&self, worker_id: &str) -> Event {
        let gpu: Vec<f32> = self.gpu.iter().filter_map(Gpu::memory_pct).collect();
        Event::Heartbeat {
            worker_id: worker_id.to_owned(),
            cpu_pct: self.cpu_percent,
            memory_pct: self.memory_percent,
            gpu_pct: None,
            gpu_memory_pct: (!gpu.is_empty()).then(|| gpu.iter().sum::<f32>() / gpu.len() as f32),
            network_pct: None,
            running_tasks: None,
            queued_tasks: None,
        }
    }
}

impl WorkerMessage {
    /// The canonical events it stands for, stamped relative to `now` (when it arrived).
    pub fn into_messages(self, now: i64) -> Vec<IngestMessage> {
        let message = |time: Option<i64>, event: Event| IngestMessage { id: None, time, source: None, event };
        match self {
            Self::Heartbeat { worker_id, hardware_metrics } => {
                vec![message(None, hardware_metrics.heartbeat(&worker_id))]
            }
            Self::TaskResult { worker_id, task_id, status, execution_time_seconds, hardware_metrics, error } => {
                let mut messages = Vec::new();
                if let Some(metrics) = &hardware_metrics {
                    messages.push(message(None, metrics.heartbeat(&worker_id)));
                }
                if let Some(seconds) = execution_time_seconds.filter(|seconds| seconds.is_finite() && *seconds >= 0.0) {
                    let started = now - (seconds * 1000.0).round() as i64;
                    let event = Event::TaskStarted { task_id: task_id.clone(), worker_id: worker_id.clone() };
                    messages.push(message(Some(started), event));
                }
                messages.push(message(
                    None,
                    match status {
                        ResultStatus::Completed => Event::TaskCompleted { task_id, worker_id },
                        ResultStatus::Failed => Event::TaskFailed {
                            task_id,
                            worker_id: Some(worker_id),
                            error: error.unwrap_or_else(|| "failed (the worker gave no error)".into()),
                        },
                    },
                ));
                messages
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_result_is_its_heartbeat_start_and_end() {
        let text = r#"{"type": "task_result", "worker_id": "w1", "task_id": "t1", "status": "completed",
                       "execution_time_seconds": 2.5, "extra": true,
                       "hardware_metrics": {"cpu_percent": 40, "memory_percent": 50, "gpu": [
                           {"index": 0, "memory_allocated_gb": 4, "memory_total_gb": 16},
                           {"index": 1, "memory_utilization_percent": 75}]}}"#;
        let probe: Probe = serde_json::from_str(text).expect("probe");
        assert!(probe.is_worker_message());
        let message: WorkerMessage = serde_json::from_str(text).expect("parses");
        let events = message.into_messages(10_000);
        assert_eq!(
            events.iter().map(|m| m.event.kind()).collect::<Vec<_>>(),
            ["heartbeat", "task_started", "task_completed"]
        );
        assert_eq!(events[1].time, Some(7_500));
        let Event::Heartbeat { cpu_pct, gpu_memory_pct, network_pct, .. } = &events[0].event else { panic!() };
        assert_eq!((*cpu_pct, *gpu_memory_pct, *network_pct), (Some(40.0), Some(50.0), None));
    }

    #[test]
    fn our_own_heartbeat_is_not_taken_for_theirs() {
        let ours: Probe =
            serde_json::from_str(r#"{"type": "heartbeat", "worker_id": "w1", "cpu_pct": 3}"#).expect("probe");
        assert!(!ours.is_worker_message());
    }
}
