//! `processor.tasks`: the live tasks, filtered, sorted and paged (or counted by a grouping),
//! answered from the state the processor holds. Contract: `shared::query`.

use shared::fleet::{FleetState, TaskState, TaskStatus};
use shared::paging::{self, SortValue};
use shared::query::{LiveStatus, LiveTask, TaskAnswer, TaskGroup, TaskGroupBy, TaskQuery, TaskSort};
use std::collections::BTreeMap;

fn live_status(status: TaskStatus) -> LiveStatus {
    match status {
        TaskStatus::Queued => LiveStatus::Queued,
        TaskStatus::Assigned => LiveStatus::Assigned,
        TaskStatus::Running => LiveStatus::Running,
        TaskStatus::Failed => LiveStatus::Failed,
    }
}

fn selected(state: &FleetState, query: &TaskQuery, task_id: &str, task: &TaskState) -> bool {
    let status = live_status(task.status);
    (query.status.is_empty() || query.status.contains(&status))
        && query.task_id.as_deref().is_none_or(|wanted| wanted == task_id)
        && query.worker_id.as_deref().is_none_or(|wanted| task.worker_id.as_deref() == Some(wanted))
        && query.model.as_deref().is_none_or(|wanted| wanted == task.model)
        && query.family.is_none_or(|wanted| task.family == Some(wanted))
        && query.hardware.is_none_or(|wanted| task.hardware == Some(wanted))
        && query.search.as_deref().is_none_or(|text| task_id.contains(text))
        && query.depends_on.as_deref().is_none_or(|wanted| task.depends_on.iter().any(|id| id == wanted))
        && query.start_time.is_none_or(|start| task.created_at >= start)
        && query.end_time.is_none_or(|end| task.created_at < end)
        && (!query.blocked || task.depends_on.iter().any(|id| state.tasks.contains_key(id.as_str())))
}

/// What a task sorts by: the fields `TaskSort` names, whether read off the state or off a
/// partition's answer.
struct SortFields<'a> {
    created_at: i64,
    queued_at: i64,
    started_at: Option<i64>,
    priority: u8,
    model: &'a str,
    worker_id: Option<&'a str>,
    status: LiveStatus,
}

impl SortFields<'_> {
    fn value(&self, sort: TaskSort) -> SortValue {
        match sort {
            TaskSort::CreatedAt => SortValue::Number(self.created_at as f64),
            TaskSort::QueuedAt => SortValue::Number(self.queued_at as f64),
            // Not started sorts first (ascending).
            TaskSort::StartedAt => SortValue::Number(self.started_at.map_or(-1.0, |started| started as f64)),
            TaskSort::Priority => SortValue::Number(f64::from(self.priority)),
            TaskSort::Model => self.model.into(),
            TaskSort::WorkerId => self.worker_id.unwrap_or_default().into(),
            TaskSort::Status => self.status.as_str().into(),
            // Rows tie on the id already: no text to copy per task.
            TaskSort::TaskId => SortValue::Number(0.0),
        }
    }
}

fn sort_value(sort: TaskSort, task: &TaskState) -> SortValue {
    SortFields {
        created_at: task.created_at,
        queued_at: task.queued_at,
        started_at: task.started_at,
        priority: task.priority,
        model: &task.model,
        worker_id: task.worker_id.as_deref(),
        status: live_status(task.status),
    }
    .value(sort)
}

fn live_sort_value(sort: TaskSort, task: &LiveTask) -> SortValue {
    SortFields {
        created_at: task.created_at,
        queued_at: task.queued_at,
        started_at: task.started_at,
        priority: task.priority,
        model: &task.model,
        worker_id: task.worker_id.as_deref(),
        status: task.status,
    }
    .value(sort)
}

/// A `processor.tasks` request: JSON, or nothing for every live task.
pub fn parse_query(payload: &[u8]) -> Result<TaskQuery, String> {
    match payload.iter().all(u8::is_ascii_whitespace) {
        true => Ok(TaskQuery::default()),
        false => serde_json::from_slice(payload).map_err(|err| format!("not a task query: {err}")),
    }
}

/// The query each partition is asked when the fleet tier answers `query`: the same, but
/// every group (a partition's groups are summed with the others' before the cut).
pub fn partition_query(query: &TaskQuery) -> TaskQuery {
    match query.group_by {
        Some(_) => TaskQuery { limit: Some(paging::MAX_LIMIT), ..query.clone() },
        None => query.clone(),
    }
}

