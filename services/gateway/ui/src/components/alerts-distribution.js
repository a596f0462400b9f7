// Where the alerts of a range came from: a table of counts by rule or by source (a worker,
// a task, a model, a hardware kind, a service, a component, the fleet, or the program that
// posted it), each with a bar against the largest, sortable (the order in the URL), with a
// CSV of its rows. From the `by_rule` / `by_source` of GET /api/alerts/stats.

import { h } from '../dom.js';
import { onChange } from './alerts-common.js';
import * as format from '../format.js';
import { dataTable } from '../table.js';
import { readQuery, writeQuery } from '../url-state.js';

function parseSort(text) {
  const [key, order] = String(text ?? '').split('-');
  if (!['key', 'count'].includes(key) || !['asc', 'desc'].includes(order)) return null;
  return { key, order };
}

/**
 * `urlKey`: the query key of its order (`rule_sort`); `pick(key)`, when given, makes each key
 * a button (the rule's history).
 */
export function distributionTable({ id, caption, keyLabel, keyTitle, urlKey, pick = null, pickTitle = '' }) {
  let sort = parseSort(readQuery()[urlKey]) ?? { key: 'count', order: 'desc' };
  let groups = [];
  let widest = 1;
  let total = 0;
  const table = dataTable({
    id,
    caption,
    columns: [
      {
        key: 'key',
        label: keyLabel,
        title: `${keyTitle}; the bar compares it with the largest`,
        value: (row) =>
          h(
            'span',
            { class: 'dist-key', title: `${row.key}: ${format.count(row.count)} fired (${format.ratio(row.share)} of the range's alerts)` },
            pick
              ? h('button', { type: 'button', class: 'link-button', title: `${pickTitle} ${row.key}`, onclick: () => pick(row.key) }, row.key)
              : h('span', {}, row.key),
            h('span', { class: 'bar', 'aria-hidden': 'true', style: `width:${((row.count / widest) * 100).toFixed(1)}%` }),
          ),
      },
      { key: 'count', label: 'Fired', num: true, title: 'Alerts that started firing in the range', value: (row) => format.count(row.count) },
      { key: 'share', label: 'Share', num: true, title: 'Of all the alerts that fired in the range', value: (row) => format.ratio(row.share) },
    ],
    sort,
    onSort: (key, order) => {
      sort = { key: key === 'share' ? 'count' : key, order };
      writeQuery({ [urlKey]: `${sort.key}-${order}` });
      draw();
    },
    csv: { filename: id },
    empty: 'No alert fired in this range.',
    rowKey: (row) => row.key,
  });

  let problem = '';
  const redraw = onChange();

  function draw() {
    const direction = sort.order === 'asc' ? 1 : -1;
    const sorted = [...groups].sort((a, b) => {
      const order = sort.key === 'key' ? a.key.localeCompare(b.key) : a.count - b.count;
      return direction * order || a.key.localeCompare(b.key);
    });
    const note = problem || (groups.length ? `${format.count(total)} in all` : '');
    redraw([sorted, note], () => table.update(sorted, note));
  }

  /** `rows`: `[{key, count}]`; `error`: why there are none (the statistics could not be read). */
  function update(rows, error = '') {
    problem = error;
    const list = Array.isArray(rows) ? rows : [];
    total = list.reduce((sum, row) => sum + (Number(row.count) || 0), 0);
    groups = list.map((row) => ({ key: String(row.key ?? 'unknown'), count: Number(row.count) || 0, share: total ? (Number(row.count) || 0) / total : 0 }));
    widest = Math.max(1, ...groups.map((row) => row.count));
    draw();
  }

  return { element: h('section', { class: 'panel' }, table.element), update, rows: table.rows };
}
