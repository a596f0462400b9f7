//! Finished tasks in the archive as SQL: the list (`tasks.list`), figures by a grouping
//! (`tasks.stats`) and the spread of run times (`tasks.distribution`). Raw rows of `tasks`
//! within their retention; `tasks.stats` reads the minute roll-ups where it can.

use crate::query::{Refused, bad};
use crate::relation::{Cursor, Params, Relation, csv_safe, one_of, quoted, timestamp, token};
use shared::event::{HardwareKind, ModelFamily};

/// What a finished task is listed with (`depends_on` as a JSON list of ids).
const COLUMNS: [&str; 14] = [
    "epoch_ms(finished_at) AS finished_at",
    "task_id",
    "model",
    "family",
    "hardware",
    "worker_id",
    "priority",
    "succeeded",
    "queue_ms",
    "processing_ms",
    "total_ms",
    "error",
    "to_json(string_split(depends_on, ','))::VARCHAR AS depends_on",
    "coalesce(attempts, 0) AS attempts",
];

/// Upper bounds of the run-time buckets, ms; the last bucket is everything longer.
pub const BUCKETS_MS: [u64; 14] =
    [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000];

/// The conditions every finished-task query shares (without the time range).
fn conditions(params: &Params) -> Result<Vec<String>, Refused> {
    let mut conditions = Vec::new();
    if let Some(status) = &params.status {
        conditions.push(match one_of("status", status, &["completed", "failed"])?.as_str() {
            "completed" => "succeeded".to_owned(),
            _ => "NOT succeeded".to_owned(),
        });
    }
    if let Some(task) = &params.task_id {
        conditions.push(format!("task_id = '{}'", token("task_id", task)?));
    }
    if let Some(worker) = &params.worker_id {
        conditions.push(format!("worker_id = '{}'", token("worker_id", worker)?));
    }
    if let Some(model) = &params.model {
        conditions.push(format!("model = {}", quoted("model", model)?));
    }
    if let Some(family) = &params.family {
        let families: Vec<&str> = ModelFamily::ALL.iter().map(|family| family.as_str()).collect();
        conditions.push(format!("family = '{}'", one_of("family", family, &families)?));
    }
    if let Some(hardware) = &params.hardware {
        let kinds: Vec<&str> = HardwareKind::ALL.iter().map(|kind| kind.as_str()).collect();
        conditions.push(format!("hardware = '{}'", one_of("hardware", hardware, &kinds)?));
    }
    if let Some(text) = &params.search {
        conditions.push(format!("contains(task_id, '{}')", token("search", text)?));
    }
    Ok(conditions)
}

fn range_conditions(params: &Params, start: i64, end: i64) -> Result<Vec<String>, Refused> {
    let mut all = conditions(params)?;
    all.push(format!("finished_at >= {} AND finished_at < {}", timestamp(start), timestamp(end)));
    Ok(all)
}

