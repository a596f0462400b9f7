// The topology's figures as text, beside the map: the groups (sortable, with a button that
// opens each on the map), where each task family runs, the families' tasks, how the fleet's
// capabilities are spread, and the workers of the opened groups. Each table exports the rows
// it shows as CSV (the server has no CSV of these views).

import { h } from '../dom.js';
import * as format from '../format.js';
import { dataTable } from '../table.js';
import { groupLabel } from './topology-graph.js';

/** Sorts `rows` by `sort.key` (`value(row, key)` reads it), ties by `tie(row)`. */
export function sortRows(rows, sort, value = (row, key) => row[key], tie = () => '') {
  const direction = sort.order === 'asc' ? 1 : -1;
  return [...rows].sort((a, b) => {
    const left = value(a, sort.key);
    const right = value(b, sort.key);
    let order;
    if (typeof left === 'string' || typeof right === 'string') order = String(left ?? '').localeCompare(String(right ?? ''));
    else order = (left ?? -Infinity) - (right ?? -Infinity);
    return direction * order || String(tie(a)).localeCompare(String(tie(b)));
  });
}

const slotUse = (row) => (row.slots > 0 ? row.running / row.slots : null);

function bar(share, level = '') {
  const width = Math.max(0, Math.min(1, share ?? 0)) * 100;
  return h('span', { class: `bar topology-bar ${level}`, style: `width:${width.toFixed(1)}%`, 'aria-hidden': 'true' });
}

function levelOf(share) {
  if (share === null || share === undefined) return '';
  if (share >= 0.85) return 'bar-bad';
  if (share >= 0.6) return 'bar-warn';
  return 'bar-ok';
}

/** The groups: `onToggle(id)` opens or closes one on the map; `onSort(key, order)`. */
export function groupsTable({ sort, onSort, onToggle }) {
  let open = new Set();
  let current = sort;
  const countColumn = (key, label, title) => ({ key, label, title, num: true, value: (row) => format.count(row[key]) });
  const table = dataTable({
    id: 'topology-groups',
    caption: 'Groups',
    sort,
    onSort: (key, order) => {
      current = { key, order };
      onSort(key, order);
    },
    csv: { filename: 'topology-groups' },
    empty: 'No worker has registered yet.',
    rowKey: (row) => row.id,
    columns: [
      { key: 'hardware', label: 'Hardware', title: 'The workers\' hardware kind' },
      {
        key: 'group',
        label: 'Group',
        title: 'The tags that set these workers apart within their kind ("kind tags only": none beyond the tags every worker of the kind has; "(other)": the smaller groups folded together)',
        value: (row) => h('span', { class: 'mono', title: `${row.id}${row.tags.length ? `: tags ${row.tags.join(', ')}` : ''}` }, groupLabel(row.id)),
        csv: (row) => row.id,
      },
      countColumn('workers', 'Workers', 'Workers in the group'),
      countColumn('idle', 'Idle', 'Connected, running nothing'),
      countColumn('busy', 'Busy', 'Running tasks'),
      countColumn('overloaded', 'Over', 'Overloaded: CPU or queue past the limits'),
      countColumn('disconnected', 'Disc.', 'Disconnected: no heartbeat lately'),
      countColumn('slots', 'Slots', 'Task slots of its connected workers'),
      countColumn('running', 'Run', 'Tasks running on its workers now'),
      countColumn('queued', 'Wait', 'Tasks waiting on its workers now'),
      {
        key: 'use',
        label: 'Slot use',
        title: 'Tasks running / slots, over its connected workers',
        num: true,
        value: (row) => h('span', { class: 'topology-share', title: `${format.count(row.running)} of ${format.count(row.slots)} slots running a task` }, format.ratio(slotUse(row)), bar(slotUse(row), levelOf(slotUse(row)))),
        csv: slotUse,
      },
      {
        key: 'cpu_pct',
        label: 'CPU',
        title: 'Mean CPU over its connected workers',
        num: true,
        value: (row) => h('span', { class: 'topology-share', title: `Mean CPU of ${row.id}'s connected workers` }, format.percent(row.cpu_pct), bar(row.cpu_pct / 100, levelOf(row.cpu_pct / 100))),
      },
      {
        key: 'map',
        label: 'Map',
        title: 'Show or hide the group\'s workers on the map',
        sortable: false,
        csv: null,
        value: (row) => {
          const opened = open.has(row.id);
          return h(
            'button',
            {
              type: 'button',
              class: 'button small topology-toggle',
              'data-group': row.id,
              'aria-pressed': opened ? 'true' : 'false',
              title: opened ? `Hide the workers of ${row.id} on the map` : `Show the workers of ${row.id} on the map`,
              onclick: () => onToggle(row.id),
            },
            opened ? 'Close' : 'Open',
          );
        },
      },
    ],
  });

  return {
    element: table.element,
    /** `rows`: groups with `hardware`; `openIds` those opened; `note` under the caption. */
    update(rows, openIds, note) {
      open = openIds;
      const sorted = sortRows(rows, current, (row, key) => (key === 'use' ? slotUse(row) : key === 'group' ? groupLabel(row.id) : row[key]), (row) => row.id);
      table.update(sorted, note);
    },
  };
}

