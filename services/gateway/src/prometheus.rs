//! `GET /metrics`: the Prometheus text format. The fleet's figures, and every service's
//! counters and gauges from its health reports, each family once with HELP and TYPE, all
//! under the one `fleetwatch_` prefix and in base units.

use crate::live::{Live, Snapshot};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use shared::alert::AlertState;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One metric family: its help, type and sample lines (`name{labels} value`).
struct Family {
    help: String,
    kind: &'static str,
    samples: Vec<String>,
}

#[derive(Default)]
struct Exposition(BTreeMap<String, Family>);

impl Exposition {
    fn add(&mut self, name: &str, kind: &'static str, help: &str, labels: &[(&str, &str)], value: f64) {
        let name = format!("fleetwatch_{name}");
        let labels: Vec<String> = labels.iter().map(|(key, value)| format!("{key}=\"{}\"", escape(value))).collect();
        let sample = match labels.is_empty() {
            true => format!("{name} {value}"),
            false => format!("{name}{{{}}} {value}", labels.join(",")),
        };
        let family = self.0.entry(name).or_insert_with(|| Family { help: help.to_owned(), kind, samples: Vec::new() });
        family.samples.push(sample);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (name, family) in &self.0 {
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {}", family.kind);
            for sample in &family.samples {
                let _ = writeln!(out, "{sample}");
            }
        }
        out
    }
}

/// Label values escape backslash, quote and newline.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render(snapshot: &Snapshot) -> String {
    let mut out = Exposition::default();
    if let Some(system) = &snapshot.system {
        let workers = &system.workers;
        for (status, value) in [
            ("idle", workers.idle),
            ("busy", workers.busy),
            ("overloaded", workers.overloaded),
            ("disconnected", workers.disconnected),
        ] {
            out.add("workers", "gauge", "Workers by status.", &[("status", status)], value as f64);
        }
        let tasks = &system.tasks;
        for (status, value) in [("queued", tasks.queued), ("assigned", tasks.assigned), ("running", tasks.running)] {
            out.add("tasks", "gauge", "Tasks now queued, assigned or running.", &[("status", status)], value as f64);
        }
        for (outcome, value) in
            [("completed", tasks.completed), ("failed", tasks.failed), ("cancelled", tasks.cancelled)]
        {
            let help = "Tasks finished since the events stream began, by outcome.";
            out.add("tasks_finished_total", "counter", help, &[("outcome", outcome)], value as f64);
        }
        let help = "Tasks completed in the last 60 seconds.";
        out.add("tasks_completed_last_minute", "gauge", help, &[], system.throughput_per_min);
        for (summary, name, help) in [
            (&system.queue_time_ms, "task_queue_time_seconds", "Queue time over the last 1000 task starts."),
            (&system.processing_time_ms, "task_processing_time_seconds", "Run time over the last 1000 completions."),
        ] {
            for (percentile, value) in [("50", summary.p50), ("95", summary.p95), ("99", summary.p99)] {
                out.add(name, "gauge", help, &[("percentile", percentile)], value / 1000.0);
            }
        }
        let help = "Share of recent assignments that went to a best-fit worker (0 to 1).";
        out.add("scheduling_efficiency_ratio", "gauge", help, &[], system.scheduling_efficiency);
        let utilisation = &system.utilisation;
        for (resource, value) in [
            ("cpu", utilisation.cpu),
            ("gpu", utilisation.gpu),
            ("memory", utilisation.memory),
            ("network", utilisation.network),
        ] {
            let help = "Mean utilisation over connected workers (0 to 1).";
            out.add("utilisation_ratio", "gauge", help, &[("resource", resource)], value / 100.0);
        }
    }
    let firing = snapshot.firing.alerts.iter().filter(|alert| alert.state == AlertState::Firing).count();
    out.add("alerts_firing", "gauge", "Alerts firing now.", &[], firing as f64);
    for report in snapshot.services.values() {
        let instance = [("service", report.service.as_str()), ("instance", report.instance.as_str())];
        for (name, value) in &report.counters {
            let (exported, help, scale) = described(name, "counter");
            out.add(&exported, "counter", &help, &instance, *value as f64 * scale);
        }
        for gauge in &report.gauges {
            let (exported, help, scale) = described(&gauge.name, "gauge");
            let mut labels: Vec<(&str, &str)> = instance.to_vec();
            labels.extend(gauge.labels.iter().map(|(key, value)| (key.as_str(), value.as_str())));
            out.add(&exported, "gauge", &help, &labels, gauge.value * scale);
        }
    }
    out.render()
}

fn described(name: &str, kind: &str) -> (String, String, f64) {
    match shared::health::describe(name) {
        Some(description) => {
            (description.exported.unwrap_or(name).to_owned(), description.help.to_owned(), description.scale)
        }
        None => (name.to_owned(), format!("A {kind} a service reports as {name}."), 1.0),
    }
}

pub async fn metrics(State(live): State<Live>) -> Response {
    let text = render(&live.read());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
