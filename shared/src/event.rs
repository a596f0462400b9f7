//! The canonical fleet events: what the collector writes to the FLEET_EVENTS stream.
//!
//! Everything downstream (state, metrics, alerts, the archive) is derived from these.

use crate::alert::{Matcher, Severity};
use crate::subjects::Subjects;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The kinds of hardware a worker offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HardwareKind {
    Cpu,
    Cuda,
    Rocm,
    Tpu,
    Webgpu,
    Webnn,
    Npu,
    Other,
}

impl HardwareKind {
    pub const ALL: [HardwareKind; 8] =
        [Self::Cpu, Self::Cuda, Self::Rocm, Self::Tpu, Self::Webgpu, Self::Webnn, Self::Npu, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Rocm => "rocm",
            Self::Tpu => "tpu",
            Self::Webgpu => "webgpu",
            Self::Webnn => "webnn",
            Self::Npu => "npu",
            Self::Other => "other",
        }
    }
}

/// Model families, the seed's task types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ModelFamily {
    Text,
    Vision,
    Audio,
    Multimodal,
    /// A model the model-to-family table does not know.
    Other,
}

impl ModelFamily {
    pub const ALL: [ModelFamily; 5] = [Self::Text, Self::Vision, Self::Audio, Self::Multimodal, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Vision => "vision",
            Self::Audio => "audio",
            Self::Multimodal => "multimodal",
            Self::Other => "other",
        }
    }
}

/// What a worker offers, as it registers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Capabilities {
    pub hardware: HardwareKind,
    pub cpu_cores: u32,
    pub memory_gb: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_gb: Option<f32>,
    /// How many tasks it runs at once.
    pub slots: u32,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A status a coordinator reports for a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportedStatus {
    /// Taking work.
    Online,
    /// Finishing its tasks, taking no new ones.
    Draining,
    /// Known to be unreachable.
    Offline,
}

/// Health a component (coordinator, load balancer) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ComponentHealth {
    Healthy,
    Degraded,
    Down,
}

/// One canonical event. Field units: percentages are 0..=100, times are ms since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    WorkerRegistered {
        worker_id: String,
        capabilities: Capabilities,
    },
    /// The worker is alive at this time, with the figures its source knows: a figure left
    /// out is unknown and keeps its last known value (a coordinator's worker list, say,
    /// knows liveness and running tasks, not CPU).
    Heartbeat {
        worker_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cpu_pct: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        memory_pct: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gpu_pct: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gpu_memory_pct: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        network_pct: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        running_tasks: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queued_tasks: Option<u32>,
    },
    WorkerStatusChanged {
        worker_id: String,
        status: ReportedStatus,
        reason: String,
    },
    WorkerDeregistered {
        worker_id: String,
        reason: String,
    },
    TaskQueued {
        task_id: String,
        model: String,
        family: ModelFamily,
        /// 0 (lowest) to 9 (highest).
        priority: u8,
        /// Tasks that must finish before this one may start (at most 32).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        depends_on: Vec<String>,
    },
    TaskAssigned {
        task_id: String,
        worker_id: String,
        /// Whether the worker is one of the best fits for the task's model family; left out
        /// where the source does not know (a coordinator's task list).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        best_fit: Option<bool>,
    },
    TaskStarted {
        task_id: String,
        worker_id: String,
    },
    TaskCompleted {
        task_id: String,
        worker_id: String,
    },
    TaskFailed {
        task_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker_id: Option<String>,
        error: String,
    },
    /// A failed task is queued again; `attempt` counts from 1 for the first retry.
    TaskRetried {
        task_id: String,
        attempt: u32,
    },
    TaskCancelled {
        task_id: String,
        reason: String,
    },
    ComponentStatus {
        component: String,
        health: ComponentHealth,
        message: String,
    },
    RecoveryAction {
        component: String,
        action: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        succeeded: bool,
    },
    /// A service's health report, forwarded by the collector every few seconds: what the
    /// pipeline's own alert rules read, and the clock the alerter's watermark trusts.
    ServiceReport {
        service: String,
        instance: String,
        started_at: i64,
        /// Messages it has dead-lettered or could not decode, since it started.
        dead_letters: u64,
        /// How far behind it is (the archiver's oldest unarchived message), s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lag_seconds: Option<f64>,
    },
    /// The collector's clock, every `[collector.clock] interval_ms`: event time moves on
    /// when the fleet is quiet, so rules that fire on absence fire on time, and a replay
    /// sees the same ticks.
    Clock {},
    /// A program raised an alert (the monitoring guide's `_add_alert`).
    AlertRaised {
        source: String,
        level: Severity,
        title: String,
        #[serde(default)]
        message: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        metrics: BTreeMap<String, f64>,
    },
    /// A person acknowledged an open alert.
    AlertAcknowledged {
        alert_id: String,
        by: String,
        #[serde(default)]
        comment: String,
    },
    /// A person resolved an open alert by hand.
    AlertResolved {
        alert_id: String,
        by: String,
        #[serde(default)]
        comment: String,
    },
    SilenceCreated {
        silence_id: String,
        matchers: Vec<Matcher>,
        starts_at: i64,
        ends_at: i64,
        by: String,
        #[serde(default)]
        comment: String,
    },
    SilenceDeleted {
        silence_id: String,
        by: String,
    },
}

