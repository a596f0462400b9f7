//! Which part of the fleet one processor folds.
//!
//! The rule (schemas/README.md, "Partitions"): partition `i` of `n` owns the worker and task
//! shards `s` with `s % n == i` (shards: `subjects::shard_of`). It folds
//! - its workers' heartbeats, and every worker's lifecycle events (few; they tell it the
//!   hardware of any worker a task of its runs on, but only its own workers are counted);
//! - its tasks' events, queued ones included (the task shard is in the subject);
//! - the events of other partitions' tasks that ran on its workers (the worker shard is the
//!   last token of such a task event's subject), for its workers' completed, failed and
//!   duration figures only;
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

    /// Whether it folds the event stored under `subject` (`<prefix>.events.…`), told from
    /// the subject alone, before any decoding. Every partition reads the whole stream in
    /// order and keeps its part: JetStream consumers with several subject filters cost the
    /// server time in proportion to the distinct subjects they match, for every message
    /// (ARCHITECTURE.md, "Scaling out").
    pub fn wants(&self, subjects: &Subjects, subject: &str) -> bool {
        if self.is_whole() {
            return true;
        }
        let Some(rest) = subject.strip_prefix(subjects.prefix()).and_then(|rest| rest.strip_prefix(".events.")) else {
            return false;
        };
        let shard = |token: Option<&str>| token.and_then(|token| token.parse::<u32>().ok());
        let mut tokens = rest.split('.');
        match tokens.next() {
            Some("heartbeat") => shard(tokens.next()).is_some_and(|shard| self.owns_shard(shard)),
            Some("worker") => true,
            Some("task") => {
                let (task, worker) = (shard(tokens.next()), shard(tokens.next()));
                [task, worker].into_iter().flatten().any(|shard| self.owns_shard(shard))
            }
            Some("system") => self.owns_system(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reaches_the_partitions_that_own_its_worker_or_task_and_no_other() {
        let subjects = Subjects::new("acme.fleet").expect("a prefix");
        for count in [2, 4, 8] {
            let partitions: Vec<Partition> =
                (0..count).map(|index| Partition::new(index, count).expect("a partition")).collect();
            let reached = |subject: &str| -> Vec<u32> {
                partitions.iter().filter(|p| p.wants(&subjects, subject)).map(|p| p.index).collect()
            };
            for n in 0..200 {
                let (task, worker) = (format!("t-{n}"), format!("w-{}", n * 7));
                let mut owners = vec![shard_of(&task) % count, shard_of(&worker) % count];
                owners.sort();
                owners.dedup();
                assert_eq!(reached(&subjects.task_event(&task, Some(&worker))), owners, "{count} partitions");
                assert_eq!(reached(&subjects.task_event(&task, None)), vec![shard_of(&task) % count]);
                assert_eq!(reached(&subjects.heartbeat_event(&worker)), vec![shard_of(&worker) % count]);
                assert_eq!(reached(&subjects.worker_event(&worker)).len(), count as usize, "lifecycle: all");
            }
            assert_eq!(reached(&subjects.system_event("coordinator")), vec![0]);
            for other in [subjects.clock_event(), subjects.service_event("archiver"), "fleet.events.task.01".into()] {
                assert!(reached(&other).is_empty(), "{other}");
            }
        }
        assert!(Partition::WHOLE.wants(&subjects, &subjects.clock_event()));
    }

    #[test]
    fn only_divisors_of_the_shard_count() {
        assert!(Partition::new(0, 3).is_err());
        assert!(Partition::new(4, 4).is_err());
        assert_eq!(Partition::new(1, 4).map(|p| p.name("processor")), Ok("processor-1-of-4".to_owned()));
        assert_eq!(Partition::WHOLE.name("processor"), "processor");
    }
}
