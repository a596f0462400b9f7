//! The alert lifecycle, shared by every rule: one open alert per fingerprint (rule and
//! target), pending until its condition has held for the rule's `for`, firing until the
//! condition has been clear for `keep_firing` (so a flapping condition does not fire and
//! resolve on every sample), then resolved. Acknowledgements and silences are marks.
//!
//! Everything is driven by event time and the watermark, never the wall clock, so a replay
//! from a snapshot yields the same alerts with the same ids and revisions.

use serde::{Deserialize, Serialize};
use shared::alert::{Alert, AlertState, Change, Mark, Severity, Silence};
use std::collections::{BTreeMap, BTreeSet};

/// What a rule's configuration says about the alerts it raises.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub severity: Severity,
    pub for_ms: i64,
    pub keep_firing_ms: i64,
    pub labels: BTreeMap<String, String>,
}

/// The parts of a new alert a rule fills in; built only when an alert opens.
pub struct Details {
    pub summary: String,
    pub labels: Vec<(&'static str, String)>,
    pub metrics: BTreeMap<String, f64>,
}

impl Details {
    pub fn new(summary: String) -> Self {
        Self { summary, labels: Vec::new(), metrics: BTreeMap::new() }
    }

    pub fn label(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.labels.push((name, value.into()));
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tracked {
    alert: Alert,
    /// When the condition cleared while firing (the alert resolves after `keep_firing`).
    clear_since: Option<i64>,
    for_ms: i64,
    keep_firing_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Book {
    /// Open alerts by rule, then target.
    open: BTreeMap<String, BTreeMap<String, Tracked>>,
    /// Fingerprints resolved by hand while their condition still held: they open again
    /// only after the condition clears.
    latched: BTreeSet<(String, String)>,
    /// Deadlines: a pending alert's `for`, a clear alert's `keep_firing`, a silence's start
    /// and end. Stale entries are harmless: each is checked again when due.
    timers: BTreeSet<(i64, Timer)>,
    silences: BTreeMap<String, Silence>,
    /// Changes the open set had that were not published (pending alerts): the state
    /// bucket needs rewriting.
    #[serde(skip)]
    pub dirty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Timer {
    Alert(String, String),
    Silences,
}

impl Book {
    pub fn is_open(&self, rule: &str, target: &str) -> bool {
        self.open.get(rule).is_some_and(|targets| targets.contains_key(target))
    }

    /// The condition holds at `time` with `value`. Opens a pending alert (firing at once
    /// when `for` is 0) or keeps an open one going.
    #[allow(clippy::too_many_arguments)]
    pub fn raise(
        &mut self,
        settings: &Settings,
        rule: &str,
        target: &str,
        time: i64,
        value: f64,
        threshold: f64,
        details: impl FnOnce() -> Details,
        out: &mut Vec<Alert>,
    ) {
        if let Some(tracked) = self.open.get_mut(rule).and_then(|targets| targets.get_mut(target)) {
            tracked.alert.value = value;
            if tracked.clear_since.take().is_some() {
                self.dirty = true;
            }
            return;
        }
        if self.latched.contains(&(rule.to_owned(), target.to_owned())) {
            return;
        }
        let details = details();
        let mut labels = settings.labels.clone();
        labels.extend(details.labels.into_iter().map(|(name, value)| (name.to_owned(), value)));
        labels.insert("rule".into(), rule.into());
        labels.insert("severity".into(), settings.severity.as_str().into());
        labels.insert("target".into(), target.into());
        let mut alert = Alert {
            alert_id: format!("{rule}-{}-{time}", slug(target)),
            fingerprint: format!("{rule}/{target}"),
            rule: rule.into(),
            severity: settings.severity,
            state: AlertState::Pending,
            target: target.into(),
            labels,
            summary: details.summary,
            value,
            threshold,
            metrics: details.metrics,
            started_at: time,
            fired_at: None,
            resolved_at: None,
            resolved_by: None,
            acknowledged: None,
            silenced_by: Vec::new(),
            revision: 0,
            change: None,
        };
        alert.silenced_by = self.silencing(&alert, time);
        let tracked =
            Tracked { alert, clear_since: None, for_ms: settings.for_ms, keep_firing_ms: settings.keep_firing_ms };
        let targets = self.open.entry(rule.to_owned()).or_default();
        let tracked = targets.entry(target.to_owned()).or_insert(tracked);
        if settings.for_ms <= 0 {
            fire(tracked, time, out);
        } else {
            self.timers.insert((time + settings.for_ms, Timer::Alert(rule.into(), target.into())));
            self.dirty = true;
        }
    }

    /// The condition no longer holds at `time`. A pending alert is dropped; a firing one
    /// resolves after `keep_firing` (at once when that is 0).
    pub fn clear(
        &mut self,
        rule: &str,
        target: &str,
        time: i64,
        value: f64,
        summary: impl FnOnce() -> String,
        out: &mut Vec<Alert>,
    ) {
        if !self.latched.is_empty() {
            self.latched.remove(&(rule.to_owned(), target.to_owned()));
        }
        let Some(targets) = self.open.get_mut(rule) else { return };
        let Some(tracked) = targets.get_mut(target) else { return };
        tracked.alert.value = value;
        match tracked.alert.state {
            AlertState::Pending => {
                targets.remove(target);
                self.dirty = true;
            }
            _ if tracked.clear_since.is_some() => {}
            _ if tracked.keep_firing_ms <= 0 => {
                let tracked = targets.remove(target).expect("looked up above");
                resolve(tracked.alert, time, summary(), None, out);
            }
            _ => {
                tracked.clear_since = Some(time);
                tracked.alert.summary = summary();
                self.timers.insert((time + tracked.keep_firing_ms, Timer::Alert(rule.into(), target.into())));
                self.dirty = true;
            }
        }
    }

    /// A firing alert's value or text moved enough to tell people (a custom alert raised
    /// again).
    pub fn update(&mut self, rule: &str, target: &str, summary: String, value: f64, out: &mut Vec<Alert>) {
        let Some(tracked) = self.open.get_mut(rule).and_then(|targets| targets.get_mut(target)) else { return };
        tracked.alert.summary = summary;
        tracked.alert.value = value;
        if tracked.alert.state == AlertState::Firing {
            publish(&mut tracked.alert, Change::Updated, out);
        }
    }

    /// Moves every deadline up to `watermark` on: pending alerts whose `for` has passed
    /// fire, clear ones whose `keep_firing` has passed resolve, silences start and end.
    pub fn advance(&mut self, watermark: i64, out: &mut Vec<Alert>) {
        while let Some((due, _)) = self.timers.first() {
            if *due > watermark {
                break;
            }
            let Some((due, timer)) = self.timers.pop_first() else { break };
            match timer {
                Timer::Silences => {
                    self.dirty = true; // one starts or ends: the listed silences change
                    self.resilence(due, out);
                }
                Timer::Alert(rule, target) => self.due(&rule, &target, due, out),
            }
        }
    }

    fn due(&mut self, rule: &str, target: &str, due: i64, out: &mut Vec<Alert>) {
        let Some(targets) = self.open.get_mut(rule) else { return };
        let Some(tracked) = targets.get_mut(target) else { return };
        match (tracked.alert.state, tracked.clear_since) {
            (AlertState::Pending, _) if tracked.alert.started_at + tracked.for_ms <= due => fire(tracked, due, out),
            (AlertState::Firing, Some(since)) if since + tracked.keep_firing_ms <= due => {
                let tracked = targets.remove(target).expect("looked up above");
                let summary = tracked.alert.summary.clone();
                resolve(tracked.alert, since, summary, None, out);
            }
            _ => {}
        }
    }

    pub fn acknowledge(&mut self, alert_id: &str, mark: Mark, out: &mut Vec<Alert>) -> bool {
        let Some(tracked) = self.find(alert_id) else { return false };
        tracked.alert.acknowledged = Some(mark);
        match tracked.alert.state {
            AlertState::Firing => publish(&mut tracked.alert, Change::Acknowledged, out),
            _ => self.dirty = true,
        }
        true
    }

    /// Resolved by a person: the fingerprint stays quiet until its condition clears.
    pub fn resolve_by_hand(&mut self, alert_id: &str, mark: Mark, out: &mut Vec<Alert>) -> bool {
        let Some((rule, target)) = self.find(alert_id).map(|t| (t.alert.rule.clone(), t.alert.target.clone())) else {
            return false;
        };
        let Some(tracked) = self.open.get_mut(&rule).and_then(|targets| targets.remove(&target)) else { return false };
        if tracked.clear_since.is_none() {
            self.latched.insert((rule, target));
        }
        let at = mark.at;
        let summary = format!("{} (resolved by {})", tracked.alert.summary, mark.by);
        match tracked.alert.state {
            AlertState::Firing => resolve(tracked.alert, at, summary, Some(mark), out),
            _ => self.dirty = true,
        }
        true
    }

    pub fn add_silence(&mut self, silence: Silence, time: i64, out: &mut Vec<Alert>) {
        self.timers.insert((silence.starts_at, Timer::Silences));
        self.timers.insert((silence.ends_at, Timer::Silences));
        self.silences.insert(silence.silence_id.clone(), silence);
        self.dirty = true;
        self.resilence(time, out);
    }

    pub fn delete_silence(&mut self, silence_id: &str, mark: Mark, out: &mut Vec<Alert>) -> bool {
        let time = mark.at;
        let Some(silence) = self.silences.get_mut(silence_id) else { return false };
        silence.deleted = Some(mark);
        self.dirty = true;
        self.resilence(time, out);
        true
    }

    /// The silences not yet over at `time`; ended and deleted ones are forgotten.
    pub fn silences(&mut self, time: i64) -> Vec<Silence> {
        self.silences.retain(|_, silence| silence.deleted.is_none() && silence.ends_at > time);
        self.silences.values().cloned().collect()
    }

    /// The open alerts, for the state bucket.
    pub fn open_alerts(&self) -> Vec<Alert> {
        self.open.values().flat_map(|targets| targets.values().map(|tracked| tracked.alert.clone())).collect()
    }

    pub fn open_count(&self) -> usize {
        self.open.values().map(BTreeMap::len).sum()
    }

    fn find(&mut self, alert_id: &str) -> Option<&mut Tracked> {
        self.open
            .values_mut()
            .flat_map(|targets| targets.values_mut())
            .find(|tracked| tracked.alert.alert_id == alert_id)
    }

    fn silencing(&self, alert: &Alert, time: i64) -> Vec<String> {
        self.silences
            .values()
            .filter(|silence| silence.active_at(time) && shared::silence::selects(silence, &alert.labels))
            .map(|silence| silence.silence_id.clone())
            .collect()
    }

    /// Marks every open alert with the silences that match it at `time`.
    fn resilence(&mut self, time: i64, out: &mut Vec<Alert>) {
        let mut updates = Vec::new();
        for (rule, targets) in &self.open {
            for (target, tracked) in targets {
                let silenced_by = self.silencing(&tracked.alert, time);
                if silenced_by != tracked.alert.silenced_by {
                    updates.push((rule.clone(), target.clone(), silenced_by));
                }
            }
        }
        for (rule, target, silenced_by) in updates {
            let Some(tracked) = self.open.get_mut(&rule).and_then(|targets| targets.get_mut(&target)) else { continue };
            let change = if silenced_by.is_empty() { Change::Unsilenced } else { Change::Silenced };
            let was_silenced = !tracked.alert.silenced_by.is_empty();
            tracked.alert.silenced_by = silenced_by;
            match tracked.alert.state {
                // Only a move between silenced and not is news; another silence joining is not.
                AlertState::Firing if was_silenced != (change == Change::Silenced) => {
                    publish(&mut tracked.alert, change, out)
                }
                _ => self.dirty = true,
            }
        }
    }
}

fn fire(tracked: &mut Tracked, time: i64, out: &mut Vec<Alert>) {
    tracked.alert.state = AlertState::Firing;
    tracked.alert.fired_at = Some(time);
    publish(&mut tracked.alert, Change::Fired, out);
}

fn resolve(mut alert: Alert, time: i64, summary: String, by: Option<Mark>, out: &mut Vec<Alert>) {
    alert.state = AlertState::Resolved;
    alert.resolved_at = Some(time);
    alert.resolved_by = by;
    alert.summary = summary;
    publish(&mut alert, Change::Resolved, out);
}

fn publish(alert: &mut Alert, change: Change, out: &mut Vec<Alert>) {
    alert.revision += 1;
    alert.change = Some(change);
    out.push(alert.clone());
}

/// A target as it appears in an alert id: safe in a URL path.
fn slug(target: &str) -> String {
    target.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.:".contains(c) { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::alert::{MatchOp, Matcher};

    fn settings(for_ms: i64, keep_firing_ms: i64) -> Settings {
        Settings { severity: Severity::Warning, for_ms, keep_firing_ms, labels: BTreeMap::new() }
    }

    fn raise(book: &mut Book, settings: &Settings, time: i64, out: &mut Vec<Alert>) {
        book.raise(settings, "hot", "w1", time, 95.0, 90.0, || Details::new("w1 is hot".into()), out);
    }

    #[test]
    fn pending_fires_after_for_and_resolves_after_keep_firing() {
        let (mut book, mut out, rule) = (Book::default(), Vec::new(), settings(30_000, 10_000));
        raise(&mut book, &rule, 0, &mut out);
        book.advance(29_999, &mut out);
        assert!(out.is_empty(), "still pending");
        assert_eq!(book.open_alerts()[0].state, AlertState::Pending);
        book.advance(30_000, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].state, out[0].revision, out[0].fired_at), (AlertState::Firing, 1, Some(30_000)));
        book.clear("hot", "w1", 40_000, 50.0, || "cool".into(), &mut out);
        raise(&mut book, &rule, 45_000, &mut out); // flaps back within keep_firing
        book.advance(60_000, &mut out);
        assert_eq!(out.len(), 1, "a flap neither resolves nor fires again");
        book.clear("hot", "w1", 70_000, 50.0, || "cool".into(), &mut out);
        book.advance(80_000, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!((out[1].state, out[1].revision, out[1].resolved_at), (AlertState::Resolved, 2, Some(70_000)));
        assert_eq!(out[1].alert_id, out[0].alert_id);
    }

    #[test]
    fn a_pending_alert_that_clears_is_never_published() {
        let (mut book, mut out, rule) = (Book::default(), Vec::new(), settings(30_000, 0));
        raise(&mut book, &rule, 0, &mut out);
        book.clear("hot", "w1", 10_000, 50.0, || "cool".into(), &mut out);
        book.advance(60_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(book.open_count(), 0);
    }

    #[test]
    fn hand_resolution_latches_until_the_condition_clears() {
        let (mut book, mut out, rule) = (Book::default(), Vec::new(), settings(0, 0));
        raise(&mut book, &rule, 0, &mut out);
        let id = out[0].alert_id.clone();
        let mark = Mark { by: "ana".into(), at: 5_000, comment: String::new() };
        assert!(book.resolve_by_hand(&id, mark, &mut out));
        assert_eq!(out[1].resolved_by.as_ref().map(|m| m.by.as_str()), Some("ana"));
        raise(&mut book, &rule, 6_000, &mut out);
        assert_eq!(out.len(), 2, "still latched");
        book.clear("hot", "w1", 7_000, 50.0, || "cool".into(), &mut out);
        raise(&mut book, &rule, 8_000, &mut out);
        assert_eq!(out.len(), 3);
        assert_ne!(out[2].alert_id, id, "a new occurrence");
    }

    #[test]
    fn silences_mark_alerts_while_active_and_acks_are_revisions() {
        let (mut book, mut out, rule) = (Book::default(), Vec::new(), settings(0, 0));
        raise(&mut book, &rule, 0, &mut out);
        let silence = Silence {
            silence_id: "s1".into(),
            matchers: vec![Matcher { name: "rule".into(), op: MatchOp::Equal, value: "hot".into() }],
            starts_at: 1_000,
            ends_at: 10_000,
            created_by: "ana".into(),
            comment: String::new(),
            deleted: None,
        };
        book.add_silence(silence, 500, &mut out);
        assert_eq!(out.len(), 1, "not yet active");
        book.advance(1_000, &mut out);
        assert_eq!((out[1].change, out[1].silenced_by.clone()), (Some(Change::Silenced), vec!["s1".to_owned()]));
        let mark = Mark { by: "bo".into(), at: 2_000, comment: "on it".into() };
        assert!(book.acknowledge(&out[0].alert_id.clone(), mark, &mut out));
        assert_eq!((out[2].change, out[2].revision), (Some(Change::Acknowledged), 3));
        book.advance(10_000, &mut out);
        assert_eq!((out[3].change, out[3].silenced_by.len()), (Some(Change::Unsilenced), 0));
        assert!(book.silences(10_000).is_empty());
    }
}
