//! `GET /api/fault-tolerance`: where failures happen, what recovers the fleet and how well,
//! from the processor's latest task metrics, with the workers away now and the
//! components' health. Trends over time are the history endpoints' (`faults_*` and
//! `tasks_failed` among the system metrics; recovery actions among the events).

use crate::api::{ErrorBody, error};
use crate::live::Live;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::metrics::{ComponentState, FaultTolerance};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<Live> {
    OpenApiRouter::new().routes(routes!(fault_tolerance))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Faults<'a> {
    pub time: i64,
    #[serde(flatten)]
    #[schema(value_type = FaultTolerance)]
    pub fault_tolerance: &'a FaultTolerance,
    /// Share of retried tasks that then completed (null before any ended).
    pub retry_success_rate: Option<f64>,
    /// Share of recovery actions that worked (null before any).
    pub recovery_success_rate: Option<f64>,
    /// Workers disconnected now.
    pub disconnected_now: u64,
    /// Tasks failed and retried since the stream began.
    pub tasks_failed: u64,
    pub tasks_retried: u64,
    #[schema(value_type = BTreeMap<String, ComponentState>)]
    pub components: &'a BTreeMap<String, ComponentState>,
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Fault tolerance metrics
///
/// Failure rates by hardware, model and both; the most frequent errors; each recovery
/// action and how well it worked; how retries end; outages and mean time to recovery.
#[utoipa::path(get, path = "/api/fault-tolerance", tag = "views",
    responses((status = 200, body = Faults), (status = 503, body = ErrorBody)))]
async fn fault_tolerance(State(live): State<Live>) -> Response {
    let snapshot = live.read();
    let (Some(system), Some(tasks)) = (&snapshot.system, &snapshot.tasks) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no metrics yet: is the processor running?");
    };
    let faults = &tasks.fault_tolerance;
    axum::Json(Faults {
        time: tasks.time,
        fault_tolerance: faults,
        retry_success_rate: share(faults.retries_recovered, faults.retries_recovered + faults.retries_failed_again),
        recovery_success_rate: share(faults.recovery_actions_succeeded, faults.recovery_actions),
        disconnected_now: system.workers.disconnected,
        tasks_failed: system.tasks.failed,
        tasks_retried: system.tasks.retried,
        components: &system.components,
    })
    .into_response()
}