/// `tasks.list`: finished tasks, newest first unless `sort` and `order` say otherwise; the
/// cursor is the last row's sort value and task id. Without a range, all that are kept.
pub fn list(params: &Params, _now: i64) -> Result<Relation, Refused> {
    let limit = params.limit()?;
    let mut conditions = conditions(params)?;
    if let Some(start) = params.start_time {
        conditions.push(format!("finished_at >= {}", timestamp(start)));
    }
    if let Some(end) = params.end_time {
        conditions.push(format!("finished_at < {}", timestamp(end)));
    }
    let sort = params.sort.as_deref().unwrap_or("finished_at");
    let key = match one_of(
        "sort",
        sort,
        &["finished_at", "processing_ms", "queue_ms", "total_ms", "priority", "model", "worker_id", "task_id"],
    )?
    .as_str()
    {
        "finished_at" => "epoch_ms(finished_at)",
        "processing_ms" => "coalesce(processing_ms, 0)",
        "queue_ms" => "coalesce(queue_ms, 0)",
        "total_ms" => "coalesce(total_ms, 0)",
        "priority" => "coalesce(priority, 0)",
        "model" => "model",
        "worker_id" => "coalesce(worker_id, '')",
        _ => "task_id",
    };
    let descending = one_of("order", params.order.as_deref().unwrap_or("desc"), &["asc", "desc"])? == "desc";
    let (direction, beyond) = if descending { ("DESC", "<") } else { ("ASC", ">") };
    let filtered = if conditions.is_empty() { "TRUE".to_owned() } else { conditions.join(" AND ") };
    let after = match &params.cursor {
        Some(cursor) => {
            let refused = || bad(format!("cursor {cursor:?} is not one this archive gave"));
            let (value, task): (serde_json::Value, String) = serde_json::from_str(cursor).map_err(|_| refused())?;
            let task = token("cursor", &task).map_err(|_| refused())?;
            let value = match value {
                serde_json::Value::Number(number) => number.as_f64().ok_or_else(refused)?.to_string(),
                serde_json::Value::String(text) => quoted("cursor", &text)?,
                _ => return Err(refused()),
            };
            format!(" AND ({key} {beyond} {value} OR ({key} = {value} AND task_id {beyond} '{task}'))")
        }
        None => String::new(),
    };
    let columns = COLUMNS.join(", ");
    let select = format!("SELECT {columns}, {key} AS sort_key FROM tasks WHERE {filtered}");
    let order = format!("ORDER BY sort_key {direction}, task_id {direction}");
    Ok(Relation {
        sql: format!("{select}{after} {order} LIMIT {}", limit + 1),
        resolution: "raw",
        interval_ms: 0,
        points: 0,
        cursor: Some(Cursor::Keyset("sort_key")),
        total_sql: Some(format!("SELECT count(*)::UBIGINT AS total FROM tasks WHERE {filtered}")),
        export_sql: Some(format!(
            "SELECT {} FROM tasks WHERE {filtered} {}",
            csv_safe(&COLUMNS, &["model", "error"]),
            order.replace("sort_key", key)
        )),
    })
}

/// `tasks.stats`: finished tasks over a range by family, model, hardware, worker or error.
/// By family, model or hardware with no other filter than those, the minute roll-ups
/// answer for the part of the range they cover (raw rows only within their retention).
pub fn stats(params: &Params, done: &std::collections::BTreeMap<String, i64>, now: i64) -> Result<Relation, Refused> {
    let (start, end) = params.range(now)?;
    let by =
        one_of("by", params.by.as_deref().unwrap_or("family"), &["family", "model", "hardware", "worker_id", "error"])?;
    let conditions = conditions(params)?;
    let rolled = matches!(by.as_str(), "family" | "model" | "hardware")
        && params.status.is_none()
        && params.task_id.is_none()
        && params.worker_id.is_none()
        && params.search.is_none();
    let minute_done = match rolled {
        true => done.get("tasks.minute").map(|us| us / 1000).unwrap_or(start).clamp(start, end),
        false => start,
    };
    let (start_ts, end_ts, done_ts) = (timestamp(start), timestamp(end), timestamp(minute_done));
    let filter = conditions.iter().map(|condition| format!(" AND {condition}")).collect::<String>();
    let key = match by.as_str() {
        // Errors of failed tasks only.
        "error" => "CASE WHEN NOT succeeded THEN coalesce(error, 'no error given') END",
        other => other,
    };
    let raw = format!(
        "SELECT {key} AS key, succeeded::INT AS completed, (NOT succeeded)::INT AS failed, queue_ms AS queue_ms_sum,
             CASE WHEN succeeded THEN processing_ms END AS processing_ms_sum, CASE WHEN succeeded THEN processing_ms END AS processing_ms_max
         FROM tasks WHERE finished_at >= {done_ts} AND finished_at < {end_ts}{filter}"
    );
    let rollups = format!(
        "SELECT {by} AS key, completed, failed, queue_ms_sum, processing_ms_sum, processing_ms_max
         FROM task_rollups WHERE resolution = 'minute' AND bucket >= {start_ts} AND bucket < {done_ts} AND bucket < {end_ts}{filter}"
    );
    let rows = if rolled { format!("{rollups} UNION ALL {raw}") } else { raw };
    let failed_only = if by == "error" { " WHERE key IS NOT NULL" } else { "" };
    let sql = format!(
        "SELECT coalesce(key, 'unknown') AS key, sum(completed)::UBIGINT AS completed, sum(failed)::UBIGINT AS failed,
             sum(completed) / greatest(sum(completed) + sum(failed), 1) AS success_rate,
             sum(queue_ms_sum) / greatest(sum(completed) + sum(failed), 1) AS mean_queue_ms,
             sum(processing_ms_sum) / greatest(sum(completed), 1) AS mean_processing_ms,
             max(processing_ms_max) AS max_processing_ms,
             sum(completed) / ({} / 60000.0) AS throughput_per_min
         FROM ({rows}){failed_only} GROUP BY ALL ORDER BY sum(completed) + sum(failed) DESC, key",
        end - start
    );
    Ok(Relation {
        sql,
        resolution: "minute",
        interval_ms: 0,
        points: 0,
        cursor: None,
        total_sql: None,
        export_sql: None,
    })
}

