//! Small bounded windows the state keeps: they make "recent" figures cheap and keep memory
//! flat at any fleet size.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The last `capacity` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Last<T> {
    capacity: usize,
    values: VecDeque<T>,
}

impl<T: Clone> Last<T> {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, values: VecDeque::with_capacity(capacity.min(1024)) }
    }

    pub fn push(&mut self, value: T) {
        if self.values.len() >= self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }

    /// Keeps at most `capacity` values from now on, dropping the oldest beyond it.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.values.len() > capacity {
            self.values.pop_front();
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.values.iter()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Drops values from the front while `old` holds.
    pub fn drop_while(&mut self, old: impl Fn(&T) -> bool) {
        while self.values.front().is_some_and(&old) {
            self.values.pop_front();
        }
    }
}

/// Counts per bucket of `BUCKET_MS` over the last 60 buckets: 60 counters, whatever the rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counts<const BUCKET_MS: i64> {
    /// The newest bucket counted (buckets since the epoch).
    #[serde(alias = "minute")]
    bucket: i64,
    counts: Vec<u32>,
}

/// Counts per minute over the last hour.
pub type HourCounts = Counts<60_000>;
/// Counts per second over the last minute.
pub type MinuteCounts = Counts<1_000>;

impl<const BUCKET_MS: i64> Default for Counts<BUCKET_MS> {
    fn default() -> Self {
        Self { bucket: 0, counts: vec![0; 60] }
    }
}

impl<const BUCKET_MS: i64> Counts<BUCKET_MS> {
    pub fn add(&mut self, time_ms: i64) {
        let bucket = time_ms.div_euclid(BUCKET_MS);
        if bucket + 60 <= self.bucket {
            return; // older than the window
        }
        if bucket > self.bucket {
            let cleared = (bucket - self.bucket).min(60);
            for step in 1..=cleared {
                self.counts[(self.bucket + step).rem_euclid(60) as usize] = 0;
            }
            self.bucket = bucket;
        }
        self.counts[bucket.rem_euclid(60) as usize] += 1;
    }

    /// How many fell in the 60 buckets up to `now_ms` (the last hour, or the last minute).
    pub fn recent(&self, now_ms: i64) -> u64 {
        let now = now_ms.div_euclid(BUCKET_MS);
        let first = (now - 59).max(self.bucket - 59);
        (first..=self.bucket.min(now)).map(|bucket| u64::from(self.counts[bucket.rem_euclid(60) as usize])).sum()
    }
}

/// Reads `MinuteCounts`, or the list of completion times that snapshots held before them,
/// so a snapshot of the previous version still restores.
pub fn minute_counts_or_times<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<MinuteCounts, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Counts(MinuteCounts),
        Times(Last<i64>),
    }
    Ok(match Wire::deserialize(deserializer)? {
        Wire::Counts(counts) => counts,
        Wire::Times(times) => {
            let mut counts = MinuteCounts::default();
            times.iter().for_each(|time| counts.add(*time));
            counts
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_counts_forget_what_is_older_than_an_hour() {
        let mut counts = HourCounts::default();
        counts.add(0);
        counts.add(30_000);
        assert_eq!(counts.recent(59 * 60_000), 2);
        counts.add(61 * 60_000);
        assert_eq!(counts.recent(61 * 60_000), 1);
        counts.add(60_000 - 1);
        assert_eq!(counts.recent(61 * 60_000), 1, "too old to count");
        assert_eq!(counts.recent(200 * 60_000), 0);
    }

    #[test]
    fn minute_counts_are_bounded_and_read_the_old_list_of_times() {
        let mut counts = MinuteCounts::default();
        for time in 0..100_000 {
            counts.add(time * 10); // 100 a second for 1,000 s
        }
        assert_eq!(counts.recent(999_999), 6_000, "the last 60 s");
        assert_eq!(counts.counts.len(), 60, "60 counters, whatever the rate");

        let mut times = Last::new(usize::MAX);
        [1_000, 30_000, 61_500].into_iter().for_each(|time| times.push(time));
        let bytes = rmp_serde::to_vec_named(&times).expect("encode");
        let mut read = rmp_serde::Deserializer::new(&bytes[..]);
        let counts = minute_counts_or_times(&mut read).expect("decode");
        assert_eq!(counts.recent(61_500), 2, "what an old snapshot held, counted again");
        let bytes = rmp_serde::to_vec_named(&counts).expect("encode");
        let again = minute_counts_or_times(&mut rmp_serde::Deserializer::new(&bytes[..])).expect("decode");
        assert_eq!(again, counts, "the new form reads back as it was");
    }

    #[test]
    fn last_keeps_the_newest() {
        let mut last = Last::new(2);
        for value in 1..=3 {
            last.push(value);
        }
        assert_eq!(last.iter().copied().collect::<Vec<_>>(), vec![2, 3]);
        last.set_capacity(1);
        assert_eq!(last.iter().copied().collect::<Vec<_>>(), vec![3], "a smaller bound drops the oldest");
        last.set_capacity(3);
        last.push(4);
        last.push(5);
        assert_eq!(last.len(), 3, "a larger bound holds more");
    }
}
