//! What a history query asks for (`Params`) and the SQL that answers it (`Relation`): one
//! place that turns parameters into SQL text, so the rules on what may reach it (ids are
//! subject tokens, names come from fixed lists, times are numbers) are kept in one file.

use crate::query::{Refused, bad, not_found};
use serde::Deserialize;

/// Most rows a page holds.
pub const MAX_LIMIT: usize = 1000;

/// Every query's parameters; each query reads those it knows. Times are ms since the epoch.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub time: Option<i64>,
    pub interval_ms: Option<i64>,
    pub resolution: Option<String>,
    pub metrics: Option<Vec<String>>,
    pub worker_id: Option<String>,
    pub task_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub state: Option<String>,
    pub severity: Option<String>,
    pub rule: Option<String>,
    pub by: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    /// Finished tasks: `completed` or `failed`.
    pub status: Option<String>,
    pub model: Option<String>,
    pub family: Option<String>,
    pub hardware: Option<String>,
    /// Task ids containing this text.
    pub search: Option<String>,
    pub sort: Option<String>,
    pub order: Option<String>,
}

impl Params {
    pub fn limit(&self) -> Result<usize, Refused> {
        match self.limit.unwrap_or(100) {
            limit @ 1..=MAX_LIMIT => Ok(limit),
            other => Err(bad(format!("limit {other}: use 1 to {MAX_LIMIT}"))),
        }
    }

    /// The range asked for, default the last hour; start before end.
    pub(crate) fn range(&self, now: i64) -> Result<(i64, i64), Refused> {
        let end = self.end_time.unwrap_or(now);
        let start = self.start_time.unwrap_or(end - 3_600_000);
        if start >= end {
            return Err(bad(format!("start_time {start} is not before end_time {end}")));
        }
        Ok((start, end))
    }
}

/// A query as SQL, with what describes its rows.
#[derive(Debug, Clone)]
pub struct Relation {
    pub sql: String,
    pub resolution: &'static str,
    pub interval_ms: i64,
    /// Buckets a series spans: bounded in a reply, not in an export (which streams).
    pub points: i64,
    /// How a page's cursor continues, for paged lists.
    pub cursor: Option<Cursor>,
    pub total_sql: Option<String>,
    /// What an export writes when it differs from `sql` (a list's every row, not one page).
    pub export_sql: Option<String>,
}

/// Where the next page of a list starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cursor {
    /// After the last `seq` seen (events, alerts: stream order).
    Seq,
    /// After the last (value of this column, task id) seen, in the list's order.
    Keyset(&'static str),
}

/// Roll-up progress per `<table>.<resolution>`, µs.
pub fn rollup_progress(connection: &mut duckdb::Connection) -> anyhow::Result<std::collections::BTreeMap<String, i64>> {
    let mut statement = connection.prepare("SELECT name, epoch_us(done_until) FROM rollup_progress")?;
    let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Only these may reach SQL text: ids are subject tokens, names come from fixed lists,
/// free text (a model's name) is quoted.
pub(crate) fn token(what: &str, value: &str) -> Result<String, Refused> {
    shared::subjects::check_token("id", value).map_err(|_| bad(format!("{what} {value:?} is not a valid id")))?;
    Ok(value.to_owned())
}

/// `value` as an SQL string literal: printable, at most 200 characters, quotes doubled.
pub(crate) fn quoted(what: &str, value: &str) -> Result<String, Refused> {
    if value.is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
        return Err(bad(format!("{what} {value:?} is not a name (1 to 200 printable characters)")));
    }
    Ok(format!("'{}'", value.replace('\'', "''")))
}

pub(crate) fn one_of(what: &str, value: &str, allowed: &[&str]) -> Result<String, Refused> {
    if allowed.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(bad(format!("{what} {value:?}: use one of {}", allowed.join(", "))))
    }
}

pub(crate) fn timestamp(ms: i64) -> String {
    format!("make_timestamp({}::BIGINT)", ms.saturating_mul(1000))
}

