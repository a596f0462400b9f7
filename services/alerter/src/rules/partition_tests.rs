//! Two and four alerter partitions and their fleet tier, over the same events as one
//! alerter of the whole fleet, raise the same alerts: those about one worker or task
//! exactly (ids, revisions, times), the fleet-wide ones with the same changes in the same
//! order, each within a second of one alerter's (the tier judges whole seconds).

use super::tests::{completed, failed, heartbeat, queued, registered, started};
use super::*;
use crate::scope::{PER_TARGET, Scope};
use shared::subjects::Subjects;
use std::collections::BTreeSet;

const T0: i64 = 1_764_000_000_000;

/// 40 workers over 400 s: five run hot for a while, four fall silent, one model queues
/// long, another fails in a burst, assignments miss their best fit for a stretch, and for
/// half a minute nothing starts, and one task never finishes.
fn fleet_events() -> Vec<(i64, Event)> {
    let mut events = Vec::new();
    let workers: Vec<String> = (0..40).map(|n| format!("w-{n}")).collect();
    for worker in &workers {
        events.push((T0, registered(worker)));
    }
    // Never finishes: stalled once past its limit.
    events.push((T0 + 20_000, queued("t-stuck", "m-a")));
    events.push((T0 + 21_000, started("t-stuck", &workers[5])));
    let mut task = 0;
    // The clock ticks on for 20 s after the last task is queued, so every second closes.
    for second in 0..420i64 {
        let now = T0 + second * 1000;
        events.push((now, Event::Clock {}));
        if second >= 400 {
            continue;
        }
        for (n, worker) in workers.iter().enumerate() {
            let silent = (30..34).contains(&n) && second >= 200;
            if (second + n as i64) % 5 == 0 && !silent {
                let hot = n < 5 && (50..150).contains(&second);
                events.push((now + n as i64, heartbeat(worker, if hot { 97.0 } else { 30.0 }, 0)));
            }
        }
        for slot in 0..3 {
            task += 1;
            let (task_id, model) = (format!("t-{task}"), if slot == 0 { "m-a" } else { "m-b" });
            let worker = &workers[(task * 7) % 30];
            let wait = match second {
                300..330 => (331 - second) * 1000, // nothing starts for half a minute
                100..160 if model == "m-a" => 45_000,
                _ => 1_500,
            };
            let at = now + 10 * slot;
            events.push((at, queued(&task_id, model)));
            let best_fit = !(200..260).contains(&second) || task % 4 == 0;
            let assigned =
                Event::TaskAssigned { task_id: task_id.clone(), worker_id: worker.clone(), best_fit: Some(best_fit) };
            events.push((at + 200, assigned));
            events.push((at + wait, started(&task_id, worker)));
            let fails = model == "m-b" && (250..262).contains(&second);
            let done = if fails { failed(&task_id, worker) } else { completed(&task_id, worker) };
            events.push((at + wait + 8_000 + (task as i64 % 5) * 400, done));
        }
    }
    events.sort_by_key(|(time, _)| *time);
    events
}

fn rules() -> Rules {
    let mut rules = Rules::default();
    // A partition learns a model's usual run time from its own tasks only, so it trusts it
    // later than one alerter does: with both limits at 60 s (three usual runs are less) the
    // limit is the same everywhere.
    rules.task_stalled.min_secs = 60;
    rules.task_stalled.default_secs = 60;
    rules.queue_time_high.for_secs = 0;
    rules.queue_time_high.window_secs = 60;
    rules.queue_too_long.for_secs = 0;
    rules.queue_too_long.tasks = 60;
    rules.low_scheduling_efficiency.for_secs = 0;
    rules.low_scheduling_efficiency.window_secs = 60;
    rules.low_success_rate.min_tasks = 10;
    rules.low_success_rate.window_secs = 30;
    rules.anomaly.bucket_secs = 10;
    rules.anomaly.warmup_buckets = 5;
    rules.anomaly.for_secs = 0;
    rules
}

