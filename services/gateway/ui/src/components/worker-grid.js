// The worker grid: one cell per worker, coloured by status (hue) and CPU load (strength),
// grouped by hardware kind in sections that fold, each section headed by its kind's counts
// over the whole fleet. Each cell links to the worker's page and carries its figures as a
// tooltip. Cells are kept by worker id and only changed where the figures changed. A page
// draws at most `max_workers_shown` cells: for a big fleet, those that most need a look
// (the API's `attention` order), and the grid says how many more there are.

import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';

export const STATUSES = ['idle', 'busy', 'overloaded', 'disconnected'];
const STATUS_MEANING = {
  idle: 'connected, running nothing',
  busy: 'connected, running tasks',
  overloaded: 'CPU at 90% or more, or more tasks waiting than it has slots',
  disconnected: 'no heartbeat for 15 s, or reported offline',
};
const HARDWARE_ORDER = ['cpu', 'cuda', 'rocm', 'tpu', 'webgpu', 'webnn', 'npu', 'other', 'unknown'];
const HARDWARE_LABELS = {
  cpu: 'CPU', cuda: 'CUDA GPU', rocm: 'ROCm GPU', tpu: 'TPU', webgpu: 'WebGPU', webnn: 'WebNN',
  npu: 'NPU', other: 'Other', unknown: 'Unknown hardware',
};
/** Up to this many workers, cells are big enough to carry their id and load. */
const LARGE_CELLS_UP_TO = 48;

/**
 * `onFilter(status)` when the grid's status filter changes ('' for all); without it the grid
 * has no filter of its own (the page filters). `title`: the panel's heading.
 */