/** Where each family runs: `onSort(key, order)`. */
export function placementsTable({ sort, onSort }) {
  let current = sort;
  const table = dataTable({
    id: 'topology-placements',
    caption: 'Where task families run',
    sort,
    onSort: (key, order) => {
      current = { key, order };
      onSort(key, order);
    },
    csv: { filename: 'topology-placements' },
    empty: 'No task has run yet.',
    rowKey: (row) => `${row.family}>${row.hardware}`,
    columns: [
      { key: 'family', label: 'Family', title: 'The model family of the tasks', value: (row) => h('a', { href: `/task-types/${encodeURIComponent(row.family)}` }, row.family) },
      { key: 'hardware', label: 'Hardware', title: 'The hardware kind they ran on' },
      { key: 'runs', label: 'Runs', title: 'Tasks of the family that finished on this kind so far', num: true, value: (row) => format.count(row.runs) },
      {
        key: 'score',
        label: 'Score',
        title: 'Compatibility, 0 to 100: success rate × speed against the fastest kind for the family (docs/METRICS.md)',
        num: true,
        value: (row) => h('span', { class: 'topology-share', title: `Compatibility of ${row.family} with ${row.hardware}` }, row.score === null || row.score === undefined ? '–' : format.number(row.score), bar((row.score ?? 0) / 100, '')),
      },
      { key: 'running', label: 'Now', title: 'Tasks of the family running on this kind now', num: true, value: (row) => format.count(row.running) },
    ],
  });
  return {
    element: table.element,
    update(rows, note) {
      table.update(sortRows(rows, current, undefined, (row) => `${row.family}>${row.hardware}`), note);
    },
  };
}

/** The task families and how their tasks stand. */
export function familiesTable() {
  const table = dataTable({
    id: 'topology-families',
    caption: 'Task families',
    csv: { filename: 'topology-families' },
    empty: 'No task has been seen yet.',
    rowKey: (row) => row.family,
    columns: [
      { key: 'family', label: 'Family', title: 'The model family', value: (row) => h('a', { href: `/task-types/${encodeURIComponent(row.family)}` }, row.family) },
      { key: 'queued', label: 'Queue', title: 'Waiting to start now', num: true, value: (row) => format.count(row.queued) },
      { key: 'running', label: 'Run', title: 'Running now', num: true, value: (row) => format.count(row.running) },
      { key: 'completed', label: 'Done', title: 'Completed since the stream began', num: true, value: (row) => format.count(row.completed) },
      { key: 'failed', label: 'Fail', title: 'Failed since the stream began', num: true, value: (row) => format.count(row.failed) },
      { key: 'throughput_per_min', label: '/min', title: 'Completions in the last 60 s', num: true, value: (row) => format.number(row.throughput_per_min) },
    ],
  });
  return {
    element: table.element,
    update(rows) {
      table.update([...rows].sort((a, b) => a.family.localeCompare(b.family)));
    },
  };
}

const CAPABILITIES = [
  { key: 'cpu_cores', caption: 'CPU cores', unit: 'cores', numeric: true },
  { key: 'memory_gb', caption: 'Memory', unit: 'GB', numeric: true },
  { key: 'slots', caption: 'Task slots', unit: 'slots', numeric: true },
  { key: 'gpu_models', caption: 'GPU models', unit: '', numeric: false },
];