/// One alerter of the whole fleet.
fn whole(events: &[(i64, Event)]) -> Vec<Alert> {
    let fleet = shared::config::FleetConfig::default();
    let compiled = Compiled::new(rules(), &[], &fleet, 3600, Scope::Whole).expect("valid");
    let (mut state, mut out) = (RuleState::new(Scope::Whole), Vec::new());
    for (time, event) in events {
        state.apply(&compiled, *time, event, &mut out);
    }
    out
}

/// `count` partitions and the fleet tier, each given the events its subjects keep, the
/// tier the partitions' inputs as they publish them. Halfway, every role restarts from a
/// snapshot: the tier's of that moment, the partitions' taken a tenth of the events
/// earlier, so they replay that tenth and publish its alerts and inputs again, which the
/// tier (and JetStream, for the alerts) must take as duplicates. Returns the alerts, and
/// every input the tier merged.
fn partitioned(events: &[(i64, Event)], count: u32) -> (Vec<Alert>, Vec<RuleInputs>) {
    let (fleet, subjects) = (shared::config::FleetConfig::default(), Subjects::new("fleet").expect("a prefix"));
    let role = |scope: Scope| {
        let compiled = Compiled::new(rules(), &[], &fleet, 3600, scope).expect("valid");
        (scope.keep(&subjects), compiled, RuleState::new(scope))
    };
    let mut parts: Vec<_> = (0..count).map(|index| role(Scope::new(count, Some(index)).expect("a part"))).collect();
    let (tier_keeps, tier_rules, mut tier) = role(Scope::new(count, None).expect("the tier"));
    let (mut out, mut merged, mut seq) = (Vec::new(), Vec::new(), 0);
    let snapshot = |state: &RuleState| shared::codec::encode(state).expect("encodes");
    let restore = |bytes: &[u8]| -> RuleState { shared::codec::decode(bytes).expect("decodes") };
    let (saved_at, restart_at) = (events.len() * 2 / 5, events.len() / 2);
    let mut saved = Vec::new();
    for (n, (time, event)) in events.iter().enumerate() {
        if n == saved_at {
            saved = parts.iter().map(|(_, _, state)| snapshot(state)).collect();
        }
        if n == restart_at {
            tier = restore(&snapshot(&tier));
            for ((_, _, state), bytes) in parts.iter_mut().zip(&saved) {
                *state = restore(bytes);
            }
            // Replay the tenth: what it publishes again must be a duplicate of what it did.
            for (time, event) in &events[saved_at..restart_at] {
                let subject = event.subject(&subjects);
                for (keeps, compiled, state) in &mut parts {
                    if keeps(&subject) {
                        let mut again = Vec::new();
                        state.apply(compiled, *time, event, &mut again);
                        for alert in again {
                            assert!(out.contains(&alert), "a replayed alert change differs: {alert:?}");
                        }
                        for second in state.take_ready() {
                            seq += 1;
                            let refused = tier.apply_inputs(&tier_rules, seq, &second, &mut out);
                            assert_eq!(refused, Err(merge::Refused::Duplicate), "a replayed second");
                        }
                    }
                }
            }
        }
        let subject = event.subject(&subjects);
        let mut inputs = Vec::new();
        for (keeps, compiled, state) in &mut parts {
            if keeps(&subject) {
                state.apply(compiled, *time, event, &mut out);
                inputs.extend(state.take_ready());
            }
        }
        if tier_keeps(&subject) {
            tier.apply(&tier_rules, *time, event, &mut out);
        }
        for second in inputs {
            seq += 1;
            assert_eq!(tier.apply_inputs(&tier_rules, seq, &second, &mut out), Ok(()), "merged");
            merged.push(second);
        }
    }
    (out, merged)
}