/// The answer one processor holding every partition's tasks would give, from the
/// partitions' answers to [`partition_query`]. Exact, except that a grouping with more than
/// `paging::MAX_LIMIT` values in one partition counts only its largest.
pub fn merge(query: &TaskQuery, answers: Vec<TaskAnswer>, now: i64) -> Result<TaskAnswer, String> {
    let limit = paging::limit(query.limit).map_err(|err| err.to_string())?;
    let events_seq = answers.iter().map(|answer| answer.events_seq).max().unwrap_or_default();
    if query.group_by.is_some() {
        let mut groups: BTreeMap<String, TaskGroup> = BTreeMap::new();
        for group in answers.into_iter().flat_map(|answer| answer.groups.unwrap_or_default()) {
            let mine = groups
                .entry(group.key.clone())
                .or_insert_with(|| TaskGroup { key: group.key.clone(), ..TaskGroup::default() });
            mine.queued += group.queued;
            mine.assigned += group.assigned;
            mine.running += group.running;
            mine.failed += group.failed;
            mine.total += group.total;
        }
        let mut groups: Vec<TaskGroup> = groups.into_values().collect();
        groups.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.key.cmp(&b.key)));
        let total = groups.len() as u64;
        groups.truncate(limit);
        let page = paging::Page { items: Vec::new(), total, truncated: total > limit as u64, next_cursor: None };
        return Ok(TaskAnswer { time: now, events_seq, page, groups: Some(groups) });
    }
    let pages = answers.into_iter().map(|answer| answer.page).collect();
    let key = |task: &LiveTask| (live_sort_value(query.sort, task), task.task_id.clone());
    Ok(TaskAnswer { time: now, events_seq, page: paging::merge(pages, key, query.order, limit), groups: None })
}

fn live_task(state: &FleetState, task_id: &str, task: &TaskState) -> LiveTask {
    LiveTask {
        task_id: task_id.to_owned(),
        status: live_status(task.status),
        model: task.model.clone(),
        family: task.family,
        priority: task.priority,
        created_at: task.created_at,
        queued_at: task.queued_at,
        started_at: task.started_at,
        worker_id: task.worker_id.clone(),
        hardware: task.hardware,
        depends_on: task.depends_on.clone(),
        waiting_on: task.depends_on.iter().filter(|id| state.tasks.contains_key(id.as_str())).cloned().collect(),
        attempts: task.attempts,
        changed_at: task.changed_at,
    }
}

fn group_key(group_by: TaskGroupBy, task: &TaskState) -> String {
    let unknown = || "unknown".to_owned();
    match group_by {
        TaskGroupBy::WorkerId => task.worker_id.clone().unwrap_or_else(unknown),
        TaskGroupBy::Model => task.model.clone(),
        TaskGroupBy::Family => task.family.map_or_else(unknown, |family| family.as_str().to_owned()),
        TaskGroupBy::Hardware => task.hardware.map_or_else(unknown, |hardware| hardware.as_str().to_owned()),
        TaskGroupBy::Status => live_status(task.status).as_str().to_owned(),
        TaskGroupBy::Placement => format!(
            "{}/{}",
            task.family.map_or("unknown", |family| family.as_str()),
            task.hardware.map_or("unknown", |hardware| hardware.as_str())
        ),
    }
}

