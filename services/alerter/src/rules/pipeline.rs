//! Rules about the system itself: components that report themselves down (the coordinator,
//! a load balancer), and fleetwatch's own services: the archive falling behind, dead
//! letters piling up, a service gone silent. Service health reaches the alerter as
//! `service_report` events the collector writes, so these replay like every other rule.

use super::Alarms;
use super::config::names::{ARCHIVE_LAG, COORDINATOR_UNREACHABLE, DEAD_LETTERS_RISING, SERVICE_SILENT};
use crate::engine::Details;
use serde::{Deserialize, Serialize};
use shared::event::{ComponentHealth, Event};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    services: BTreeMap<String, Service>,
    /// (when a service counts as silent, service).
    silent_at: BTreeSet<(i64, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Service {
    last_report: i64,
    /// Per instance: (started_at, dead letters counted so far).
    instances: BTreeMap<String, (i64, u64)>,
    /// (time, new dead letters) within the window.
    dead_letters: VecDeque<(i64, u64)>,
}

impl Pipeline {
    pub fn apply(&mut self, alarms: &mut Alarms, time: i64, event: &Event) {
        match event {
            Event::ComponentStatus { component, health, message } => {
                let target = format!("component:{component}");
                alarms.set(
                    *health == ComponentHealth::Down,
                    COORDINATOR_UNREACHABLE,
                    &target,
                    time,
                    1.0,
                    1.0,
                    || {
                        Details::new(format!("{component} is unreachable: {message}"))
                            .label("component", component.as_str())
                    },
                    || format!("{component} is reachable again ({message})"),
                );
            }
            Event::ServiceReport { service, instance, started_at, dead_letters, lag_seconds } => {
                let silent_ms = alarms.compiled.rules.service_silent.silent_secs as i64 * 1000;
                let new = !self.services.contains_key(service);
                let entry = self.services.entry(service.clone()).or_default();
                if new || time > entry.last_report {
                    self.silent_at.remove(&(entry.last_report + silent_ms, service.clone()));
                    entry.last_report = time;
                    self.silent_at.insert((time + silent_ms, service.clone()));
                }
                let target = format!("service:{service}");
                alarms.clear(SERVICE_SILENT, &target, time, 0.0, || format!("{service} reports again"));
                // Counters restart with the process: a new start counts from zero.
                let (seen_start, seen) = entry.instances.entry(instance.clone()).or_insert((*started_at, 0));
                let fresh = if *seen_start == *started_at { dead_letters.saturating_sub(*seen) } else { *dead_letters };
                *seen_start = *started_at;
                *seen = *dead_letters;
                if fresh > 0 {
                    entry.dead_letters.push_back((time, fresh));
                }
                self.check_dead_letters(alarms, time, service);
                if let Some(lag) = lag_seconds {
                    let threshold = alarms.compiled.rules.archive_lag.lag_secs;
                    alarms.set(
                        *lag >= threshold,
                        ARCHIVE_LAG,
                        &target,
                        time,
                        *lag,
                        threshold,
                        || {
                            Details::new(format!("The {service} is {lag:.0}s behind"))
                                .label("service", service.as_str())
                        },
                        || format!("the {service} is {lag:.0}s behind"),
                    );
                }
            }
            _ => {}
        }
    }

    fn check_dead_letters(&mut self, alarms: &mut Alarms, time: i64, service: &str) {
        let rule = &alarms.compiled.rules.dead_letters_rising;
        let (threshold, window_secs) = (rule.count, rule.window_secs);
        let Some(entry) = self.services.get_mut(service) else { return };
        while entry.dead_letters.front().is_some_and(|(at, _)| *at <= time - window_secs as i64 * 1000) {
            entry.dead_letters.pop_front();
        }
        let count: u64 = entry.dead_letters.iter().map(|(_, n)| n).sum();
        alarms.set(
            count >= threshold,
            DEAD_LETTERS_RISING,
            &format!("service:{service}"),
            time,
            count as f64,
            threshold as f64,
            || {
                Details::new(format!("The {service} dead-lettered {count} messages within {window_secs}s"))
                    .label("service", service)
            },
            || format!("the {service} dead-lettered {count} messages within {window_secs}s"),
        );
    }

    /// Services whose last report is `silent_secs` behind the watermark are silent.
    pub fn advance(&mut self, alarms: &mut Alarms, watermark: i64) {
        let silent_ms = alarms.compiled.rules.service_silent.silent_secs as i64 * 1000;
        while let Some((due, service)) = self.silent_at.first().cloned() {
            if due > watermark {
                break;
            }
            self.silent_at.pop_first();
            let Some(entry) = self.services.get(&service) else { continue };
            let quiet_s = (watermark - entry.last_report) as f64 / 1000.0;
            alarms.raise(
                SERVICE_SILENT,
                &format!("service:{service}"),
                due,
                quiet_s,
                silent_ms as f64 / 1000.0,
                || {
                    Details::new(format!("The {service} has sent no health report for {quiet_s:.0}s"))
                        .label("service", service.as_str())
                },
            );
        }
    }

    pub fn every_second(&mut self, alarms: &mut Alarms, watermark: i64) {
        let services: Vec<String> = self
            .services
            .iter()
            .filter(|(_, entry)| !entry.dead_letters.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        for service in services {
            self.check_dead_letters(alarms, watermark, &service);
        }
    }
}
