//! Which part of the fleet one processor folds.
//!
//! The rule (schemas/subjects.md): partition `i` of `n` owns the worker and task shards `s`
//! with `s % n == i` (shards: `subjects::shard_of`). It folds
//! - its workers' heartbeats, and every worker's lifecycle events (few; they tell it the
//!   hardware of any worker a task of its runs on, but only its own workers are counted);
//! - its tasks' events, queued ones included (the task shard is in the subject);
//! - the events of other partitions' tasks that ran on its workers (the worker shard is the
//!   subject's last token), for its workers' completed, failed and duration figures only;
//! - partition 0 also folds the coordinator's and load balancer's reports.

use crate::subjects::{EVENT_SHARDS, Subjects, shard_of};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Default for Partition {
    fn default() -> Self {
        Self::WHOLE
    }
}

impl Partition {
    /// The whole fleet in one processor.
    pub const WHOLE: Self = Self { index: 0, count: 1 };

    /// Partition `index` of `count`; `count` divides the 64 shards so that each partition
    /// owns as many.
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 || count > EVENT_SHARDS || !EVENT_SHARDS.is_multiple_of(count) {
            return Err(format!("fleet.partitions must divide {EVENT_SHARDS} (1, 2, 4, ... 64), got {count}"));
        }
        if index >= count {
            return Err(format!("partition {index} does not exist: there are {count}, numbered from 0"));
        }
        Ok(Self { index, count })
    }

    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    pub fn owns_shard(&self, shard: u32) -> bool {
        shard % self.count == self.index
    }

    /// Whether this partition owns the worker or task with this id.
    pub fn owns(&self, id: &str) -> bool {
        self.owns_shard(shard_of(id))
    }

    /// The component reports (coordinator, load balancer) belong to partition 0.
    pub fn owns_system(&self) -> bool {
        self.index == 0
    }

    /// A name for its consumer and snapshot: `processor` whole, else `processor-1-of-4`.
    pub fn name(&self, service: &str) -> String {
        match self.is_whole() {
            true => service.to_owned(),
            false => format!("{service}-{}-of-{}", self.index, self.count),
        }
    }

    /// The subject filters of its feed, none for the whole fleet. They never overlap (the
    /// server refuses overlapping filters), so the foreign tasks' events on its workers are
    /// spelled out shard by shard: 784 filters for a quarter, fewer for a half or an eighth.
    pub fn filters(&self, subjects: &Subjects) -> Vec<String> {
        if self.is_whole() {
            return Vec::new();
        }
        let events = format!("{}.events", subjects.prefix());
        let (own, other): (Vec<u32>, Vec<u32>) = (0..EVENT_SHARDS).partition(|shard| self.owns_shard(*shard));
        let mut filters = vec![format!("{events}.worker.*.*")];
        if self.owns_system() {
            filters.push(format!("{events}.system.>"));
        }
        for shard in &own {
            filters.push(format!("{events}.heartbeat.{shard:02}.*"));
            filters.push(format!("{events}.task.{shard:02}"));
            filters.push(format!("{events}.task.{shard:02}.*"));
            for task_shard in &other {
                filters.push(format!("{events}.task.{task_shard:02}.{shard:02}"));
            }
        }
        filters
    }
}

/// Whether NATS delivers `subject` to a consumer filtering on `filter`.
#[cfg(test)]
pub(crate) fn matches(filter: &str, subject: &str) -> bool {
    let (filter, subject): (Vec<&str>, Vec<&str>) = (filter.split('.').collect(), subject.split('.').collect());
    for (index, token) in filter.iter().enumerate() {
        match *token {
            ">" => return subject.len() > index,
            "*" if index < subject.len() => {}
            token if subject.get(index) == Some(&token) => {}
            _ => return false,
        }
    }
    filter.len() == subject.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reaches_the_partitions_that_own_its_worker_or_task_and_no_other() {
        let subjects = Subjects::default();
        for count in [2, 4, 8] {
            let partitions: Vec<Partition> =
                (0..count).map(|index| Partition::new(index, count).expect("a partition")).collect();
            for n in 0..200 {
                let (task, worker) = (format!("t-{n}"), format!("w-{}", n * 7));
                let subject = subjects.task_event(&task, Some(&worker));
                let reached: Vec<u32> = partitions
                    .iter()
                    .filter(|partition| partition.filters(&subjects).iter().any(|filter| matches(filter, &subject)))
                    .map(|partition| partition.index)
                    .collect();
                let mut owners = vec![shard_of(&task) % count, shard_of(&worker) % count];
                owners.dedup();
                owners.sort();
                assert_eq!(reached, owners, "{subject} with {count} partitions");
                let heartbeat = subjects.heartbeat_event(&worker);
                let reached = partitions
                    .iter()
                    .filter(|partition| partition.filters(&subjects).iter().any(|filter| matches(filter, &heartbeat)))
                    .count();
                assert_eq!(reached, 1, "{heartbeat}");
            }
            for partition in &partitions {
                let filters = partition.filters(&subjects);
                for (i, a) in filters.iter().enumerate() {
                    for b in &filters[i + 1..] {
                        let overlap = a.split('.').zip(b.split('.')).all(|(x, y)| x == y || x == "*" || y == "*")
                            && a.split('.').count() == b.split('.').count();
                        assert!(!overlap, "{a} overlaps {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn only_divisors_of_the_shard_count() {
        assert!(Partition::new(0, 3).is_err());
        assert!(Partition::new(4, 4).is_err());
        assert_eq!(Partition::new(1, 4).map(|p| p.name("processor")), Ok("processor-1-of-4".to_owned()));
        assert_eq!(Partition::WHOLE.name("processor"), "processor");
    }
}