impl Relation {
    pub fn of(
        name: &str,
        params: &Params,
        done: &std::collections::BTreeMap<String, i64>,
        now: i64,
    ) -> Result<Self, Refused> {
        let plain = |sql: String| Relation {
            sql,
            resolution: "raw",
            interval_ms: 0,
            points: 0,
            cursor: None,
            total_sql: None,
            export_sql: None,
        };
        match name {
            "system.history" => Self::series(params, "system", None, done, now),
            "worker.history" => {
                let worker =
                    token("worker_id", params.worker_id.as_deref().ok_or_else(|| bad("worker_id is needed"))?)?;
                Self::series(params, "worker", Some(worker), done, now)
            }
            "task" => {
                let task = token("task_id", params.task_id.as_deref().ok_or_else(|| bad("task_id is needed"))?)?;
                Ok(plain(format!(
                    "SELECT seq, epoch_ms(time) AS time, type, worker_id, task_id, detail::VARCHAR AS detail, source
                     FROM events WHERE task_id = '{task}' ORDER BY seq"
                )))
            }
            "tasks.stats" => crate::finished::stats(params, done, now),
            "tasks.list" => crate::finished::list(params, now),
            "events" | "alerts" => Self::list(name, params),
            other => Err(not_found(format!("no query {other:?}: use {}", QUERIES.join(", ")))),
        }
    }

    /// A metric series over a range, at the resolution the range calls for (or the one
    /// asked), each bucket's min, mean, max and last: hour roll-ups, then minute roll-ups
    /// past the hours done, then raw rows past the minutes done.
    fn series(
        params: &Params,
        kind: &str,
        worker: Option<String>,
        done: &std::collections::BTreeMap<String, i64>,
        now: i64,
    ) -> Result<Self, Refused> {
        let (start, end) = params.range(now)?;
        let span = end - start;
        let resolution = match params.resolution.as_deref() {
            Some(asked) => one_of("resolution", asked, &["raw", "minute", "hour"])?,
            None if span <= 6 * 3_600_000 => "raw".into(),
            // Up to three days a chart is still made of minutes; beyond, hours (a 7-day
            // trend is 168 buckets, read from a few million rows instead of tens).
            None if span <= 3 * 86_400_000 => "minute".into(),
            None => "hour".into(),
        };
        let step = match resolution.as_str() {
            "raw" if kind == "system" => 1_000,
            "raw" => 10_000,
            "minute" => 60_000,
            _ => 3_600_000,
        };
        let interval_ms = match params.interval_ms {
            Some(interval) if interval < step => {
                return Err(bad(format!(
                    "interval_ms {interval} is finer than the {resolution} resolution ({step} ms)"
                )));
            }
            Some(interval) => interval,
            // About a thousand points, in whole steps.
            None => (span / 1000).div_euclid(step).max(1) * step,
        };
        let metrics = match &params.metrics {
            // `IN ()` is not SQL; nothing asked for is a mistake, not an empty answer.
            Some(metrics) if metrics.is_empty() => {
                return Err(bad("metrics names none: leave it out for every metric"));
            }
            Some(metrics) => {
                for metric in metrics {
                    token("metric", metric)?;
                }
                Some(metrics.iter().map(|metric| format!("'{metric}'")).collect::<Vec<_>>().join(", "))
            }
            None => None,
        };
        let (raw, rollups, key, id_column) = match &worker {
            Some(_) => ("worker_metrics", "worker_rollups", "worker_samples", ", worker_id"),
            None => ("system_metrics", "system_rollups", "system_metrics", ""),
        };
        let filter = {
            let mut filter = String::new();
            if let Some(worker) = &worker {
                filter.push_str(&format!(" AND worker_id = '{worker}'"));
            }
            if let Some(metrics) = &metrics {
                filter.push_str(&format!(" AND metric_name IN ({metrics})"));
            }
            filter
        };
        let minute_done = done.get(&format!("{key}.minute")).map(|us| us / 1000).unwrap_or(start);
        let hour_done = done.get(&format!("{key}.hour")).map(|us| us / 1000).unwrap_or(start);
        let (start_ts, end_ts) = (timestamp(start), timestamp(end));
        // A coarser bucket is used only when it lies wholly in the range; the part of the
        // range before the first whole one comes from the next finer level.
        let ceil = |ms: i64, step: i64| ms.div_euclid(step) * step + if ms.rem_euclid(step) > 0 { step } else { 0 };
        let (first_hour, first_minute) = (ceil(start, 3_600_000), ceil(start, 60_000));
        let mut parts = Vec::new();
        let mut raw_where = format!("timestamp >= {start_ts}");
        if resolution == "hour" {
            parts.push(format!(
                "SELECT bucket AS t, metric_name{id_column}, min, mean, max, last, count FROM {rollups}
                 WHERE resolution = 'hour' AND bucket >= {} AND bucket < {} AND bucket < {end_ts}{filter}",
                timestamp(first_hour),
                timestamp(hour_done)
            ));
        }
        if resolution != "raw" {
            // Minutes before the first whole hour, and those past the hours rolled up.
            let minutes = match resolution.as_str() {
                "hour" => format!("(bucket < {} OR bucket >= {})", timestamp(first_hour), timestamp(hour_done)),
                _ => "TRUE".to_owned(),
            };
            parts.push(format!(
                "SELECT bucket AS t, metric_name{id_column}, min, mean, max, last, count FROM {rollups}
                 WHERE resolution = 'minute' AND bucket >= {} AND {minutes} AND bucket < {} AND bucket < {end_ts}{filter}",
                timestamp(first_minute),
                timestamp(minute_done)
            ));
            raw_where = format!(
                "timestamp >= {start_ts} AND (timestamp < {} OR timestamp >= {})",
                timestamp(first_minute),
                timestamp(minute_done)
            );
        }
        parts.push(format!(
            "SELECT timestamp AS t, metric_name{id_column}, metric_value AS min, metric_value AS mean, metric_value AS max,
                 metric_value AS last, 1 AS count FROM {raw}
             WHERE {raw_where} AND timestamp < {end_ts}{filter}"
        ));
        let sql = format!(
            "SELECT epoch_ms(time_bucket(INTERVAL {interval_ms} milliseconds, t)) AS time, metric_name,
                 min(min) AS min, sum(mean * count) / sum(count) AS mean, max(max) AS max, arg_max(last, t) AS last,
                 sum(count)::UBIGINT AS samples
             FROM ({}) GROUP BY ALL ORDER BY time, metric_name",
            parts.join(" UNION ALL ")
        );
        Ok(Relation {
            sql,
            resolution: match resolution.as_str() {
                "raw" => "raw",
                "minute" => "minute",
                _ => "hour",
            },
            interval_ms,
            points: span / interval_ms,
            cursor: None,
            total_sql: None,
            export_sql: None,
        })
    }

