// The fault-tolerance page's views over the chosen time range, from the archive: failure
// patterns (GET /api/metrics/tasks/stats?by=error|hardware|model: failures by error text,
// hardware kind or model) and the recovery actions taken, newest first and paged
// (GET /api/events?type=recovery_action&order=desc).

import { apiUrl, getJson } from '../api.js';
import { h, setText } from '../dom.js';
import * as format from '../format.js';
import { barCell, dataTable, pager, sortedTable } from '../table.js';
import { readQuery, writeQuery } from '../url-state.js';
import { stateBadge } from './state-badge.js';

const PATTERNS = [
  { value: 'error', label: 'error text', keyLabel: 'Error', keyTitle: 'The error text the tasks failed with, as sent' },
  { value: 'hardware', label: 'hardware', keyLabel: 'Hardware', keyTitle: 'The kind of accelerator the tasks ran on' },
  { value: 'model', label: 'model', keyLabel: 'Model', keyTitle: 'The model the tasks benchmark' },
];

const unavailable = (err, what) =>
  err.status === 503 || err.status === 404
    ? `${what} is not available: ${err.reason ?? err.message}.`
    : `${what} could not be read: ${err.message}`;

/** Failures over the range by error, hardware or model (`?pattern=`, in the URL). */
export function failurePatterns() {
  let pattern = PATTERNS.find((option) => option.value === readQuery().pattern) ?? PATTERNS[0];
  let range = null;
  let request = null;
  let worst = 1;
  const select = h('select', { id: 'ft-pattern', 'aria-label': 'Group failures by' }, PATTERNS.map((option) => h('option', { value: option.value }, option.label)));
  select.value = pattern.value;
  const keyHeader = { key: 'key', label: 'Failed with', title: 'What the failures have in common', value: (row) => (pattern.value === 'error' ? h('span', { class: 'failure-error' }, String(row.key)) : String(row.key)) };
  const table = sortedTable({
    id: 'ft-range-errors',
    caption: null,
    urlKey: 'range_sort',
    sort: { key: 'failed', order: 'desc' },
    csv: {
      filename: 'failures-over-range',
      href: () => apiUrl('/api/metrics/tasks/stats', { by: pattern.value, start_time: Math.floor(range?.start ?? Date.now() - 900_000), end_time: Math.ceil(range?.end ?? Date.now()), order: 'desc', format: 'csv' }),
    },
    empty: 'No task failed in this range.',
    rowKey: (row) => row.key,
    columns: [
      keyHeader,
      {
        key: 'failed',
        label: 'Failed',
        title: 'Tasks that failed in the range; the bar is to scale with the most',
        num: true,
        value: (row) => barCell(format.count(row.failed), row.failed / worst, { kind: 'bad' }),
      },
      { key: 'completed', label: 'Completed', title: 'Tasks that completed in the range (none for an error text)', num: true, value: (row) => format.count(row.completed) },
      {
        key: 'failure_rate',
        label: 'Failure rate',
        title: 'failed / (completed + failed) in the range',
        num: true,
        sortValue: (row) => (row.success_rate === null || row.success_rate === undefined ? null : 1 - row.success_rate),
        value: (row) => format.ratio(row.success_rate === null || row.success_rate === undefined ? null : 1 - row.success_rate),
        csv: (row) => (row.success_rate === null || row.success_rate === undefined ? null : 1 - row.success_rate),
      },
      { key: 'mean_queue_ms', label: 'Mean wait', title: 'Mean time the tasks waited to start', num: true, value: (row) => format.duration(row.mean_queue_ms) },
    ],
  });
  const caption = h('p', { class: 'muted small', id: 'ft-range-caption' });
  const error = h('p', { class: 'error small', role: 'alert' });
  const element = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'ft-range-errors-title' },
    h(
      'div',
      { class: 'panel-head' },
      h('h2', { id: 'ft-range-errors-title', title: 'Finished tasks in the archive over the range the trends show' }, 'Failure patterns over the range'),
      h('label', { class: 'filters', title: 'What to group the range\'s failures by' }, 'By', select),
    ),
    caption,
    error,
    table.element,
  );
  select.addEventListener('change', () => {
    pattern = PATTERNS.find((option) => option.value === select.value) ?? PATTERNS[0];
    writeQuery({ pattern: pattern.value === 'error' ? null : pattern.value });
    load(range);
  });

  async function load(next) {
    range = next;
    keyHeader.label = pattern.keyLabel;
    const header = element.querySelector('#ft-range-errors thead th');
    if (header) {
      header.title = pattern.keyTitle;
      const button = header.querySelector('button');
      if (button) button.textContent = pattern.keyLabel;
    }
    setText(caption, `${format.dateTime(range.start)} → ${range.follows ? 'now' : format.dateTime(range.end)}, by ${pattern.label}`);
    request?.abort();
    const controller = new AbortController();
    request = controller;
    try {
      const answer = await getJson(
        '/api/metrics/tasks/stats',
        { by: pattern.value, start_time: Math.floor(range.start), end_time: Math.ceil(range.end) },
        { signal: controller.signal },
      );
      if (request !== controller) return;
      setText(error, '');
      const rows = (answer.items ?? []).filter((row) => (row.failed ?? 0) > 0);
      worst = Math.max(1, ...rows.map((row) => row.failed ?? 0));
      table.update(rows);
    } catch (err) {
      if (err.name === 'AbortError' || request !== controller) return;
      setText(error, unavailable(err, 'The failure history'));
      table.update([]);
    }
  }

  return { element, load, destroy: () => request?.abort() };
}

