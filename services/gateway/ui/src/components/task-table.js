// Task distribution: for each model family or model, the queue and what runs now (as a bar
// and as numbers), the totals, throughput and success rate, from GET /api/metrics/tasks.

import { h, replace } from '../dom.js';
import * as format from '../format.js';

const COLUMNS = [
  { key: 'queued', label: 'Queue', title: 'Waiting to start now (queued or assigned, not running)', show: format.count },
  { key: 'running', label: 'Run', title: 'Running now', show: format.count },
  { key: 'completed', label: 'Done', title: 'Completed since the stream began', show: format.count },
  { key: 'failed', label: 'Fail', title: 'Failed since the stream began (a retried task counts once)', show: format.count },
  { key: 'throughput_per_min', label: '/min', title: 'Completions in the last 60 s', show: format.number },
  { key: 'success_rate', label: 'Success', title: 'completed / (completed + failed)', show: format.ratio },
];

/** A table of `GroupStats` rows; `caption` names the grouping ("Model family"). */
export function taskTable({ id, caption, keyLabel }) {
  const body = h('tbody', {});
  const element = h(
    'table',
    { class: 'task-table', id },
    h('caption', {}, caption),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col', title: `${keyLabel}; the bar shows queued (amber) and running (green) tasks` }, keyLabel),
        COLUMNS.map((column) => h('th', { scope: 'col', class: 'num', title: column.title }, column.label)),
      ),
    ),
    body,
  );

  function update(groups) {
    const rows = Array.isArray(groups) ? groups : [];
    if (rows.length === 0) {
      replace(body, h('tr', {}, h('td', { colspan: COLUMNS.length + 1, class: 'muted' }, 'no tasks yet')));
      return;
    }
    const widest = Math.max(1, ...rows.map((row) => (row.queued ?? 0) + (row.running ?? 0)));
    replace(
      body,
      rows.map((row) => {
        const queuedPct = ((row.queued ?? 0) / widest) * 100;
        const runningPct = ((row.running ?? 0) / widest) * 100;
        return h(
          'tr',
          {},
          h(
            'th',
            { scope: 'row', title: `${row.key}: ${format.count(row.queued)} queued, ${format.count(row.running)} running` },
            h('span', { class: 'group-name' }, row.key),
            h(
              'span',
              { class: 'queue-bar', 'aria-hidden': 'true' },
              h('span', { class: 'queue-running', style: `width:${runningPct.toFixed(1)}%` }),
              h('span', { class: 'queue-queued', style: `width:${queuedPct.toFixed(1)}%` }),
            ),
          ),
          COLUMNS.map((column) =>
            h('td', { class: 'num', title: `${row.key}, ${column.title.toLowerCase()}` }, column.show(row[column.key])),
          ),
        );
      }),
    );
  }

  update([]);
  return { element, update };
}
