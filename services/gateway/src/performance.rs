//! `GET /api/performance`: throughput and latency, comparisons by hardware, family and
//! model, how well the fleet's capacity is used, and recommendations read off those
//! figures, each with the numbers it rests on.

use crate::api::{ErrorBody, error};
use crate::live::Live;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::metrics::{Compatibility, GroupStats, Summary, SystemMetrics, TaskMetrics, Utilisation, WorkerStatus};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<Live> {
    OpenApiRouter::new().routes(routes!(performance))
}

/// How much of the fleet's capacity does work.
#[derive(Debug, Default, Clone, PartialEq, Serialize, ToSchema)]
pub struct Efficiency {
    pub connected_workers: u64,
    pub idle_workers: u64,
    /// busy + overloaded over connected (0 to 1).
    pub busy_share: f64,
    /// Task slots of connected workers, tasks running in them, and their ratio (0 to 1).
    pub slots: u64,
    pub running: u64,
    pub slot_utilisation: f64,
    /// Tasks waiting to start (queued or assigned).
    pub waiting: u64,
    /// Completions per minute per busy worker.
    pub throughput_per_busy_worker: f64,
}

/// Something worth changing, with the figures it rests on.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Recommendation {
    /// A stable name: `queue_time_outlier`, `hardware_fails_family`, `slow_hardware_for_family`,
    /// `low_scheduling_efficiency`, `idle_while_queued`, `overloaded_workers`.
    pub kind: &'static str,
    /// `warning` or `info`.
    pub severity: &'static str,
    pub title: String,
    pub detail: String,
    /// A page of the dashboard that shows more.
    pub link: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Performance {
    pub time: i64,
    pub throughput_per_min: f64,
    pub queue_time_ms: Summary,
    pub processing_time_ms: Summary,
    pub scheduling_efficiency: f64,
    pub utilisation: Utilisation,
    pub efficiency: Efficiency,
    pub by_hardware: Vec<GroupStats>,
    pub by_family: Vec<GroupStats>,
    pub by_model: Vec<GroupStats>,
    pub compatibility: Vec<Compatibility>,
    pub recommendations: Vec<Recommendation>,
}

/// Performance metrics
///
/// Throughput and latency, hardware and task-type comparisons, utilisation efficiency and
/// recommendations derived from them.
#[utoipa::path(get, path = "/api/performance", tag = "views",
    responses((status = 200, body = Performance), (status = 503, body = ErrorBody)))]
async fn performance(State(live): State<Live>) -> Response {
    let snapshot = live.read();
    let (Some(system), Some(tasks)) = (&snapshot.system, &snapshot.tasks) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no metrics yet: is the processor running?");
    };
    let slots = snapshot
        .workers
        .workers
        .values()
        .filter(|worker| worker.status != WorkerStatus::Disconnected)
        .map(|worker| worker.capabilities.as_ref().map_or(0, |capabilities| u64::from(capabilities.slots)));
    let efficiency = efficiency(system, slots);
    axum::Json(Performance {
        time: system.time,
        throughput_per_min: system.throughput_per_min,
        queue_time_ms: system.queue_time_ms.clone(),
        processing_time_ms: system.processing_time_ms.clone(),
        scheduling_efficiency: system.scheduling_efficiency,
        utilisation: system.utilisation.clone(),
        recommendations: recommend(system, tasks, &efficiency),
        efficiency,
        by_hardware: tasks.by_hardware.clone(),
        by_family: tasks.by_family.clone(),
        by_model: tasks.by_model.clone(),
        compatibility: tasks.compatibility.clone(),
    })
    .into_response()
}

/// `slots`: each connected worker's task slots.
pub fn efficiency(system: &SystemMetrics, slots: impl Iterator<Item = u64>) -> Efficiency {
    let workers = &system.workers;
    let connected = workers.total - workers.disconnected;
    let busy = workers.busy + workers.overloaded;
    let slots: u64 = slots.sum();
    let share = |part: u64, whole: u64| if whole == 0 { 0.0 } else { part as f64 / whole as f64 };
    Efficiency {
        connected_workers: connected,
        idle_workers: workers.idle,
        busy_share: share(busy, connected),
        slots,
        running: system.tasks.running,
        slot_utilisation: share(system.tasks.running, slots).min(1.0),
        waiting: system.tasks.queued + system.tasks.assigned,
        throughput_per_busy_worker: if busy == 0 { 0.0 } else { system.throughput_per_min / busy as f64 },
    }
}