/// `tasks.distribution`: how long completed tasks ran over a range: a count per bucket of
/// [`BUCKETS_MS`] (`le_ms`, null for the last), and, in `summary_sql`, the count, mean and
/// percentiles.
pub struct Distribution {
    pub buckets_sql: String,
    pub summary_sql: String,
}

pub fn distribution(params: &Params, now: i64) -> Result<Distribution, Refused> {
    let (start, end) = params.range(now)?;
    let mut conditions = range_conditions(params, start, end)?;
    conditions.push("succeeded".to_owned());
    let filtered = conditions.join(" AND ");
    let cases: String =
        BUCKETS_MS.iter().map(|bound| format!(" WHEN processing_ms <= {bound} THEN {bound}::UBIGINT")).collect();
    Ok(Distribution {
        buckets_sql: format!(
            "SELECT CASE{cases} END AS le_ms, count(*)::UBIGINT AS count FROM tasks WHERE {filtered}
             GROUP BY ALL ORDER BY le_ms NULLS LAST"
        ),
        summary_sql: format!(
            "SELECT count(*)::UBIGINT AS count, avg(processing_ms) AS mean_ms, quantile_cont(processing_ms, 0.5) AS p50_ms,
                 quantile_cont(processing_ms, 0.95) AS p95_ms, quantile_cont(processing_ms, 0.99) AS p99_ms
             FROM tasks WHERE {filtered}"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn archive() -> duckdb::Connection {
        let mut connection = duckdb::Connection::open_in_memory().expect("open");
        crate::schema::migrate(&mut connection).expect("schema");
        connection
            .execute_batch(
                "INSERT INTO tasks VALUES
                 (make_timestamp(1000000), 't-1', 'bert-base', 'text', 'cpu', 'cpu-1', 5, true, 10, 800, 810, NULL, NULL, 0),
                 (make_timestamp(2000000), 't-2', 'bert-base', 'text', 'cuda', 'gpu-1', 5, true, 20, 3000, 3020, NULL, 't-1', 0),
                 (make_timestamp(3000000), 't-3', 'vit-large', 'vision', 'cuda', 'gpu-1', 7, false, 30, 90, 120, 'CUDA out of memory', NULL, 1),
                 (make_timestamp(4000000), 't-4', 'vit-large', 'vision', 'cuda', 'gpu-1', 7, false, 30, 95, 125, 'CUDA out of memory', 't-2,t-3', 2),
                 (make_timestamp(5000000), 't-5', 'it''s odd', 'text', 'cpu', 'cpu-1', 1, true, 5, 70000, 70005, NULL, NULL, 0)",
            )
            .expect("rows");
        connection
    }

    fn rows(connection: &mut duckdb::Connection, sql: &str) -> Vec<serde_json::Map<String, Value>> {
        crate::query::rows_as_json(connection, sql).expect("runs")
    }

    fn params(value: Value) -> Params {
        serde_json::from_value(value).expect("params")
    }

    #[test]
    fn the_list_pages_by_its_sort_and_filters() {
        let mut connection = archive();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut asked = json!({ "sort": "processing_ms", "order": "asc", "limit": 2 });
            if let Some(cursor) = &cursor {
                asked["cursor"] = json!(cursor);
            }
            let relation = list(&params(asked.clone()), 0).expect("sql");
            let page =
                crate::query::page("tasks.list", rows(&mut connection, &relation.sql), &params(asked), &relation)
                    .expect("page");
            seen.extend(page["items"].as_array().expect("items").iter().map(|row| row["task_id"].clone()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ["t-3", "t-4", "t-1", "t-2", "t-5"].map(Value::from).to_vec());

        let failed = list(&params(json!({ "status": "failed", "worker_id": "gpu-1" })), 0).expect("sql");
        let failed_rows = rows(&mut connection, &failed.sql);
        assert_eq!(failed_rows.len(), 2);
        assert_eq!(failed_rows[0]["task_id"], "t-4", "newest first");
        assert_eq!(failed_rows[0]["depends_on"], json!(["t-2", "t-3"]));
        assert_eq!(failed_rows[0]["attempts"], 2);
        let total = rows(&mut connection, failed.total_sql.as_deref().expect("total"));
        assert_eq!(total[0]["total"], 2);
        let odd = list(&params(json!({ "model": "it's odd" })), 0).expect("a quote is quoted");
        assert_eq!(rows(&mut connection, &odd.sql).len(), 1);
        assert!(list(&params(json!({ "sort": "nope" })), 0).is_err());
        assert!(list(&params(json!({ "cursor": "[1, \"x' OR 1=1\"]" })), 0).is_err(), "ids in cursors are tokens");
    }

    #[test]
    fn exports_disarm_text_a_spreadsheet_would_run() {
        let mut connection = archive();
        let sql = format!(
            "SELECT {} FROM (VALUES ('=HYPERLINK(1)', 1), ('@SUM(A1)', 2), ('bert-base', 3)) AS t(model, n) ORDER BY n",
            csv_safe(&["model", "n"], &["model"])
        );
        let models: Vec<Value> = rows(&mut connection, &sql).into_iter().map(|row| row["model"].clone()).collect();
        assert_eq!(models, vec![json!("'=HYPERLINK(1)"), json!("'@SUM(A1)"), json!("bert-base")]);
    }

    #[test]
    fn stats_by_error_and_worker_read_the_raw_rows() {
        let mut connection = archive();
        let range = json!({ "start_time": 0, "end_time": 10_000 });
        let by_error =
            stats(&params(json!({ "by": "error", "start_time": 0, "end_time": 10_000 })), &Default::default(), 0)
                .expect("sql");
        let errors = rows(&mut connection, &by_error.sql);
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0]["key"].clone(), errors[0]["failed"].clone()), (json!("CUDA out of memory"), json!(2)));
        let mut by_worker = range.clone();
        by_worker["by"] = json!("worker_id");
        let workers = rows(&mut connection, &stats(&params(by_worker), &Default::default(), 0).expect("sql").sql);
        assert_eq!(workers[0]["key"], "gpu-1");
        assert_eq!((workers[0]["completed"].clone(), workers[0]["failed"].clone()), (json!(1), json!(2)));
    }

    #[test]
    fn the_distribution_counts_completed_runs_per_bucket() {
        let mut connection = archive();
        let queries = distribution(&params(json!({ "start_time": 0, "end_time": 10_000 })), 0).expect("sql");
        let buckets: Vec<(Value, Value)> = rows(&mut connection, &queries.buckets_sql)
            .into_iter()
            .map(|row| (row["le_ms"].clone(), row["count"].clone()))
            .collect();
        assert_eq!(buckets, vec![(json!(1000), json!(1)), (json!(5000), json!(1)), (json!(120000), json!(1))]);
        let summary = rows(&mut connection, &queries.summary_sql);
        assert_eq!(summary[0]["count"], 3, "failed runs are not in the spread");
    }
}