/// The answer to `query` over `state`, or the reason it is refused.
pub fn answer(state: &FleetState, query: &TaskQuery, now: i64, events_seq: u64) -> Result<TaskAnswer, String> {
    let limit = paging::limit(query.limit).map_err(|err| err.to_string())?;
    let chosen = state.tasks.iter().filter(|(task_id, task)| selected(state, query, task_id, task));
    if let Some(group_by) = query.group_by {
        let mut groups: BTreeMap<String, TaskGroup> = BTreeMap::new();
        for (_, task) in chosen {
            let key = group_key(group_by, task);
            let group = groups.entry(key.clone()).or_insert_with(|| TaskGroup { key, ..TaskGroup::default() });
            match task.status {
                TaskStatus::Queued => group.queued += 1,
                TaskStatus::Assigned => group.assigned += 1,
                TaskStatus::Running => group.running += 1,
                TaskStatus::Failed => group.failed += 1,
            }
            group.total += 1;
        }
        let mut groups: Vec<TaskGroup> = groups.into_values().collect();
        groups.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.key.cmp(&b.key)));
        let total = groups.len() as u64;
        groups.truncate(limit);
        let page = paging::Page { items: Vec::new(), total, truncated: total > limit as u64, next_cursor: None };
        return Ok(TaskAnswer { time: now, events_seq, page, groups: Some(groups) });
    }
    let rows: Vec<(SortValue, &str, (&str, &TaskState))> = chosen
        .map(|(task_id, task)| (sort_value(query.sort, task), task_id.as_str(), (task_id.as_str(), task)))
        .collect();
    let page = paging::page(rows, query.order, query.cursor.as_deref(), limit).map_err(|err| err.to_string())?;
    let page = paging::Page {
        items: page.items.into_iter().map(|(task_id, task)| live_task(state, task_id, task)).collect(),
        total: page.total,
        truncated: page.truncated,
        next_cursor: page.next_cursor,
    };
    Ok(TaskAnswer { time: now, events_seq, page, groups: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::event::{Capabilities, Event, HardwareKind, ModelFamily};
    use shared::paging::Order;

    fn fleet() -> FleetState {
        let mut state = FleetState::default();
        let capabilities = |hardware| Capabilities {
            hardware,
            cpu_cores: 8,
            memory_gb: 32.0,
            gpu_model: None,
            gpu_memory_gb: None,
            slots: 2,
            tags: vec![],
        };
        state.apply(
            0,
            &Event::WorkerRegistered { worker_id: "cpu-1".into(), capabilities: capabilities(HardwareKind::Cpu) },
        );
        state.apply(
            0,
            &Event::WorkerRegistered { worker_id: "gpu-1".into(), capabilities: capabilities(HardwareKind::Cuda) },
        );
        for n in 0..10 {
            let (model, family) =
                if n % 2 == 0 { ("bert-base", ModelFamily::Text) } else { ("vit-large", ModelFamily::Vision) };
            let depends_on = if n == 9 { vec!["t-0".into(), "gone".into()] } else { vec![] };
            let queued = Event::TaskQueued {
                task_id: format!("t-{n}"),
                model: model.into(),
                family,
                priority: n as u8 % 4,
                depends_on,
            };
            state.apply(1_000 + n, &queued);
        }
        for n in 0..4 {
            let worker_id = if n < 3 { "gpu-1" } else { "cpu-1" };
            state.apply(
                2_000,
                &Event::TaskAssigned { task_id: format!("t-{n}"), worker_id: worker_id.into(), best_fit: Some(true) },
            );
        }
        state.apply(3_000, &Event::TaskStarted { task_id: "t-0".into(), worker_id: "gpu-1".into() });
        state
    }

    fn ids(answer: &TaskAnswer) -> Vec<&str> {
        answer.page.items.iter().map(|task| task.task_id.as_str()).collect()
    }

    #[test]
    fn filters_combine_and_pages_follow_on() {
        let state = fleet();
        let query = TaskQuery {
            status: vec![LiveStatus::Queued],
            family: Some(ModelFamily::Vision),
            limit: Some(2),
            ..TaskQuery::default()
        };
        let first = answer(&state, &query, 5_000, 7).expect("answers");
        assert_eq!((ids(&first), first.page.total, first.page.truncated), (vec!["t-5", "t-7"], 3, true));
        let next = TaskQuery { cursor: first.page.next_cursor.clone(), ..query };
        let second = answer(&state, &next, 5_000, 7).expect("answers");
        assert_eq!((ids(&second), second.page.truncated), (vec!["t-9"], false));
        let waiting = &second.page.items[0];
        assert_eq!(waiting.waiting_on, vec!["t-0".to_owned()], "t-0 runs; `gone` is not live");

        let on_gpu = TaskQuery {
            worker_id: Some("gpu-1".into()),
            sort: TaskSort::Status,
            order: Order::Desc,
            ..TaskQuery::default()
        };
        let answered = answer(&state, &on_gpu, 5_000, 7).expect("answers");
        assert_eq!(ids(&answered), vec!["t-0", "t-2", "t-1"], "running before assigned, then by id descending");
        let dependents = TaskQuery { depends_on: Some("t-0".into()), ..TaskQuery::default() };
        assert_eq!(ids(&answer(&state, &dependents, 5_000, 7).expect("answers")), vec!["t-9"]);
        let blocked = TaskQuery { blocked: true, ..TaskQuery::default() };
        assert_eq!(
            ids(&answer(&state, &blocked, 5_000, 7).expect("answers")),
            vec!["t-9"],
            "it waits for t-0, which runs"
        );
    }

    #[test]
    fn groups_count_each_status_most_first() {
        let state = fleet();
        let query = TaskQuery { group_by: Some(TaskGroupBy::WorkerId), limit: Some(2), ..TaskQuery::default() };
        let answered = answer(&state, &query, 5_000, 7).expect("answers");
        let groups = answered.groups.expect("groups");
        assert_eq!(groups[0], TaskGroup { key: "unknown".into(), queued: 6, total: 6, ..TaskGroup::default() });
        assert_eq!(
            groups[1],
            TaskGroup { key: "gpu-1".into(), assigned: 2, running: 1, total: 3, ..TaskGroup::default() }
        );
        assert_eq!((answered.page.total, answered.page.truncated), (3, true));
    }

    #[test]
    fn bad_limits_and_cursors_are_refused() {
        let state = fleet();
        assert!(answer(&state, &TaskQuery { limit: Some(0), ..TaskQuery::default() }, 0, 0).is_err());
        assert!(answer(&state, &TaskQuery { cursor: Some("x".into()), ..TaskQuery::default() }, 0, 0).is_err());
    }
}