/// Finished runs a figure needs before it is worth a recommendation.
const ENOUGH_RUNS: u64 = 20;

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn pct(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

fn seconds(ms: f64) -> String {
    format!("{:.0} s", ms / 1000.0)
}

/// The recommendations the figures call for, most pressing first.
pub fn recommend(system: &SystemMetrics, tasks: &TaskMetrics, efficiency: &Efficiency) -> Vec<Recommendation> {
    let mut found = Vec::new();
    // A model that waits far longer than the others.
    let waits: Vec<f64> = tasks
        .by_model
        .iter()
        .filter(|model| model.queue_time_ms.count >= 10)
        .map(|model| model.queue_time_ms.mean)
        .collect();
    if let Some(typical) = median(waits) {
        for model in tasks.by_model.iter().filter(|model| model.queue_time_ms.count >= 10) {
            let mean = model.queue_time_ms.mean;
            if mean >= 10_000.0 && mean > 3.0 * typical.max(1.0) {
                let best = model.family.and_then(|family| {
                    tasks
                        .compatibility
                        .iter()
                        .filter(|pair| pair.family == family)
                        .max_by(|a, b| a.score.total_cmp(&b.score))
                });
                let advice = match best {
                    Some(pair) => format!(
                        "add {} workers, which run {} best (score {:.0})",
                        pair.hardware.as_str(),
                        pair.family.as_str(),
                        pair.score
                    ),
                    None => "add workers that can run it".to_owned(),
                };
                found.push(Recommendation {
                    kind: "queue_time_outlier",
                    severity: "warning",
                    title: format!(
                        "Model \"{}\" waits {} to start, {:.0}x the typical model",
                        model.key,
                        seconds(mean),
                        mean / typical.max(1.0)
                    ),
                    detail: format!(
                        "Its mean queue time over its last {} starts is {}; the median model waits {}: {advice}.",
                        model.queue_time_ms.count,
                        seconds(mean),
                        seconds(typical)
                    ),
                    link: format!("/task-types/{}", model.family.map_or("text", |family| family.as_str())),
                });
            }
        }
    }
    // Hardware that fails one family where other hardware does not.
    let pairs = &tasks.fault_tolerance.failure_rate_by_pair;
    for pair in pairs.iter().filter(|pair| pair.runs >= ENOUGH_RUNS && pair.rate >= 0.2) {
        let best = pairs
            .iter()
            .filter(|other| other.family == pair.family && other.hardware != pair.hardware && other.runs >= ENOUGH_RUNS)
            .min_by(|a, b| a.rate.total_cmp(&b.rate));
        if let Some(best) = best.filter(|best| best.rate <= pair.rate / 2.0) {
            found.push(Recommendation {
                kind: "hardware_fails_family",
                severity: "warning",
                title: format!("{} fails {} tasks {} of the time", pair.hardware.as_str(), pair.family.as_str(), pct(pair.rate)),
                detail: format!(
                    "{} of {} {} runs on {} failed, against {} on {}: send {} tasks elsewhere, or find what breaks there.",
                    pair.failed, pair.runs, pair.family.as_str(), pair.hardware.as_str(), pct(best.rate), best.hardware.as_str(), pair.family.as_str()
                ),
                link: "/fault-tolerance".into(),
            });
        }
    }
    // Hardware that runs a family slowly where other hardware is fast.
    for pair in tasks.compatibility.iter().filter(|pair| pair.runs >= ENOUGH_RUNS && pair.score < 50.0) {
        let best = tasks
            .compatibility
            .iter()
            .filter(|other| other.family == pair.family && other.runs >= ENOUGH_RUNS)
            .max_by(|a, b| a.score.total_cmp(&b.score));
        if let Some(best) = best.filter(|best| best.score >= 85.0) {
            found.push(Recommendation {
                kind: "slow_hardware_for_family",
                severity: "info",
                title: format!(
                    "{} scores {:.0} for {} tasks, {} scores {:.0}",
                    pair.hardware.as_str(),
                    pair.score,
                    pair.family.as_str(),
                    best.hardware.as_str(),
                    best.score
                ),
                detail: format!(
                    "Over {} runs, {} is slow or unreliable for {}: prefer {} for them.",
                    pair.runs,
                    pair.hardware.as_str(),
                    pair.family.as_str(),
                    best.hardware.as_str()
                ),
                link: "/performance".into(),
            });
        }
    }
    if system.scheduling_efficiency < 0.7 && system.queue_time_ms.count >= ENOUGH_RUNS {
        let worst = tasks.by_family.iter().min_by(|a, b| a.best_fit_ratio.total_cmp(&b.best_fit_ratio));
        let which = worst.map_or(String::new(), |family| {
            format!(" {} tasks fare worst ({}).", family.key, pct(family.best_fit_ratio))
        });
        found.push(Recommendation {
            kind: "low_scheduling_efficiency",
            severity: "warning",
            title: format!("Only {} of assignments go to a best-fit worker", pct(system.scheduling_efficiency)),
            detail: format!("Tasks wait too long for the hardware that suits them and are placed elsewhere.{which} More best-fit capacity, or more patience in the balancer, would help."),
            link: "/task-types".into(),
        });
    }
    if efficiency.connected_workers > 0
        && efficiency.waiting > 0
        && efficiency.idle_workers as f64 >= 0.1 * efficiency.connected_workers as f64
    {
        found.push(Recommendation {
            kind: "idle_while_queued",
            severity: "info",
            title: format!("{} workers are idle while {} tasks wait", efficiency.idle_workers, efficiency.waiting),
            detail: "The waiting tasks may need hardware the idle workers lack, or wait for their dependencies: compare the queue by family with the idle workers by hardware.".into(),
            link: "/tasks?status=queued".into(),
        });
    }
    let overloaded = system.workers.overloaded;
    if efficiency.connected_workers > 0 && overloaded as f64 >= 0.05 * efficiency.connected_workers as f64 {
        found.push(Recommendation {
            kind: "overloaded_workers",
            severity: "warning",
            title: format!("{overloaded} workers are overloaded"),
            detail: "CPU at the overload threshold or more tasks waiting than slots: spread the load, or add capacity of their kind.".into(),
            link: "/workers?status=overloaded".into(),
        });
    }
    found.sort_by_key(|found| if found.severity == "warning" { 0 } else { 1 });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::event::{HardwareKind, ModelFamily};
    use shared::metrics::{FaultTolerance, PairRate, TaskCounts, WorkerCounts};

    fn model(key: &str, family: ModelFamily, queue_mean: f64) -> GroupStats {
        GroupStats {
            key: key.into(),
            family: Some(family),
            queue_time_ms: Summary { count: 50, mean: queue_mean, ..Summary::default() },
            ..GroupStats::default()
        }
    }

    fn system(efficiency: f64, idle: u64, overloaded: u64, queued: u64) -> SystemMetrics {
        SystemMetrics {
            workers: WorkerCounts {
                total: 20,
                idle,
                busy: 20 - idle - overloaded,
                overloaded,
                active: 20 - idle,
                disconnected: 0,
            },
            tasks: TaskCounts { queued, running: 10, ..TaskCounts::default() },
            scheduling_efficiency: efficiency,
            queue_time_ms: Summary { count: 500, ..Summary::default() },
            ..SystemMetrics::default()
        }
    }

    #[test]
    fn each_recommendation_rests_on_its_figures() {
        let tasks = TaskMetrics {
            by_model: vec![
                model("bert-base", ModelFamily::Text, 2_000.0),
                model("vit-large", ModelFamily::Vision, 3_000.0),
                model("bert-large", ModelFamily::Text, 45_000.0),
            ],
            compatibility: vec![
                Compatibility { hardware: HardwareKind::Cuda, family: ModelFamily::Text, score: 96.0, runs: 400 },
                Compatibility { hardware: HardwareKind::Cpu, family: ModelFamily::Text, score: 30.0, runs: 300 },
            ],
            fault_tolerance: FaultTolerance {
                failure_rate_by_pair: vec![
                    PairRate {
                        hardware: HardwareKind::Webgpu,
                        family: ModelFamily::Audio,
                        rate: 0.3,
                        failed: 30,
                        runs: 100,
                    },
                    PairRate {
                        hardware: HardwareKind::Tpu,
                        family: ModelFamily::Audio,
                        rate: 0.02,
                        failed: 2,
                        runs: 100,
                    },
                ],
                ..FaultTolerance::default()
            },
            ..TaskMetrics::default()
        };
        let system = system(0.6, 4, 2, 30);
        let efficiency = efficiency(&system, [4u64; 20].into_iter());
        assert_eq!((efficiency.slots, efficiency.slot_utilisation), (80, 0.125));
        let found = recommend(&system, &tasks, &efficiency);
        let kinds: Vec<&str> = found.iter().map(|found| found.kind).collect();
        assert_eq!(
            kinds,
            [
                "queue_time_outlier",
                "hardware_fails_family",
                "low_scheduling_efficiency",
                "overloaded_workers",
                "slow_hardware_for_family",
                "idle_while_queued"
            ]
        );
        assert_eq!(found[0].title, "Model \"bert-large\" waits 45 s to start, 15x the typical model");
        assert!(found[0].detail.contains("add cuda workers"), "{}", found[0].detail);
        assert!(
            found[1].detail.contains("30 of 100 audio runs on webgpu failed, against 2% on tpu"),
            "{}",
            found[1].detail
        );

        let calm = recommend(
            &self::system(0.95, 1, 0, 0),
            &TaskMetrics::default(),
            &Efficiency { connected_workers: 20, idle_workers: 1, ..Efficiency::default() },
        );
        assert!(calm.is_empty(), "{calm:?}");
    }
}
