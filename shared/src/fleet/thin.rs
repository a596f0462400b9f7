//! Which heartbeats the archive keeps, so that folding what it kept gives every worker the
//! same status at every instant as folding every heartbeat.
//!
//! A worker's status rests on its last heartbeat's [`Load`] and on whether that heartbeat is
//! within `lost_after` (and on lifecycle events, which are all kept). So a heartbeat may go
//! when the one kept before it has the same load and is recent enough to keep the worker
//! alive until the next kept one. Streaming, that means holding back the latest heartbeat
//! dropped so far (`pending`) and keeping it after all when the next one shows a gap, when a
//! later one must be kept and is too far from the last kept, or when the stream's time
//! passes it by `lost_after` (the worker fell silent: it was the last before the silence).
//! A steady worker keeps one heartbeat in `lost_after`, plus every change of load.

use super::state::{Limits, Load};
use crate::Envelope;
use crate::event::{Event, ReportedStatus};
use std::collections::HashMap;

/// A heartbeat and its stream sequence.
pub type Sequenced = (u64, Envelope<Event>);

#[derive(Default)]
struct Worker {
    slots: Option<u32>,
    offline: bool,
    /// The last kept heartbeat (or registration): its time and load (`None`: keep the next).
    kept: Option<(i64, Option<Load>)>,
    /// The latest heartbeat dropped since, which may still have to be kept.
    pending: Option<(Sequenced, Load)>,
    /// The newest heartbeat or registration time seen: older heartbeats change nothing.
    seen: i64,
    /// The last known CPU, running and queued tasks: a heartbeat may leave any out.
    figures: (f32, u32, u32),
}

pub struct Thinner {
    limits: Limits,
    workers: HashMap<String, Worker>,
}

impl Thinner {
    pub fn new(limits: Limits) -> Self {
        Self { limits, workers: HashMap::new() }
    }

    /// Takes the next event of the stream; returns what to archive now, in stream order
    /// (a held-back heartbeat may come out ahead of the event that released it).
    pub fn offer(&mut self, seq: u64, envelope: Envelope<Event>) -> Vec<Sequenced> {
        let time = envelope.time;
        let lost_after = self.limits.lost_after_ms;
        match &envelope.payload {
            Event::Heartbeat { worker_id, cpu_pct, running_tasks, queued_tasks, .. } => {
                let worker = self.workers.entry(worker_id.clone()).or_default();
                if time < worker.seen {
                    return Vec::new();
                }
                worker.seen = time;
                let (cpu, running, queued) = &mut worker.figures;
                (*cpu, *running, *queued) =
                    (cpu_pct.unwrap_or(*cpu), running_tasks.unwrap_or(*running), queued_tasks.unwrap_or(*queued));
                let load = Load::of(*cpu, *running, *queued, worker.slots, &self.limits);
                let mut out = Vec::new();
                if let (Some(((_, held), _)), Some((kept, _))) = (&worker.pending, worker.kept)
                    && (time - held.time > lost_after || time - kept > lost_after)
                {
                    worker.flush(&mut out);
                }
                let keep = worker.offline
                    || match worker.kept {
                        None => true,
                        Some((kept, kept_load)) => kept_load != Some(load) || time - kept > lost_after,
                    };
                if keep {
                    worker.flush(&mut out);
                    worker.kept = Some((time, Some(load)));
                    worker.offline = false;
                    out.push((seq, envelope));
                } else {
                    worker.pending = Some(((seq, envelope), load));
                }
                return out;
            }
            Event::WorkerRegistered { worker_id, capabilities } => {
                let worker = self.workers.entry(worker_id.clone()).or_default();
                worker.slots = Some(capabilities.slots);
                worker.offline = false;
                worker.seen = worker.seen.max(time);
                // A registration keeps the worker alive like a heartbeat, and its slots may
                // change what the next heartbeat's load means.
                let since = worker.kept.map_or(time, |(kept, _)| kept.max(time));
                worker.kept = Some((since, None));
            }
            Event::WorkerStatusChanged { worker_id, status, .. } => {
                let worker = self.workers.entry(worker_id.clone()).or_default();
                worker.offline = *status == ReportedStatus::Offline;
                if let Some((_, load)) = &mut worker.kept {
                    *load = None;
                }
            }
            Event::WorkerDeregistered { worker_id, .. } => {
                self.workers.remove(worker_id);
            }
            _ => {}
        }
        vec![(seq, envelope)]
    }

    /// The held-back heartbeats older than `lost_after` at stream time `watermark`: their
    /// workers fell silent after them, so each was the last before a silence.
    pub fn due(&mut self, watermark: i64) -> Vec<Sequenced> {
        let mut out = Vec::new();
        for worker in self.workers.values_mut() {
            if worker.pending.as_ref().is_some_and(|((_, held), _)| watermark - held.time > self.limits.lost_after_ms) {
                worker.flush(&mut out);
            }
        }
        out.sort_by_key(|(seq, _)| *seq);
        out
    }

    /// Every held-back heartbeat (at shutdown: keeping one too many is always safe).
    pub fn drain(&mut self) -> Vec<Sequenced> {
        self.due(i64::MAX)
    }
}

