//! A mergeable sketch of a distribution (the DDSketch idea): each value falls into a bucket
//! whose bounds differ by a factor of `GAMMA`, so a percentile read from the bucket is within
//! [`RELATIVE_ERROR`] of the true nearest-rank value. Two sketches merge by adding their
//! buckets, which is what lets partitions each summarise their own tasks and a reader combine
//! them into fleet-wide percentiles. Count, sum and extremes are kept exactly.

use crate::metrics::Summary;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A percentile read from a sketch is within this fraction of the exact one.
pub const RELATIVE_ERROR: f64 = 0.01;
const GAMMA: f64 = (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR);
/// Values at or below this (ms) count as zero: nothing shorter is measured.
const SMALLEST: f64 = 1e-3;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sketch {
    /// Values at or below [`SMALLEST`].
    zeros: u64,
    /// Bucket index to count: bucket `i` holds values in `(GAMMA^(i-1), GAMMA^i]`.
    buckets: BTreeMap<i32, u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Sketch {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut sketch = Self::default();
        values.into_iter().for_each(|value| sketch.add(value));
        sketch
    }

    pub fn add(&mut self, value: f64) {
        let value = if value.is_finite() { value.max(0.0) } else { 0.0 };
        match value <= SMALLEST {
            true => self.zeros += 1,
            false => *self.buckets.entry(value.ln().div_euclid(GAMMA.ln()) as i32 + 1).or_default() += 1,
        }
        (self.min, self.max) = match self.count {
            0 => (value, value),
            _ => (self.min.min(value), self.max.max(value)),
        };
        self.count += 1;
        self.sum += value;
    }

    pub fn merge(&mut self, other: &Sketch) {
        if other.count == 0 {
            return;
        }
        (self.min, self.max) = match self.count {
            0 => (other.min, other.max),
            _ => (self.min.min(other.min), self.max.max(other.max)),
        };
        self.zeros += other.zeros;
        for (index, count) in &other.buckets {
            *self.buckets.entry(*index).or_default() += count;
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    /// The nearest-rank percentile `q` (0 to 1): the middle of its bucket, kept within the
    /// exact extremes.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank <= self.zeros {
            return 0.0;
        }
        let mut seen = self.zeros;
        for (index, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                let estimate = 2.0 * GAMMA.powi(*index) / (GAMMA + 1.0);
                return estimate.clamp(self.min, self.max);
            }
        }
        self.max
    }

    pub fn summary(&self) -> Summary {
        Summary {
            count: self.count,
            mean: if self.count == 0 { 0.0 } else { self.sum / self.count as f64 },
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic, spread over six orders of magnitude, with zeros.
    fn values(seed: u64, n: usize) -> Vec<f64> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
                if unit < 0.05 { 0.0 } else { 10f64.powf(unit * 6.0) }
            })
            .collect()
    }

    #[test]
    fn percentiles_are_within_the_stated_error_of_nearest_rank() {
        for seed in 0..20 {
            let samples = values(seed, 1 + seed as usize * 97);
            let exact = Summary::of(samples.iter().copied());
            let sketched = Sketch::of(samples.iter().copied()).summary();
            assert_eq!(sketched.count, exact.count);
            assert!((sketched.mean - exact.mean).abs() <= 1e-9 * exact.mean.max(1.0));
            for (got, want) in [(sketched.p50, exact.p50), (sketched.p95, exact.p95), (sketched.p99, exact.p99)] {
                assert!((got - want).abs() <= RELATIVE_ERROR * want + 1e-12, "seed {seed}: {got} against {want}");
            }
        }
    }

    #[test]
    fn merging_equals_sketching_the_union() {
        let (a, b) = (values(1, 700), values(2, 300));
        let mut merged = Sketch::of(a.iter().copied());
        merged.merge(&Sketch::of(b.iter().copied()));
        let whole = Sketch::of(a.iter().chain(&b).copied());
        let (m, w) = (merged.summary(), whole.summary());
        assert_eq!((m.count, m.p50, m.p95, m.p99), (w.count, w.p50, w.p95, w.p99));
        assert!((m.mean - w.mean).abs() <= 1e-9 * w.mean, "sums differ only by rounding");
        assert_eq!(
            (merged.zeros, &merged.buckets, merged.min, merged.max),
            (whole.zeros, &whole.buckets, whole.min, whole.max)
        );
        let mut empty = Sketch::default();
        empty.merge(&whole);
        assert_eq!(empty, whole);
    }

    #[test]
    fn a_single_value_reads_back_exactly() {
        assert_eq!(
            Sketch::of([2000.0]).summary(),
            Summary { count: 1, mean: 2000.0, p50: 2000.0, p95: 2000.0, p99: 2000.0 }
        );
        assert_eq!(Sketch::default().summary(), Summary::default());
    }
}
