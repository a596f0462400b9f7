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

/// Counts per minute over the last hour: 60 counters, whatever the rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourCounts {
    /// The newest minute counted (minutes since the epoch).
    minute: i64,
    counts: Vec<u32>,
}

impl Default for HourCounts {
    fn default() -> Self {
        Self { minute: 0, counts: vec![0; 60] }
    }
}

impl HourCounts {
    pub fn add(&mut self, time_ms: i64) {
        let minute = time_ms.div_euclid(60_000);
        if minute + 60 <= self.minute {
            return; // older than the window
        }
        if minute > self.minute {
            let cleared = (minute - self.minute).min(60);
            for step in 1..=cleared {
                self.counts[(self.minute + step).rem_euclid(60) as usize] = 0;
            }
            self.minute = minute;
        }
        self.counts[minute.rem_euclid(60) as usize] += 1;
    }

    /// How many fell in the 60 minutes up to `now_ms`.
    pub fn last_hour(&self, now_ms: i64) -> u64 {
        let now = now_ms.div_euclid(60_000);
        let first = (now - 59).max(self.minute - 59);
        (first..=self.minute.min(now)).map(|minute| u64::from(self.counts[minute.rem_euclid(60) as usize])).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_counts_forget_what_is_older_than_an_hour() {
        let mut counts = HourCounts::default();
        counts.add(0);
        counts.add(30_000);
        assert_eq!(counts.last_hour(59 * 60_000), 2);
        counts.add(61 * 60_000);
        assert_eq!(counts.last_hour(61 * 60_000), 1);
        counts.add(60_000 - 1);
        assert_eq!(counts.last_hour(61 * 60_000), 1, "too old to count");
        assert_eq!(counts.last_hour(200 * 60_000), 0);
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