impl Worker {
    /// Keeps the held-back heartbeat after all.
    fn flush(&mut self, out: &mut Vec<Sequenced>) {
        if let Some(((seq, envelope), load)) = self.pending.take() {
            self.kept = Some((envelope.time, Some(load)));
            out.push((seq, envelope));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Capabilities, HardwareKind};
    use crate::fleet::FleetState;
    use crate::metrics::WorkerStatus;

    const LIMITS: Limits =
        Limits { lost_after_ms: 15_000, retire_after_ms: 600_000, overload_cpu_pct: 90.0, max_tasks_tracked: 10 };

    /// A small deterministic generator, so the test needs no dependency.
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    /// Three workers over ten minutes: heartbeats every second with loads that drift across
    /// the thresholds, silences longer and shorter than `lost_after`, an offline report and
    /// returns, and heartbeats that arrive out of order.
    fn stream(seed: u64) -> Vec<(i64, Event)> {
        let mut rng = Lcg(seed);
        let mut events = Vec::new();
        for worker in ["a", "b", "c"] {
            let capabilities = Capabilities {
                hardware: HardwareKind::Cpu,
                cpu_cores: 8,
                memory_gb: 16.0,
                gpu_model: None,
                gpu_memory_gb: None,
                slots: 2,
                tags: vec![],
            };
            events.push((0, Event::WorkerRegistered { worker_id: worker.into(), capabilities }));
        }
        let mut silent_until = [0i64; 3];
        // Each worker's load drifts: hot or not, running or not, over its slots or not.
        let mut hot = [false; 3];
        let mut running = [true; 3];
        let mut over = [false; 3];
        for second in 1..600i64 {
            for (index, worker) in ["a", "b", "c"].iter().enumerate() {
                let time = second * 1000 + index as i64 * 7;
                if rng.below(200) == 0 {
                    silent_until[index] = time + 1000 * (5 + rng.below(30) as i64);
                }
                if rng.below(400) == 0 {
                    let status = ReportedStatus::Offline;
                    events.push((
                        time,
                        Event::WorkerStatusChanged { worker_id: (*worker).into(), status, reason: "lost".into() },
                    ));
                }
                if time < silent_until[index] {
                    continue;
                }
                hot[index] ^= rng.below(60) == 0;
                running[index] ^= rng.below(40) == 0;
                over[index] ^= rng.below(100) == 0;
                let late = if rng.below(50) == 0 { 1500 } else { 0 };
                events.push((
                    time - late,
                    Event::Heartbeat {
                        worker_id: (*worker).into(),
                        cpu_pct: Some(if hot[index] {
                            90.0 + rng.below(5) as f32
                        } else {
                            60.0 + rng.below(30) as f32
                        }),
                        memory_pct: Some(50.0),
                        gpu_pct: None,
                        gpu_memory_pct: None,
                        network_pct: Some(1.0),
                        running_tasks: Some(u32::from(running[index])),
                        queued_tasks: Some(if over[index] { 3 } else { rng.below(3) as u32 }),
                    },
                ));
            }
        }
        events
    }

    /// Each worker's status at each instant, folding every event (sequence, event time,
    /// event) that had arrived by then (`arrived` by sequence), in sequence order.
    fn statuses(
        events: &[(u64, i64, Event)],
        arrived: &HashMap<u64, i64>,
        instants: &[i64],
    ) -> Vec<Vec<Option<WorkerStatus>>> {
        let mut state = FleetState::default();
        let mut next = 0;
        instants
            .iter()
            .map(|instant| {
                while next < events.len() && arrived[&events[next].0] <= *instant {
                    state.apply(events[next].1, &events[next].2);
                    next += 1;
                }
                ["a", "b", "c"]
                    .iter()
                    .map(|worker| state.workers.get(*worker).map(|state| state.status(*instant, &LIMITS)))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_kept_heartbeats_give_the_same_status_at_every_instant() {
        for seed in 1..=5 {
            let all: Vec<(u64, i64, Event)> = stream(seed)
                .into_iter()
                .enumerate()
                .map(|(index, (time, event))| (index as u64 + 1, time, event))
                .collect();
            // An event arrives at the newest event time seen so far (late ones come late).
            let mut newest = 0;
            let arrived: HashMap<u64, i64> = all
                .iter()
                .map(|(seq, time, _)| {
                    newest = newest.max(*time);
                    (*seq, newest)
                })
                .collect();
            let mut thinner = Thinner::new(LIMITS);
            let mut kept = Vec::new();
            for (seq, time, event) in &all {
                kept.extend(thinner.offer(*seq, Envelope::with_id(seq.to_string(), *time, "test", event.clone())));
                kept.extend(thinner.due(arrived[seq]));
            }
            kept.extend(thinner.drain());
            kept.sort_by_key(|(seq, _)| *seq);
            let kept: Vec<(u64, i64, Event)> =
                kept.into_iter().map(|(seq, envelope)| (seq, envelope.time, envelope.payload)).collect();
            let heartbeats = |events: &[(u64, i64, Event)]| {
                events.iter().filter(|(_, _, event)| matches!(event, Event::Heartbeat { .. })).count()
            };
            assert!(
                heartbeats(&kept) * 2 < heartbeats(&all),
                "seed {seed}: {} of {}",
                heartbeats(&kept),
                heartbeats(&all)
            );
            // Every 250 ms of the ten minutes and a little past the end.
            let instants: Vec<i64> = (0..2500).map(|step| step * 250).collect();
            let (thinned, whole) = (statuses(&kept, &arrived, &instants), statuses(&all, &arrived, &instants));
            let first_difference = thinned.iter().zip(&whole).position(|(thinned, whole)| thinned != whole);
            assert_eq!(
                first_difference,
                None,
                "seed {seed}: statuses differ at {:?} ms",
                first_difference.map(|at| instants[at])
            );
        }
    }
}