export function workerGrid({ onFilter = null, status = '', title = 'Workers' } = {}) {
  const filter = h(
    'select',
    { id: 'worker-filter', title: 'Show only the workers in one status' },
    h('option', { value: '' }, 'all statuses'),
    STATUSES.map((status) => h('option', { value: status }, status)),
  );
  const legend = h(
    'ul',
    { class: 'legend', 'aria-label': 'Cell colours' },
    STATUSES.map((status) =>
      h(
        'li',
        { title: `${status}: ${STATUS_MEANING[status]}. A stronger colour means a higher CPU load.` },
        h('span', { class: `swatch status-${status}`, 'aria-hidden': 'true' }),
        status,
        ' ',
        h('span', { class: 'legend-count', 'data-status': status }, ''),
      ),
    ),
  );
  const note = h('p', { class: 'muted small', id: 'worker-grid-note' }, 'waiting for workers…');
  const groupsHolder = h('div', { class: 'worker-groups' });
  const element = h(
    'section',
    { class: 'panel worker-grid', 'aria-labelledby': 'worker-grid-title' },
    h(
      'div',
      { class: 'panel-head' },
      h('h2', { id: 'worker-grid-title' }, title),
      onFilter ? [h('label', { class: 'sr-only', for: 'worker-filter' }, 'Filter workers by status'), filter] : null,
    ),
    legend,
    note,
    groupsHolder,
  );

  /** hardware kind -> { details, summary, cellHolder } */
  const groups = new Map();
  /** worker id -> { cell, label, load, signature } */
  const cells = new Map();

  filter.value = status;
  filter.addEventListener('change', () => onFilter?.(filter.value));

  function groupFor(hardware) {
    let group = groups.get(hardware);
    if (group) return group;
    const summary = h('summary', {});
    const cellHolder = h('div', { class: 'cells' });
    const details = h('details', { open: true, class: 'worker-group', 'data-hardware': hardware }, summary, cellHolder);
    group = { details, summary, cellHolder };
    groups.set(hardware, group);
    return group;
  }

  function update(list) {
    const workers = Array.isArray(list?.items) ? list.items : [];
    const large = workers.length <= LARGE_CELLS_UP_TO;
    element.classList.toggle('large-cells', large);
    const fleet = new Map((list?.summary?.by_hardware ?? []).map((kind) => [kind.hardware, kind]));

    const byHardware = new Map();
    for (const worker of workers) {
      const hardware = worker.capabilities?.hardware ?? 'unknown';
      if (!byHardware.has(hardware)) byHardware.set(hardware, []);
      byHardware.get(hardware).push(worker);
    }

    const seen = new Set();
    const orderedGroups = [];
    const everyKind = onFilter && !filter.value;
    const kinds = [...new Set([...byHardware.keys(), ...(everyKind ? fleet.keys() : [])])].sort(
      (a, b) => rank(a) - rank(b) || a.localeCompare(b),
    );
    for (const hardware of kinds) {
      const members = byHardware.get(hardware) ?? [];
      const group = groupFor(hardware);
      orderedGroups.push(group.details);
      const counts = Object.fromEntries(STATUSES.map((status) => [status, 0]));
      const ordered = [];
      for (const worker of members) {
        counts[worker.status] = (counts[worker.status] ?? 0) + 1;
        seen.add(worker.worker_id);
        ordered.push(cellFor(worker).cell);
      }
      // The kind's counts over the whole fleet, where the list holds only some of them.
      const kind = fleet.get(hardware);
      const total = kind?.total ?? members.length;
      if (kind) for (const status of STATUSES) counts[status] = kind[status] ?? counts[status];
      // Keep the list's order inside a group; only move nodes when the order changed.
      const current = group.cellHolder.children;
      let same = current.length === ordered.length;
      for (let i = 0; same && i < ordered.length; i++) same = current[i] === ordered[i];
      if (!same) group.cellHolder.replaceChildren(...ordered);

      const attention = ['overloaded', 'disconnected']
        .filter((status) => counts[status] > 0)
        .map((status) => `${format.count(counts[status])} ${status}`);
      const hidden = total - members.length;
      setText(
        group.summary,
        `${HARDWARE_LABELS[hardware] ?? hardware} · ${format.count(total)}${attention.length ? ` (${attention.join(', ')})` : ''}${hidden > 0 && !filter.value ? ` · ${format.count(members.length)} shown` : ''}`,
        `${format.count(total)} ${HARDWARE_LABELS[hardware] ?? hardware} workers: ` +
          STATUSES.map((status) => `${counts[status]} ${status}`).join(', '),
      );
    }
    for (const [id, entry] of cells) {
      if (!seen.has(id)) {
        entry.cell.remove();
        cells.delete(id);
      }
    }
    for (const [hardware, group] of groups) {
      if (!byHardware.has(hardware)) {
        group.details.remove();
        groups.delete(hardware);
      }
    }
    const current = groupsHolder.children;
    let sameGroups = current.length === orderedGroups.length;
    for (let i = 0; sameGroups && i < orderedGroups.length; i++) sameGroups = current[i] === orderedGroups[i];
    if (!sameGroups) groupsHolder.replaceChildren(...orderedGroups);

    const total = list?.total ?? workers.length;
    if (total === 0) {
      setText(note, filter.value || !onFilter ? 'No worker matches.' : 'No workers have reported yet.');
    } else if (!onFilter) {
      setText(note, `The ${format.count(workers.length)} workers of this page, by hardware kind. Hover a cell for its figures.`);
    } else if (list?.truncated) {
      const more = total - workers.length;
      const all = `/workers${filter.value ? `?status=${filter.value}` : ''}`;
      replace(
        note,
        `Showing the ${format.count(workers.length)} of ${format.count(total)} workers that most need a look (disconnected, overloaded, then the busiest); `,
        h('a', { href: all, title: 'Every worker, filtered and sorted, page by page' }, `${format.count(more)} more on the Workers page`),
        '.',
      );
    } else {
      setText(note, `${format.count(total)} workers, by hardware kind. Hover a cell for its figures.`);
    }
  }

  function cellFor(worker) {
    let entry = cells.get(worker.worker_id);
    if (!entry) {
      const label = h('span', { class: 'cell-id' });
      const load = h('span', { class: 'cell-load' });
      const cell = h('a', { class: 'cell', href: `/workers/${encodeURIComponent(worker.worker_id)}` }, label, load);
      entry = { cell, label, load, signature: '' };
      cells.set(worker.worker_id, entry);
    }
    const cpu = clamp(worker.cpu_pct ?? 0);
    const signature = `${worker.status}|${Math.round(cpu)}|${worker.active_tasks}|${worker.queued_tasks}|${worker.gpu_pct}|${Math.round(worker.memory_pct)}|${Math.round(worker.health_score)}`;
    if (signature !== entry.signature) {
      entry.signature = signature;
      const cell = entry.cell;
      cell.className = `cell status-${STATUSES.includes(worker.status) ? worker.status : 'unknown'}`;
      cell.style.setProperty('--load', String(Math.round(cpu)));
      const tooltip = describe(worker);
      cell.title = tooltip;
      cell.setAttribute('aria-label', tooltip.replaceAll('\n', '; '));
      setText(entry.label, worker.worker_id);
      setText(entry.load, worker.status === 'disconnected' ? 'offline' : `${format.percent(cpu)} CPU · ${format.count(worker.active_tasks)} ${worker.active_tasks === 1 ? 'task' : 'tasks'}`);
    }
    return entry;
  }

  /** The whole fleet's counts by status, from the system metrics (not only listed workers). */
  function setFleetCounts(workerCounts) {
    for (const span of legend.querySelectorAll('.legend-count')) {
      const value = workerCounts?.[span.dataset.status];
      setText(span, value === undefined ? '' : format.count(value));
    }
  }

  return { element, update, setFleetCounts };
}

function describe(worker) {
  const capabilities = worker.capabilities;
  const hardware = capabilities
    ? `${capabilities.hardware}${capabilities.gpu_model ? ` (${capabilities.gpu_model})` : ''}, ${capabilities.cpu_cores} cores, ${format.number(capabilities.memory_gb)} GB, ${capabilities.slots} slots`
    : 'hardware not reported';
  return [
    `${worker.worker_id}: ${worker.status}`,
    hardware,
    `CPU ${format.percent(worker.cpu_pct)} · GPU ${worker.gpu_pct === undefined || worker.gpu_pct === null ? 'none' : format.percent(worker.gpu_pct)} · memory ${format.percent(worker.memory_pct)} · network ${format.percent(worker.network_pct)}`,
    `${format.count(worker.active_tasks)} running, ${format.count(worker.queued_tasks)} waiting`,
    `${format.count(worker.completed)} completed, ${format.count(worker.failed)} failed (success ${format.ratio(worker.success_rate)})`,
    `health ${format.number(worker.health_score)} / 100 · last seen ${format.time(worker.last_seen)}`,
  ].join('\n');
}

function rank(hardware) {
  const index = HARDWARE_ORDER.indexOf(hardware);
  return index === -1 ? HARDWARE_ORDER.length : index;
}

function clamp(value) {
  return Math.max(0, Math.min(100, Number(value) || 0));
}