    /// A page of events or alerts, newest last, filtered; the cursor is the last `seq` seen.
    fn list(name: &str, params: &Params) -> Result<Self, Refused> {
        let limit = params.limit()?;
        let mut conditions = Vec::new();
        if let Some(start) = params.start_time {
            conditions.push(format!("time >= {}", timestamp(start)));
        }
        if let Some(end) = params.end_time {
            conditions.push(format!("time < {}", timestamp(end)));
        }
        let columns = match name {
            "events" => {
                if let Some(worker) = &params.worker_id {
                    conditions.push(format!("worker_id = '{}'", token("worker_id", worker)?));
                }
                if let Some(task) = &params.task_id {
                    conditions.push(format!("task_id = '{}'", token("task_id", task)?));
                }
                if let Some(kind) = &params.kind {
                    conditions.push(format!("type = '{}'", one_of("type", kind, EVENT_TYPES)?));
                }
                (
                    "seq, epoch_ms(time) AS time, type, worker_id, task_id, detail::VARCHAR AS detail, source",
                    &["source"][..],
                )
            }
            _ => {
                if let Some(state) = &params.state {
                    conditions.push(format!("state = '{}'", one_of("state", state, &["firing", "resolved"])?));
                }
                if let Some(severity) = &params.severity {
                    conditions.push(format!(
                        "severity = '{}'",
                        one_of("severity", severity, &["info", "warning", "critical"])?
                    ));
                }
                if let Some(rule) = &params.rule {
                    conditions.push(format!("rule = '{}'", token("rule", rule)?));
                }
                (
                    "seq, epoch_ms(time) AS time, alert_id, rule, severity, state, target, summary, value, threshold, alert::VARCHAR AS alert",
                    &["target", "summary"][..],
                )
            }
        };
        let (columns, free_text) = columns;
        let filtered = if conditions.is_empty() { "TRUE".to_owned() } else { conditions.join(" AND ") };
        // Stream order, oldest first, or newest first with `order=desc`.
        let descending = one_of("order", params.order.as_deref().unwrap_or("asc"), &["asc", "desc"])? == "desc";
        let (direction, beyond) = if descending { ("DESC", "<") } else { ("ASC", ">") };
        let after = match &params.cursor {
            Some(cursor) => {
                let seq: u64 =
                    cursor.parse().map_err(|_| bad(format!("cursor {cursor:?} is not one this archive gave")))?;
                format!(" AND seq {beyond} {seq}")
            }
            None => String::new(),
        };
        let exported = csv_safe(&columns.split(", ").collect::<Vec<_>>(), free_text);
        Ok(Relation {
            sql: format!(
                "SELECT {columns} FROM {name} WHERE {filtered}{after} ORDER BY seq {direction} LIMIT {}",
                limit + 1
            ),
            resolution: "raw",
            interval_ms: 0,
            points: 0,
            cursor: Some(Cursor::Seq),
            total_sql: Some(format!("SELECT count(*)::UBIGINT AS total FROM {name} WHERE {filtered}")),
            export_sql: Some(format!("SELECT {exported} FROM {name} WHERE {filtered}{after} ORDER BY seq {direction}")),
        })
    }
}