const PAGE = 25;

/** The recovery actions taken over the range, newest first. */
export function recoveryActions() {
  let range = null;
  let request = null;
  const table = dataTable({
    id: 'ft-recoveries',
    csv: {
      filename: 'recovery-actions-over-range',
      href: () => apiUrl('/api/events', { type: 'recovery_action', start_time: Math.floor(range?.start ?? Date.now() - 900_000), end_time: Math.ceil(range?.end ?? Date.now()), order: 'desc', format: 'csv' }),
    },
    empty: 'No recovery action in this range.',
    rowKey: (row) => String(row.seq),
    columns: [
      { key: 'time', label: 'When', title: 'When it was taken', value: (row) => h('span', { title: new Date(row.time).toISOString() }, `${format.dateTime(row.time)}:${String(new Date(row.time).getSeconds()).padStart(2, '0')}`) },
      { key: 'component', label: 'By', title: 'The component that took it', value: (row) => String(row.detail?.component ?? '–') },
      { key: 'action', label: 'Action', title: 'What it did', value: (row) => String(row.detail?.action ?? '–') },
      {
        key: 'target',
        label: 'Target',
        title: 'What it acted on (a worker, for most)',
        value: (row) => (row.detail?.target ? h('span', { class: 'mono' }, String(row.detail.target)) : '–'),
      },
      {
        key: 'succeeded',
        label: 'Outcome',
        title: 'Whether it worked',
        value: (row) => (row.detail?.succeeded ? stateBadge('worked', 'The action worked') : stateBadge('failed', 'The action did not work')),
        csv: (row) => (row.detail?.succeeded ? 'worked' : 'failed'),
      },
    ],
  });
  const pages = pager({ onPage: (cursor) => show(cursor) });
  const caption = h('p', { class: 'muted small', id: 'ft-recoveries-caption' });
  const error = h('p', { class: 'error small', role: 'alert' });
  const element = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'ft-recoveries-title' },
    h('h2', { id: 'ft-recoveries-title', title: 'The recovery_action events in the archive over the range the trends show, newest first' }, 'Recent recovery actions'),
    caption,
    error,
    table.element,
    pages.element,
  );

  async function show(cursor) {
    request?.abort();
    const controller = new AbortController();
    request = controller;
    try {
      const page = await getJson(
        '/api/events',
        { type: 'recovery_action', start_time: Math.floor(range.start), end_time: Math.ceil(range.end), order: 'desc', limit: PAGE, cursor },
        { signal: controller.signal },
      );
      if (request !== controller) return;
      setText(error, '');
      table.update(page.items);
      pages.show({ count: page.items.length, total: page.total ?? 0, limit: PAGE, nextCursor: page.next_cursor });
    } catch (err) {
      if (err.name === 'AbortError' || request !== controller) return;
      setText(error, unavailable(err, 'The recovery history'));
      table.update([]);
      pages.show({ count: 0, total: 0, limit: PAGE, nextCursor: null });
    }
  }

  return {
    element,
    /** Shows the newest page of `next` (the range changed, or moved on while on the first page). */
    load(next, { keepPage = false } = {}) {
      range = next;
      setText(caption, `${format.dateTime(range.start)} → ${range.follows ? 'now' : format.dateTime(range.end)}, newest first`);
      if (keepPage && pages.cursor()) return;
      pages.reset();
      show(null);
    },
    destroy: () => request?.abort(),
  };
}
