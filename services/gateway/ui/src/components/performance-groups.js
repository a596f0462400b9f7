// The columns of task-group tables (`GroupStats` rows by hardware kind, model family or
// model), for the shared sortedTable, and small helpers the performance and task-types
// pages share.

import { h } from '../dom.js';
import * as format from '../format.js';
import { barCell } from '../table.js';

/** The tone of a success rate (0 to 1): ok at 95% or more, warn from 80%, else bad. */
export function successTone(rate) {
  if (!Number.isFinite(rate)) return '';
  return rate >= 0.95 ? 'bar-ok' : rate >= 0.8 ? 'bar-warn' : 'bar-bad';
}

/**
 * The figures of a `GroupStats` row as columns: counts, throughput, success, run and queue
 * times, the best-fit share. `widest()` is the greatest throughput among the rows shown,
 * for the throughput bars; `include` picks columns by key, in its order.
 */
export function groupColumns({ widest = () => 1, include = null } = {}) {
  const all = [
    { key: 'running', label: 'Running', title: 'Tasks running now', num: true, value: (row) => format.count(row.running) },
    { key: 'queued', label: 'Queued', title: 'Tasks waiting to start now (queued or assigned)', num: true, value: (row) => format.count(row.queued) },
    { key: 'completed', label: 'Done', title: 'Completed since the stream began', num: true, value: (row) => format.count(row.completed) },
    { key: 'failed', label: 'Failed', title: 'Failed since the stream began (a retried task counts once per failure)', num: true, value: (row) => format.count(row.failed) },
    {
      key: 'throughput_per_min',
      label: 'Tasks/min',
      title: 'Completions in the last 60 s',
      num: true,
      value: (row) => barCell(format.number(row.throughput_per_min), row.throughput_per_min / widest()),
    },
    {
      key: 'success_rate',
      label: 'Success',
      title: 'completed / (completed + failed); 100% before any',
      num: true,
      value: (row) => barCell(format.ratio(row.success_rate), row.success_rate, { kind: successTone(row.success_rate) }),
    },
    { key: 'run_p50', label: 'Run p50', title: 'Median run time of the last 200 completions', num: true, sortValue: (row) => row.duration_ms?.p50, value: (row) => format.duration(row.duration_ms?.p50) },
    { key: 'run_p95', label: 'Run p95', title: '95th percentile run time of the last 200 completions', num: true, sortValue: (row) => row.duration_ms?.p95, value: (row) => format.duration(row.duration_ms?.p95) },
    { key: 'queue_mean', label: 'Queue mean', title: 'Mean time the last 200 starts waited (start − last queued)', num: true, sortValue: (row) => row.queue_time_ms?.mean, value: (row) => format.duration(row.queue_time_ms?.mean) },
    { key: 'queue_p95', label: 'Queue p95', title: '95th percentile wait of the last 200 starts', num: true, sortValue: (row) => row.queue_time_ms?.p95, value: (row) => format.duration(row.queue_time_ms?.p95) },
    {
      key: 'best_fit_ratio',
      label: 'Best fit',
      title: 'Share of the last 200 assignments that went to a best-fit worker: the optimal worker match',
      num: true,
      value: (row) => barCell(format.ratio(row.best_fit_ratio), row.best_fit_ratio, { kind: successTone(row.best_fit_ratio) }),
    },
  ];
  return include ? include.map((key) => all.find((column) => column.key === key)).filter(Boolean) : all;
}

/** The greatest `throughput_per_min` of `rows` (1 at least, so bars have a scale). */
export function widestThroughput(rows) {
  return Math.max(1, ...(Array.isArray(rows) ? rows : []).map((row) => row.throughput_per_min ?? 0));
}

/** A family's page. */
export function familyHref(family) {
  return `/task-types/${encodeURIComponent(family)}`;
}

/** What a failed request means for these pages, in words. */
export function problemText(err, what = 'task metrics') {
  if (err?.status === 503) return `No ${what} yet: is the processor running?`;
  if (err?.status === 0) return 'The gateway does not answer; the figures shown may be old.';
  return err?.message ?? String(err);
}