/// Each fingerprint's changes in order, with their times.
fn changes(alerts: &[Alert], per_target: bool) -> BTreeMap<String, Vec<(String, i64)>> {
    let mut by_fingerprint: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for alert in alerts.iter().filter(|alert| PER_TARGET.contains(&alert.rule.as_str()) == per_target) {
        let change = format!("{:?} r{}", alert.change, alert.revision);
        by_fingerprint.entry(alert.fingerprint.clone()).or_default().push((change, crate::change_time(alert)));
    }
    by_fingerprint
}

#[test]
fn partitions_and_their_tier_raise_what_one_alerter_raises() {
    let events = fleet_events();
    let one = whole(&events);
    let fired: BTreeSet<&str> = one.iter().map(|alert| alert.rule.as_str()).collect();
    for rule in ["worker_overloaded", "worker_lost", "task_stalled", "queue_time_high", "queue_too_long"] {
        assert!(fired.contains(rule), "the scenario raises {rule}: {fired:?}");
    }
    for rule in ["failure_burst", "low_success_rate", "low_scheduling_efficiency", "throughput_anomaly"] {
        assert!(fired.contains(rule), "the scenario raises {rule}: {fired:?}");
    }
    for count in [2, 4] {
        let (split, merged) = partitioned(&events, count);
        // The inputs add up to what the events hold.
        let mut sum = RuleInputs::default();
        for second in &merged {
            sum.merge(second);
        }
        let assigned = events.iter().filter(|(_, event)| matches!(event, Event::TaskAssigned { .. })).count() as u64;
        let started = events.iter().filter(|(_, event)| matches!(event, Event::TaskStarted { .. })).count() as u64;
        let completed = events.iter().filter(|(_, event)| matches!(event, Event::TaskCompleted { .. })).count() as u64;
        let failed = events.iter().filter(|(_, event)| matches!(event, Event::TaskFailed { .. })).count() as u64;
        let started_sum: u64 = sum.queue_ms.values().map(|totals| totals.n).sum();
        let model_outcomes: u64 =
            sum.outcomes.iter().filter(|(key, _)| key.starts_with("model:")).map(|(_, totals)| totals.n).sum();
        assert_eq!(
            (sum.fits.n, started_sum, sum.completed, model_outcomes),
            (assigned, started, completed, completed + failed),
            "{count} partitions: assignments, starts, completions and outcomes in the inputs"
        );
        let sorted = |alerts: &[Alert]| {
            let mut alerts: Vec<Alert> =
                alerts.iter().filter(|alert| PER_TARGET.contains(&alert.rule.as_str())).cloned().collect();
            for alert in alerts.iter_mut().filter(|alert| alert.rule == "worker_lost") {
                // The silence seen when the loss is noticed: a partition's watermark moves in
                // coarser steps than the whole fleet's (same deadline, same id).
                alert.value = alert.value.floor();
            }
            alerts.sort_by(|a, b| (&a.alert_id, a.revision).cmp(&(&b.alert_id, b.revision)));
            alerts
        };
        let (split_alerts, one_alerts) = (sorted(&split), sorted(&one));
        let ids =
            |alerts: &[Alert]| alerts.iter().map(|a| format!("{} r{}", a.alert_id, a.revision)).collect::<Vec<_>>();
        assert_eq!(ids(&split_alerts), ids(&one_alerts), "{count} partitions: the alerts about one worker or task");
        for (a, b) in split_alerts.iter().zip(&one_alerts) {
            assert_eq!(a, b, "{count} partitions");
        }
        let (expected, got) = (changes(&one, false), changes(&split, false));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{count} partitions: the fleet-wide alerts"
        );
        for (fingerprint, want) in &expected {
            let have = &got[fingerprint];
            let kinds = |list: &Vec<(String, i64)>| list.iter().map(|(change, _)| change.clone()).collect::<Vec<_>>();
            assert_eq!(kinds(have), kinds(want), "{count} partitions: {fingerprint}'s changes");
            for ((_, a), (_, b)) in have.iter().zip(want) {
                assert!((a - b).abs() <= 2_000, "{count} partitions: {fingerprint} at {a}, one alerter at {b}");
            }
        }
    }
}