/// `columns` (a select list) with each of `free_text` (columns of text from the fleet)
/// disarmed for spreadsheets: text starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return gets a `'` in front, so opening an export never runs a formula.
pub(crate) fn csv_safe(columns: &[&str], free_text: &[&str]) -> String {
    columns
        .iter()
        .map(|column| match free_text.contains(column) {
            true => format!(
                "CASE WHEN regexp_matches({column}, '^[=+@\t\r-]') THEN '''' || {column} ELSE {column} END AS {column}"
            ),
            false => (*column).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `alerts.stats`: the alerts that fired in a range (each occurrence once, at the time it
/// first fired): a timeline by severity (`interval_ms`, default about 60 buckets) and
/// counts by rule, severity and source (what raised it: a worker, a task, a model, a
/// hardware kind, a service, a component, the fleet, or a posting program).
pub struct AlertStats {
    pub interval_ms: i64,
    pub timeline_sql: String,
    /// `[(name, sql)]`: rows of `key` and `count`.
    pub counts_sql: Vec<(&'static str, String)>,
}

pub fn alert_stats(params: &Params, now: i64) -> Result<AlertStats, Refused> {
    let (start, end) = params.range(now)?;
    let interval_ms = match params.interval_ms {
        Some(interval) if interval >= 1000 => interval,
        Some(interval) => return Err(bad(format!("interval_ms {interval} is under a second"))),
        None => ((end - start) / 60).max(1000),
    };
    if (end - start) / interval_ms > 5000 {
        return Err(bad(format!("{} buckets is over 5000: ask for a larger interval", (end - start) / interval_ms)));
    }
    let fired = format!(
        "SELECT alert_id, min(time) AS fired_at, any_value(rule) AS rule, any_value(severity) AS severity,
             CASE WHEN any_value(rule) = 'custom' THEN split_part(any_value(target), '/', 1)
                  WHEN contains(any_value(target), ':') THEN split_part(any_value(target), ':', 1)
                  WHEN any_value(target) = 'fleet' THEN 'fleet'
                  WHEN any_value(rule) LIKE 'task%' THEN 'task'
                  ELSE 'worker' END AS source
         FROM alerts WHERE state = 'firing' GROUP BY alert_id
         HAVING min(time) >= {} AND min(time) < {}",
        timestamp(start),
        timestamp(end)
    );
    let timeline_sql = format!(
        "SELECT epoch_ms(time_bucket(INTERVAL {interval_ms} milliseconds, fired_at)) AS time, severity, count(*)::UBIGINT AS count
         FROM ({fired}) GROUP BY ALL ORDER BY time, severity"
    );
    let counts_sql = ["rule", "severity", "source"]
        .map(|key| {
            let sql = format!(
                "SELECT {key} AS key, count(*)::UBIGINT AS count FROM ({fired}) GROUP BY ALL ORDER BY count DESC, key"
            );
            (key, sql)
        })
        .into();
    Ok(AlertStats { interval_ms, timeline_sql, counts_sql })
}

/// Every query the archiver answers.
pub const QUERIES: &[&str] = &[
    "system.history",
    "worker.history",
    "task",
    "tasks.list",
    "tasks.stats",
    "tasks.distribution",
    "events",
    "alerts",
    "alerts.stats",
    "fleet.at",
    "export",
];

/// Event types, as `type` accepts them.
const EVENT_TYPES: &[&str] = &[
    "worker_registered",
    "heartbeat",
    "worker_status_changed",
    "worker_deregistered",
    "task_queued",
    "task_assigned",
    "task_started",
    "task_completed",
    "task_failed",
    "task_retried",
    "task_cancelled",
    "component_status",
    "recovery_action",
];
