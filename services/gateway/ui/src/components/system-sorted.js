// A data table sorted here (the rows are few: services, hardware kinds, models, errors),
// its sort kept in the URL under its own key (`<key>=<column>.<asc|desc>`), so a shared
// link shows the same order. Also small pieces the System and Fault tolerance tables
// share: a bar beside a figure, and a badge.

import { h } from '../dom.js';
import { dataTable } from '../table.js';
import { readQuery, writeQuery } from '../url-state.js';

function compare(left, right) {
  const missing = (value) => value === null || value === undefined || Number.isNaN(value);
  if (missing(left) || missing(right)) return missing(left) ? (missing(right) ? 0 : 1) : -1;
  if (typeof left === 'string' || typeof right === 'string') return String(left).localeCompare(String(right));
  return left - right;
}

/**
 * `columns` as dataTable takes them, each with an optional `sortValue(row)` (default
 * `row[key]`); `urlKey` names the sort in the URL; `sort` is the default `{ key, order }`.
 * `update(rows, note)` shows rows in the chosen order.
 */
export function sortedTable({ id, caption, columns, urlKey, sort: fallback, csv, empty, rowKey }) {
  const parse = (text) => {
    const [key, order] = String(text ?? '').split('.');
    const column = columns.find((candidate) => candidate.key === key);
    return column && column.sortable !== false && (order === 'asc' || order === 'desc') ? { key, order } : null;
  };
  let sort = parse(readQuery()[urlKey]) ?? fallback;
  let rows = [];
  let note = '';
  const table = dataTable({
    id,
    caption,
    columns,
    sort,
    onSort: (key, order) => {
      sort = { key, order };
      const isDefault = key === fallback.key && order === fallback.order;
      writeQuery({ [urlKey]: isDefault ? null : `${key}.${order}` });
      draw();
    },
    csv,
    empty,
    rowKey,
  });

  function draw() {
    const column = columns.find((candidate) => candidate.key === sort.key);
    const value = column?.sortValue ?? ((row) => row[sort.key]);
    const direction = sort.order === 'asc' ? 1 : -1;
    const keyOf = rowKey ?? (() => '');
    const sorted = rows
      .map((row) => ({ row, value: value(row) }))
      .sort((a, b) => {
        const order = compare(a.value, b.value);
        // Missing values last whichever the direction.
        const missing = a.value === null || a.value === undefined || b.value === null || b.value === undefined;
        return (missing ? order : direction * order) || String(keyOf(a.row)).localeCompare(String(keyOf(b.row)));
      })
      .map((entry) => entry.row);
    table.update(sorted, note);
  }

  return {
    element: table.element,
    update(next, noteText = '') {
      rows = Array.isArray(next) ? next : [];
      note = noteText;
      draw();
    },
    rows: () => rows,
  };
}

/**
 * A figure with a bar under it: `share` 0..1 of the bar's full width; `kind` one of
 * `bad`, `warn`, `ok` (app.css .bar-*), or none for the series colour.
 */
export function barCell(text, share, { kind = null, title = null } = {}) {
  const width = Number.isFinite(share) ? Math.max(0, Math.min(1, share)) * 100 : 0;
  return h(
    'span',
    { class: 'bar-cell', title },
    h('span', { class: 'bar-text' }, text),
    h('span', { class: `bar${kind ? ` bar-${kind}` : ''}`, style: `width:${width.toFixed(1)}%`, 'aria-hidden': 'true' }),
  );
}

/** A small coloured label: `state` picks the colour (healthy, degraded, down, up, stale, ...). */
export function stateBadge(state, title) {
  return h('span', { class: `badge state-badge state-${String(state).replace(/[^a-z_-]/gi, '')}`, title }, String(state));
}
