//! The fleet tier's merge of the partitions' rule inputs, second by second of event time.
//! A second is judged once every partition has reported it, so the fleet-wide windows hold
//! what one alerter of the whole fleet would; a partition silent for [`STALE_SECS`] of the
//! tier's clock is not waited for, and what it sends late joins the next second judged (its
//! counts are late, never lost).

use serde::{Deserialize, Serialize};
use shared::alert::RuleInputs;
use std::collections::BTreeMap;

/// A partition this many seconds behind the tier's watermark is not waited for.
pub const STALE_SECS: i64 = 10;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Merger {
    partitions: u32,
    /// Per partition: the last second it reported, and its waiting tasks then.
    reported: BTreeMap<u32, (i64, u64)>,
    /// The merged inputs of the seconds not judged yet.
    pending: BTreeMap<i64, RuleInputs>,
    /// The last second judged.
    judged: i64,
    /// The tier's first second: a partition not heard from is waited for this long.
    started: i64,
}

impl Merger {
    pub fn new(partitions: u32) -> Self {
        Self { partitions, ..Self::default() }
    }

    /// Adds a partition's inputs; false for a second it already reported (a partition that
    /// restarted from its snapshot publishes the same seconds again).
    pub fn add(&mut self, inputs: &RuleInputs) -> bool {
        if self.reported.get(&inputs.partition).is_some_and(|(second, _)| inputs.second <= *second) {
            return false;
        }
        self.reported.insert(inputs.partition, (inputs.second, inputs.waiting));
        let second = inputs.second.max(self.judged + 1);
        self.pending.entry(second).or_default().merge(inputs);
        true
    }

    /// The seconds that may be judged now, in order, with the tasks waiting fleet-wide; and
    /// the last second judged (for ageing the windows when nothing new came).
    pub fn ready(&mut self, watermark: i64) -> (Vec<(i64, RuleInputs)>, u64, i64) {
        let now = watermark.div_euclid(1000);
        let fresh = |second: i64| now - second <= STALE_SECS;
        if self.started == 0 {
            self.started = now;
        }
        let (judged, started) = (self.judged, self.started);
        let through = (0..self.partitions)
            .filter_map(|index| match self.reported.get(&index) {
                Some((second, _)) if fresh(*second) => Some(*second),
                None if fresh(started) => Some(judged),
                _ => None,
            })
            .min()
            .unwrap_or(now - STALE_SECS);
        let later = self.pending.split_off(&(through + 1));
        let ready: Vec<(i64, RuleInputs)> = std::mem::replace(&mut self.pending, later).into_iter().collect();
        self.judged = self.judged.max(through);
        let waiting = self.reported.values().map(|(_, waiting)| waiting).sum();
        (ready, waiting, self.judged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::alert::Totals;

    fn inputs(partition: u32, second: i64, waiting: u64, fits: u64) -> RuleInputs {
        RuleInputs {
            partition,
            partitions: 2,
            second,
            waiting,
            fits: Totals { n: fits, sum: fits as f64 },
            ..RuleInputs::default()
        }
    }

    #[test]
    fn a_second_is_judged_once_every_partition_reported_it() {
        let mut merger = Merger::new(2);
        merger.add(&inputs(0, 100, 3, 1));
        merger.add(&inputs(0, 101, 4, 2));
        let (ready, _, _) = merger.ready(101_500);
        assert!(ready.is_empty(), "partition 1 has not reported");
        merger.add(&inputs(1, 100, 5, 10));
        let (ready, waiting, judged) = merger.ready(101_500);
        assert_eq!(ready.iter().map(|(second, i)| (*second, i.fits.n)).collect::<Vec<_>>(), vec![(100, 11)]);
        assert_eq!((waiting, judged), (9, 100));
        assert!(!merger.add(&inputs(1, 100, 5, 7)), "a second published again");
        merger.add(&inputs(1, 101, 6, 7));
        let (ready, waiting, _) = merger.ready(101_900);
        assert_eq!(ready.iter().map(|(second, i)| (*second, i.fits.n)).collect::<Vec<_>>(), vec![(101, 9)]);
        assert_eq!(waiting, 10);
    }

    #[test]
    fn a_silent_partition_is_not_waited_for() {
        let mut merger = Merger::new(2);
        merger.add(&inputs(1, 100, 0, 1));
        merger.add(&inputs(0, 100, 0, 1));
        merger.ready(100_000);
        merger.add(&inputs(0, 120, 0, 1));
        let (ready, _, judged) = merger.ready(121_000);
        assert_eq!((ready.len(), judged), (1, 120), "partition 1 is 21 s behind");
        merger.add(&inputs(1, 101, 0, 5)); // late: it joins the next second judged
        merger.add(&inputs(0, 121, 0, 1));
        let (ready, _, _) = merger.ready(121_500);
        assert_eq!(ready.iter().map(|(second, i)| (*second, i.fits.n)).collect::<Vec<_>>(), vec![(121, 6)]);
    }
}