impl Event {
    /// The event's `type` tag, as it appears on the wire and in the archive.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::WorkerRegistered { .. } => "worker_registered",
            Self::Heartbeat { .. } => "heartbeat",
            Self::WorkerStatusChanged { .. } => "worker_status_changed",
            Self::WorkerDeregistered { .. } => "worker_deregistered",
            Self::TaskQueued { .. } => "task_queued",
            Self::TaskAssigned { .. } => "task_assigned",
            Self::TaskStarted { .. } => "task_started",
            Self::TaskCompleted { .. } => "task_completed",
            Self::TaskFailed { .. } => "task_failed",
            Self::TaskRetried { .. } => "task_retried",
            Self::TaskCancelled { .. } => "task_cancelled",
            Self::ComponentStatus { .. } => "component_status",
            Self::RecoveryAction { .. } => "recovery_action",
            Self::ServiceReport { .. } => "service_report",
            Self::Clock {} => "clock",
            Self::AlertRaised { .. } => "alert_raised",
            Self::AlertAcknowledged { .. } => "alert_acknowledged",
            Self::AlertResolved { .. } => "alert_resolved",
            Self::SilenceCreated { .. } => "silence_created",
            Self::SilenceDeleted { .. } => "silence_deleted",
        }
    }

    /// Events about alerts that people and programs send through the gateway, which the
    /// collector takes only on `<prefix>.control.alerts`.
    pub fn is_alert_control(&self) -> bool {
        matches!(
            self,
            Self::AlertRaised { .. }
                | Self::AlertAcknowledged { .. }
                | Self::AlertResolved { .. }
                | Self::SilenceCreated { .. }
                | Self::SilenceDeleted { .. }
        )
    }

    /// Events that no agent may send: the collector makes service reports and clock ticks itself, and alert
    /// control comes only through the gateway.
    pub fn is_internal(&self) -> bool {
        self.is_alert_control() || matches!(self, Self::ServiceReport { .. } | Self::Clock {})
    }

    pub fn worker_id(&self) -> Option<&str> {
        match self {
            Self::WorkerRegistered { worker_id, .. }
            | Self::Heartbeat { worker_id, .. }
            | Self::WorkerStatusChanged { worker_id, .. }
            | Self::WorkerDeregistered { worker_id, .. }
            | Self::TaskAssigned { worker_id, .. }
            | Self::TaskStarted { worker_id, .. }
            | Self::TaskCompleted { worker_id, .. } => Some(worker_id),
            Self::TaskFailed { worker_id, .. } => worker_id.as_deref(),
            _ => None,
        }
    }

    pub fn task_id(&self) -> Option<&str> {
        match self {
            Self::TaskQueued { task_id, .. }
            | Self::TaskAssigned { task_id, .. }
            | Self::TaskStarted { task_id, .. }
            | Self::TaskCompleted { task_id, .. }
            | Self::TaskFailed { task_id, .. }
            | Self::TaskRetried { task_id, .. }
            | Self::TaskCancelled { task_id, .. } => Some(task_id),
            _ => None,
        }
    }

    /// The subject this event is published on: task events by the task's shard, heartbeats
    /// and other worker events by the worker's shard and id, system events by component.
    pub fn subject(&self, subjects: &Subjects) -> String {
        match self {
            Self::ComponentStatus { component, .. } | Self::RecoveryAction { component, .. } => {
                subjects.system_event(component)
            }
            Self::Heartbeat { worker_id, .. } => subjects.heartbeat_event(worker_id),
            Self::ServiceReport { service, .. } => subjects.service_event(service),
            Self::Clock {} => subjects.clock_event(),
            _ if self.is_alert_control() => subjects.alert_control_event(),
            _ => match (self.task_id(), self.worker_id()) {
                (Some(task_id), worker_id) => subjects.task_event(task_id, worker_id),
                (None, Some(worker_id)) => subjects.worker_event(worker_id),
                (None, None) => subjects.system_event("unknown"),
            },
        }
    }

    /// The ids that become subject tokens; the collector validates them before publishing.
    pub fn tokens(&self) -> Vec<(&'static str, &str)> {
        let mut tokens = Vec::with_capacity(2);
        if let Some(worker_id) = self.worker_id() {
            tokens.push(("worker_id", worker_id));
        }
        if let Some(task_id) = self.task_id() {
            tokens.push(("task_id", task_id));
        }
        if let Self::ComponentStatus { component, .. } | Self::RecoveryAction { component, .. } = self {
            tokens.push(("component", component));
        }
        match self {
            Self::ServiceReport { service, .. } => tokens.push(("service", service)),
            Self::AlertRaised { source, .. } => tokens.push(("source", source)),
            Self::SilenceCreated { silence_id, .. } | Self::SilenceDeleted { silence_id, .. } => {
                tokens.push(("silence_id", silence_id))
            }
            _ => {}
        }
        tokens
    }
}
