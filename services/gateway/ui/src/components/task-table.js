// Task distribution: for each model family, model or hardware kind, the queue and what runs
// now (as a bar and as numbers), the totals, throughput and success rate, from
// GET /api/metrics/tasks. Sorted by any column here; CSV of the rows shown.

import { h } from '../dom.js';
import * as format from '../format.js';
import { dataTable } from '../table.js';

const COLUMNS = [
  { key: 'queued', label: 'Queue', title: 'Waiting to start now (queued or assigned, not running)', show: format.count },
  { key: 'running', label: 'Run', title: 'Running now', show: format.count },
  { key: 'completed', label: 'Done', title: 'Completed since the stream began', show: format.count },
  { key: 'failed', label: 'Fail', title: 'Failed since the stream began (a retried task counts once per failure)', show: format.count },
  { key: 'throughput_per_min', label: '/min', title: 'Completions in the last 60 s', show: format.number },
  { key: 'success_rate', label: 'Success', title: 'completed / (completed + failed)', show: format.ratio },
];

/**
 * A table of `GroupStats` rows; `keyLabel` names the grouping ("Family"); `link(key)`, if
 * given, makes each key a link.
 */
export function taskTable({ id, caption, keyLabel, link = null }) {
  let sort = { key: 'key', order: 'asc' };
  let groups = [];
  let widest = 1;
  const keyColumn = {
    key: 'key',
    label: keyLabel,
    title: `${keyLabel}; the bar shows running (green) and queued (amber) tasks`,
    value: (row) => {
      const running = ((row.running ?? 0) / widest) * 100;
      const queued = ((row.queued ?? 0) / widest) * 100;
      return h(
        'span',
        { title: `${row.key}: ${format.count(row.queued)} queued, ${format.count(row.running)} running` },
        link ? h('a', { class: 'group-name', href: link(row.key) }, row.key) : h('span', { class: 'group-name' }, row.key),
        h(
          'span',
          { class: 'queue-bar', 'aria-hidden': 'true' },
          h('span', { class: 'queue-running', style: `width:${running.toFixed(1)}%` }),
          h('span', { class: 'queue-queued', style: `width:${queued.toFixed(1)}%` }),
        ),
      );
    },
  };
  const table = dataTable({
    id,
    caption,
    columns: [keyColumn, ...COLUMNS.map((column) => ({ ...column, num: true, value: (row) => column.show(row[column.key]) }))],
    sort,
    onSort: (key, order) => {
      sort = { key, order };
      draw();
    },
    csv: { filename: id },
    empty: 'no tasks yet',
    rowKey: (row) => row.key,
  });

  function draw() {
    const direction = sort.order === 'asc' ? 1 : -1;
    const sorted = [...groups].sort((a, b) => {
      const left = a[sort.key];
      const right = b[sort.key];
      const order = typeof left === 'string' ? left.localeCompare(right) : (left ?? 0) - (right ?? 0);
      return direction * order || a.key.localeCompare(b.key);
    });
    table.update(sorted);
  }

  function update(next) {
    groups = Array.isArray(next) ? next : [];
    widest = Math.max(1, ...groups.map((row) => (row.queued ?? 0) + (row.running ?? 0)));
    draw();
  }

  return { element: table.element, update };
}
