// Tables of task groups (`GroupStats` rows by hardware kind, model family or model, and
// rows built from them) sorted here by any column, the sort kept in the URL under a name of
// the page's choosing (`?<param>=key` ascending, `?<param>=-key` descending), with a CSV of
// the rows shown. Used by the performance and the task-types pages.

import { h } from '../dom.js';
import * as format from '../format.js';
import { dataTable } from '../table.js';
import { readQuery, writeQuery } from '../url-state.js';

/** `-key` → { key, order: 'desc' }, `key` → asc; null for a key not among `columns`. */
function parseSort(text, columns) {
  if (typeof text !== 'string' || text === '') return null;
  const desc = text.startsWith('-');
  const key = desc ? text.slice(1) : text;
  return columns.some((column) => column.key === key && column.sortable !== false) ? { key, order: desc ? 'desc' : 'asc' } : null;
}

/**
 * A dataTable whose rows are sorted here. `columns` as dataTable's, each with an optional
 * `sort(row)` giving the value to sort by (default `row[key]`; also the CSV value of a
 * column without `csv`). `param` names the sort in the URL; `fallback` is the sort without
 * one. `update(rows)` draws them.
 */
export function sortedTable({ id, caption, columns, param, fallback, csv, empty, rowKey = (row) => row.key }) {
  const valueOf = (column) => column.sort ?? ((row) => row[column.key]);
  const prepared = columns.map((column) => ({ ...column, csv: column.csv === undefined ? valueOf(column) : column.csv }));
  let sort = parseSort(readQuery()[param], columns) ?? fallback;
  let rows = [];
  let lastNote = '';
  const table = dataTable({
    id,
    caption,
    columns: prepared,
    sort,
    csv,
    empty,
    rowKey,
    onSort: (key, order) => {
      sort = { key, order };
      const isFallback = key === fallback.key && order === fallback.order;
      writeQuery({ [param]: isFallback ? null : `${order === 'desc' ? '-' : ''}${key}` });
      draw();
    },
  });

  function draw() {
    const column = prepared.find((candidate) => candidate.key === sort.key) ?? prepared[0];
    const pick = valueOf(column);
    const direction = sort.order === 'asc' ? 1 : -1;
    const sorted = [...rows].sort((a, b) => {
      const left = pick(a);
      const right = pick(b);
      let order;
      if (typeof left === 'string' || typeof right === 'string') order = String(left ?? '').localeCompare(String(right ?? ''));
      else order = (left ?? -Infinity) - (right ?? -Infinity) || 0;
      return direction * order || String(rowKey(a)).localeCompare(String(rowKey(b)));
    });
    table.update(sorted, lastNote);
  }

  return {
    element: table.element,
    update(next, note = '') {
      rows = Array.isArray(next) ? next : [];
      lastNote = note;
      draw();
    },
    rows: () => table.rows(),
  };
}

/** A bar of `value` out of `widest` under a figure, as the shared `.bar` draws it. */
export function withBar(text, value, widest, tone = '') {
  const share = widest > 0 && Number.isFinite(value) ? Math.max(0, Math.min(1, value / widest)) : 0;
  return h(
    'span',
    { class: 'figure-bar' },
    text,
    h('span', { class: `bar ${tone}`.trim(), style: `width:${(share * 100).toFixed(1)}%`, 'aria-hidden': 'true' }),
  );
}

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
export function groupColumns({ widest = () => 0, include = null } = {}) {
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
      value: (row) => withBar(format.number(row.throughput_per_min), row.throughput_per_min, widest()),
    },
    {
      key: 'success_rate',
      label: 'Success',
      title: 'completed / (completed + failed); 100% before any',
      num: true,
      value: (row) => withBar(format.ratio(row.success_rate), row.success_rate, 1, successTone(row.success_rate)),
    },
    { key: 'run_p50', label: 'Run p50', title: 'Median run time of the last 200 completions', num: true, sort: (row) => row.duration_ms?.p50, value: (row) => format.duration(row.duration_ms?.p50) },
    { key: 'run_p95', label: 'Run p95', title: '95th percentile run time of the last 200 completions', num: true, sort: (row) => row.duration_ms?.p95, value: (row) => format.duration(row.duration_ms?.p95) },
    { key: 'queue_mean', label: 'Queue mean', title: 'Mean time the last 200 starts waited (start − last queued)', num: true, sort: (row) => row.queue_time_ms?.mean, value: (row) => format.duration(row.queue_time_ms?.mean) },
    { key: 'queue_p95', label: 'Queue p95', title: '95th percentile wait of the last 200 starts', num: true, sort: (row) => row.queue_time_ms?.p95, value: (row) => format.duration(row.queue_time_ms?.p95) },
    {
      key: 'best_fit_ratio',
      label: 'Best fit',
      title: 'Share of the last 200 assignments that went to a best-fit worker: the optimal worker match',
      num: true,
      value: (row) => withBar(format.ratio(row.best_fit_ratio), row.best_fit_ratio, 1, successTone(row.best_fit_ratio)),
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
