//! Anomaly detection on throughput, queue time and latency.
//!
//! Method: each bucket of event time (`bucket_secs`, a minute by default) gives one figure
//! per metric (tasks completed; mean queue time of the tasks that started; mean run time of
//! the tasks that completed), gathered as the events arrive. Each metric keeps an
//! exponentially weighted mean and variance (weight `alpha` per bucket). A bucket whose
//! figure lies more than `sigmas` standard deviations from the mean, and at least
//! `min_change` of the mean away from it, is anomalous; after `warmup_buckets` the rule
//! holds while buckets stay anomalous. The bucket is folded into the band afterwards, so a
//! lasting shift becomes the new normal.

use super::config::names::{LATENCY_ANOMALY, QUEUE_TIME_ANOMALY, THROUGHPUT_ANOMALY};
use super::{Alarms, Finished};
use crate::engine::Details;
use serde::{Deserialize, Serialize};
use shared::alert::Totals;

/// After a gap longer than this the bands start over, ms.
const MAX_GAP_MS: i64 = 3600 * 1000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Anomalies {
    /// Start of the bucket being gathered (0 before the first).
    bucket: i64,
    completions: u64,
    queue: Mean,
    latency: Mean,
    bands: [Band; 3],
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Mean {
    sum: f64,
    n: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Band {
    mean: f64,
    variance: f64,
    buckets: u32,
}

const METRICS: [(&str, &str, &str); 3] = [
    (THROUGHPUT_ANOMALY, "throughput", "tasks"),
    (QUEUE_TIME_ANOMALY, "queue time", "s"),
    (LATENCY_ANOMALY, "latency", "s"),
];

impl Anomalies {
    pub fn finished(&mut self, task: &Finished) {
        if task.succeeded {
            self.completions += 1;
            if let Some(duration_ms) = task.duration_ms {
                self.latency.sum += duration_ms / 1000.0;
                self.latency.n += 1;
            }
        }
    }

    pub fn started(&mut self, queue_ms: f64) {
        self.queue.sum += queue_ms / 1000.0;
        self.queue.n += 1;
    }

    /// A second's figures merged from the partitions: completions, and the sums of the
    /// queue and run times, ms.
    pub fn merged(&mut self, completions: u64, queue_ms: Totals, latency_ms: Totals) {
        self.completions += completions;
        self.queue.sum += queue_ms.sum / 1000.0;
        self.queue.n += queue_ms.n;
        self.latency.sum += latency_ms.sum / 1000.0;
        self.latency.n += latency_ms.n;
    }

    pub fn every_second(&mut self, alarms: &mut Alarms, watermark: i64) {
        let width = alarms.compiled.rules.anomaly.bucket_secs.max(1) as i64 * 1000;
        if self.bucket == 0 || watermark - self.bucket > MAX_GAP_MS {
            *self = Self { bucket: watermark - watermark % width, ..Self::default() };
            return;
        }
        while watermark >= self.bucket + width {
            let figures = [
                Some(self.completions as f64),
                (self.queue.n > 0).then(|| self.queue.sum / self.queue.n as f64),
                (self.latency.n > 0).then(|| self.latency.sum / self.latency.n as f64),
            ];
            let end = self.bucket + width;
            for ((band, figure), (rule, metric, unit)) in self.bands.iter_mut().zip(figures).zip(METRICS) {
                let Some(value) = figure else { continue };
                judge(alarms, band, value, end, rule, metric, unit);
            }
            self.bucket = end;
            self.completions = 0;
            self.queue = Mean::default();
            self.latency = Mean::default();
        }
    }
}

fn judge(alarms: &mut Alarms, band: &mut Band, value: f64, time: i64, rule: &str, metric: &str, unit: &str) {
    let config = &alarms.compiled.rules.anomaly;
    let deviation = value - band.mean;
    let sd = band.variance.sqrt();
    let outside = band.buckets >= config.warmup_buckets
        && deviation.abs() > config.sigmas * sd
        && deviation.abs() >= config.min_change * band.mean.abs();
    let (low, high) = (band.mean - config.sigmas * sd, band.mean + config.sigmas * sd);
    let direction = if deviation > 0.0 { "above" } else { "below" };
    alarms.set(
        outside,
        rule,
        "fleet",
        time,
        value,
        if deviation > 0.0 { high } else { low },
        || {
            let mut details = Details::new(format!(
                "Fleet {metric} is {value:.1} {unit}, {direction} its usual {low:.1}..{high:.1} {unit}"
            ))
            .label("metric", metric.replace(' ', "_"));
            details.metrics =
                [("mean".to_owned(), band.mean), ("band_low".to_owned(), low), ("band_high".to_owned(), high)].into();
            details
        },
        || format!("fleet {metric} is back to {value:.1} {unit}"),
    );
    // Exponentially weighted mean and variance (West, 1979).
    let alpha = if band.buckets == 0 { 1.0 } else { config.alpha };
    band.mean += alpha * deviation;
    band.variance = (1.0 - alpha) * (band.variance + alpha * deviation * deviation);
    band.buckets = band.buckets.saturating_add(1);
}
