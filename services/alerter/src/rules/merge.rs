//! The fleet tier's merge of the partitions' rule inputs, second by second of event time.
//! A second is judged once every partition has reported it, so the fleet-wide windows hold
//! what one alerter of the whole fleet would. A partition [`STALE_SECS`] behind the newest
//! second any partition reported is not waited for; the seconds it sends after the tier has
//! judged them are refused and counted (folding minutes of a lagging partition's figures
//! into one second would raise bursts and anomalies that never were).

use serde::{Deserialize, Serialize};
use shared::alert::RuleInputs;
use std::collections::BTreeMap;

/// A partition this many seconds behind the others is not waited for.
pub const STALE_SECS: i64 = 30;

/// Why a partition's inputs were not merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A second it reported already (a partition that restarted from its snapshot
    /// publishes its seconds again).
    Duplicate,
    /// From a partition of another count, or an index past it.
    OtherCount,
    /// For a second judged already.
    Late,
    /// Not a `RuleInputs` message.
    Undecodable,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Merger {
    partitions: u32,
    /// Per partition: the last second it reported, and its waiting tasks then.
    reported: BTreeMap<u32, (i64, u64)>,
    /// The merged inputs of the seconds not judged yet.
    pending: BTreeMap<i64, RuleInputs>,
    /// The last second judged.
    judged: i64,
    /// The first and the newest second any partition reported.
    started: i64,
    newest: i64,
}

impl Merger {
    pub fn new(partitions: u32) -> Self {
        Self { partitions, ..Self::default() }
    }

    pub fn add(&mut self, inputs: &RuleInputs) -> Result<(), Refused> {
        if inputs.partitions != self.partitions || inputs.partition >= self.partitions {
            return Err(Refused::OtherCount);
        }
        if self.reported.get(&inputs.partition).is_some_and(|(second, _)| inputs.second <= *second) {
            return Err(Refused::Duplicate);
        }
        self.reported.insert(inputs.partition, (inputs.second, inputs.waiting));
        self.newest = self.newest.max(inputs.second);
        if self.started == 0 {
            self.started = inputs.second;
        }
        if inputs.second <= self.judged {
            return Err(Refused::Late);
        }
        self.pending.entry(inputs.second).or_default().merge(inputs);
        Ok(())
    }

    /// The seconds that may be judged now, in order, with the tasks waiting fleet-wide; and
    /// the last second judged (for ageing the windows when nothing new came).
    pub fn ready(&mut self) -> (Vec<(i64, RuleInputs)>, u64, i64) {
        let newest = self.newest;
        let fresh = |second: i64| newest - second <= STALE_SECS;
        let (judged, started) = (self.judged, self.started);
        let through = (0..self.partitions)
            .filter_map(|index| match self.reported.get(&index) {
                Some((second, _)) if fresh(*second) => Some(*second),
                // Not heard from yet: waited for as long as the first report is fresh.
                None if fresh(started) => Some(judged),
                _ => None,
            })
            .min()
            .unwrap_or(newest);
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

    fn fits(ready: &[(i64, RuleInputs)]) -> Vec<(i64, u64)> {
        ready.iter().map(|(second, inputs)| (*second, inputs.fits.n)).collect()
    }

    #[test]
    fn a_second_is_judged_once_every_partition_reported_it() {
        let mut merger = Merger::new(2);
        merger.add(&inputs(0, 100, 3, 1)).expect("merged");
        merger.add(&inputs(0, 101, 4, 2)).expect("merged");
        assert!(merger.ready().0.is_empty(), "partition 1 has not reported");
        merger.add(&inputs(1, 100, 5, 10)).expect("merged");
        let (ready, waiting, judged) = merger.ready();
        assert_eq!(fits(&ready), vec![(100, 11)]);
        assert_eq!((waiting, judged), (9, 100));
        assert_eq!(merger.add(&inputs(1, 100, 5, 7)), Err(Refused::Duplicate));
        merger.add(&inputs(1, 101, 6, 7)).expect("merged");
        let (ready, waiting, _) = merger.ready();
        assert_eq!((fits(&ready), waiting), (vec![(101, 9)], 10));
        let other = RuleInputs { partitions: 4, ..inputs(1, 102, 0, 1) };
        assert_eq!(merger.add(&other), Err(Refused::OtherCount));
    }

    #[test]
    fn a_partition_far_behind_is_not_waited_for_and_its_late_seconds_are_refused() {
        let mut merger = Merger::new(2);
        merger.add(&inputs(1, 100, 0, 1)).expect("merged");
        merger.add(&inputs(0, 100, 0, 1)).expect("merged");
        merger.ready();
        merger.add(&inputs(0, 120, 0, 1)).expect("merged");
        assert!(merger.ready().0.is_empty(), "partition 1 is 20 s behind: waited for");
        merger.add(&inputs(0, 131, 0, 1)).expect("merged");
        let (ready, _, judged) = merger.ready();
        assert_eq!((fits(&ready), judged), (vec![(120, 1), (131, 1)], 131), "31 s behind: not waited for");
        assert_eq!(merger.add(&inputs(1, 101, 0, 5)), Err(Refused::Late));
    }

    #[test]
    fn a_partition_never_heard_from_is_waited_for_a_while() {
        let mut merger = Merger::new(2);
        merger.add(&inputs(0, 100, 0, 1)).expect("merged");
        assert!(merger.ready().0.is_empty());
        merger.add(&inputs(0, 131, 0, 1)).expect("merged");
        assert_eq!(fits(&merger.ready().0), vec![(100, 1), (131, 1)]);
    }
}
