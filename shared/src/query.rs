//! Queries the processor answers over NATS, JSON both ways: `<prefix>.query.processor.tasks`
//! lists the live tasks (queued, assigned, running, failed and awaiting a retry) filtered,
//! sorted and paged, or counted by a grouping, so no reply holds the whole state. A refused
//! request is answered `{"error": reason, "status": 400}`. Catalogue: `schemas/queries.md`.

use crate::event::{HardwareKind, ModelFamily};
use crate::paging::{Order, Page};
use serde::{Deserialize, Serialize};

/// A live task's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LiveStatus {
    Queued,
    Assigned,
    Running,
    /// Failed, and awaiting a retry (for up to 10 minutes).
    Failed,
}

impl LiveStatus {
    pub const ALL: [LiveStatus; 4] = [Self::Queued, Self::Assigned, Self::Running, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Assigned => "assigned",
            Self::Running => "running",
            Self::Failed => "failed",
        }
    }
}

/// What the live task list can be sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskSort {
    /// When it was first queued.
    #[default]
    CreatedAt,
    /// When it was last (re)queued.
    QueuedAt,
    StartedAt,
    Priority,
    Model,
    WorkerId,
    Status,
    TaskId,
}

/// What live tasks can be counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskGroupBy {
    WorkerId,
    Model,
    Family,
    Hardware,
    Status,
    /// `<family>/<hardware>`: where each kind of task runs.
    Placement,
}

/// `processor.tasks`: every field optional; filters combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskQuery {
    /// Only these statuses (default all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<LiveStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<ModelFamily>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hardware: Option<HardwareKind>,
    /// Tasks whose id contains this text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// Tasks that wait for this task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<String>,
    /// Only tasks that wait for a task not finished yet.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
    /// First queued at or after this, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// First queued before this, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub sort: TaskSort,
    pub order: Order,
    /// 1 to 1000, default 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Count the selected tasks per value of this instead of listing them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<TaskGroupBy>,
}

/// A task the processor holds now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveTask {
    pub task_id: String,
    pub status: LiveStatus,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<ModelFamily>,
    /// 0 (lowest) to 9.
    pub priority: u8,
    /// First queued, last (re)queued and started, ms.
    pub created_at: i64,
    pub queued_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<HardwareKind>,
    /// Tasks it waits for, and of those the ones not finished yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<String>,
    /// Retries so far.
    pub attempts: u32,
    /// Its last change, ms.
    pub changed_at: i64,
}

/// Live tasks counted by one value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskGroup {
    /// The value (`unknown` where a task has none, such as a queued task's worker).
    pub key: String,
    pub queued: u64,
    pub assigned: u64,
    pub running: u64,
    pub failed: u64,
    pub total: u64,
}

/// The answer: a page of tasks, or with `group_by` the groups, most tasks first (at most
/// `limit`; `total` counts the groups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskAnswer {
    /// The processor's clock when it answered, ms.
    pub time: i64,
    /// The event sequence its state reflects.
    pub events_seq: u64,
    #[serde(flatten)]
    pub page: Page<LiveTask>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<TaskGroup>>,
}