/** How the capabilities are spread: a table per capability, each value's workers and share. */
export function capabilityTables() {
  const tables = CAPABILITIES.map((capability) => {
    let total = 1;
    const table = dataTable({
      id: `topology-cap-${capability.key.replace('_', '-')}`,
      caption: capability.caption,
      csv: { filename: `topology-${capability.key}` },
      empty: capability.numeric ? 'No worker has registered yet.' : 'No worker reports a GPU.',
      rowKey: (row) => row.value,
      columns: [
        { key: 'value', label: capability.numeric ? capability.unit : 'Model', title: `${capability.caption} a worker offers` },
        { key: 'workers', label: 'Workers', title: 'Workers offering it', num: true, value: (row) => format.count(row.workers) },
        {
          key: 'share',
          label: 'Share',
          title: 'Its share of the workers that reported their capabilities',
          num: true,
          value: (row) => h('span', { class: 'topology-share', title: `${format.count(row.workers)} of ${format.count(total)} workers: ${capability.numeric ? `${row.value} ${capability.unit}` : row.value}` }, format.ratio(row.workers / total), bar(row.workers / total, '')),
          csv: (row) => row.workers / total,
        },
      ],
    });
    return {
      element: table.element,
      update(values, workers) {
        total = Math.max(1, workers);
        const rows = Array.isArray(values) ? [...values] : [];
        if (capability.numeric) rows.sort((a, b) => Number(a.value) - Number(b.value) || a.value.localeCompare(b.value));
        else rows.sort((a, b) => b.workers - a.workers || a.value.localeCompare(b.value));
        table.update(rows);
      },
    };
  });
  return {
    element: h('div', { class: 'topology-capabilities' }, tables.map((table) => table.element)),
    /** `capabilities` from /api/topology. */
    update(capabilities) {
      const reported = Math.max(0, ...CAPABILITIES.filter((capability) => capability.numeric).map((capability) => (capabilities?.[capability.key] ?? []).reduce((sum, row) => sum + row.workers, 0)));
      CAPABILITIES.forEach((capability, index) => tables[index].update(capabilities?.[capability.key], reported));
    },
  };
}

/** The workers of the opened groups, as the map draws them. */
export function openWorkersTable() {
  const table = dataTable({
    id: 'topology-workers',
    caption: 'Workers of the opened groups',
    csv: { filename: 'topology-workers' },
    empty: 'No group is open: open one with its button in the Groups table or by clicking it on the map.',
    rowKey: (row) => row.worker_id,
    columns: [
      { key: 'group', label: 'Group', title: 'The group it belongs to', value: (row) => h('span', { class: 'mono' }, row.group) },
      { key: 'worker_id', label: 'Worker', title: 'Its id; the link opens its page', value: (row) => h('a', { class: 'mono', href: `/workers/${encodeURIComponent(row.worker_id)}` }, row.worker_id) },
      { key: 'status', label: 'Status', title: 'idle, busy, overloaded or disconnected', value: (row) => h('span', { class: `status-text status-${row.status}` }, row.status) },
      { key: 'cpu_pct', label: 'CPU', title: 'From its last heartbeat', num: true, value: (row) => format.percent(row.cpu_pct) },
      { key: 'memory_pct', label: 'Mem', title: 'Memory, from its last heartbeat', num: true, value: (row) => format.percent(row.memory_pct) },
      { key: 'network_pct', label: 'Net', title: 'Network, from its last heartbeat, relative to its link', num: true, value: (row) => format.percent(row.network_pct) },
      { key: 'active_tasks', label: 'Run', title: 'Tasks running on it now', num: true, value: (row) => format.count(row.active_tasks) },
      { key: 'queued_tasks', label: 'Wait', title: 'Tasks waiting on it now', num: true, value: (row) => format.count(row.queued_tasks) },
      { key: 'slots', label: 'Slots', title: 'How many tasks it runs at once', num: true, value: (row) => format.count(row.capabilities?.slots), csv: (row) => row.capabilities?.slots },
      { key: 'health_score', label: 'Health', title: '0 to 100: success rate, less when CPU runs past 80%', num: true, value: (row) => format.number(row.health_score) },
    ],
  });
  return { element: table.element, update: table.update };
}
