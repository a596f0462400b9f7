// The workers page (/workers): the fleet's counts by status, then the workers the filters
// select (hardware kind, status, tag, id text, all in the URL with the sort) as a grid and
// as a table sorted and paged on the server, with uptime, reliability and the tasks each
// holds. The CSV holds every selected worker, not one page.

import { apiUrl, getJson } from '../api.js';
import { workerGrid } from '../components/worker-grid.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { refresher } from '../refresh.js';
import { dataTable, pager } from '../table.js';
import { readQuery, writeQuery } from '../url-state.js';

const STATUS_CARDS = [
  { key: 'total', label: 'Workers', title: 'Every worker known (not retired)' },
  { key: 'active', label: 'Active', title: 'Connected and running tasks (busy + overloaded)' },
  { key: 'idle', label: 'Idle', title: 'Connected, running nothing', status: 'idle' },
  { key: 'busy', label: 'Busy', title: 'Connected, running tasks', status: 'busy' },
  { key: 'overloaded', label: 'Overloaded', title: 'CPU at the overload threshold or more tasks waiting than slots', status: 'overloaded' },
  { key: 'disconnected', label: 'Disconnected', title: 'No heartbeat for 15 s, or reported offline', status: 'disconnected' },
];

const link = (worker) => h('a', { href: `/workers/${encodeURIComponent(worker.worker_id)}`, class: 'mono' }, worker.worker_id);
const hardware = (worker) => worker.capabilities?.hardware ?? 'unknown';

const COLUMNS = [
  { key: 'worker_id', label: 'Worker', title: 'Its id; opens its page', value: link },
  { key: 'status', label: 'Status', title: 'idle, busy, overloaded or disconnected', value: (w) => h('span', { class: `status-text status-${w.status}` }, w.status) },
  { key: 'hardware', label: 'Hardware', title: 'Its hardware kind and GPU', value: (w) => `${hardware(w)}${w.capabilities?.gpu_model ? ` · ${w.capabilities.gpu_model}` : ''}`, csv: hardware },
  { key: 'cpu_pct', label: 'CPU', title: 'From its last heartbeat', num: true, value: (w) => format.percent(w.cpu_pct) },
  { key: 'gpu_pct', label: 'GPU', title: 'From its last heartbeat; – without a GPU', num: true, value: (w) => format.percent(w.gpu_pct) },
  { key: 'memory_pct', label: 'Mem', title: 'Memory, from its last heartbeat', num: true, value: (w) => format.percent(w.memory_pct) },
  { key: 'network_pct', label: 'Net', title: 'Network, relative to its link', num: true, value: (w) => format.percent(w.network_pct) },
  { key: 'active_tasks', label: 'Run', title: 'Tasks running on it now', num: true },
  { key: 'queued_tasks', label: 'Wait', title: 'Tasks waiting on it now', num: true },
  { key: 'tasks_per_hour', label: '/hour', title: 'Completions in the last 60 minutes', num: true, value: (w) => format.number(w.tasks_per_hour) },
  { key: 'success_rate', label: 'Success', title: 'completed / (completed + failed)', num: true, value: (w) => format.ratio(w.success_rate) },
  { key: 'mean_task_ms', label: 'Mean task', title: 'Mean processing time of its completed tasks', num: true, value: (w) => format.duration(w.mean_task_ms) },
  { key: 'health_score', label: 'Health', title: '0 to 100: success rate, less when CPU runs past 80%', num: true, value: (w) => format.number(w.health_score) },
  { key: 'uptime_secs', label: 'Uptime', title: 'Since it last joined', num: true, value: (w) => format.duration((w.uptime_secs ?? 0) * 1000) },
  { key: 'last_seen', label: 'Seen', title: 'Its last heartbeat', num: true, value: (w) => format.ago(w.last_seen) },
];

export function mount(root, app) {
  const query = readQuery();
  const filters = { hardware: query.hardware ?? '', status: query.status ?? '', tag: query.tag ?? '', search: query.q ?? '' };
  let sort = { key: query.sort ?? 'worker_id', order: query.order ?? 'asc' };
  const limit = Number(query.limit) > 0 ? Math.min(Number(query.limit), 1000) : app.settings.max_workers_shown;

  const cards = h('dl', { class: 'cards', id: 'worker-counts' });
  const select = (name, label, title) => {
    const element = h('select', { name, title }, h('option', { value: '' }, label));
    element.addEventListener('change', () => changed({ [name]: element.value }));
    return element;
  };
  const hardwareSelect = select('hardware', 'all hardware', 'Only workers of one hardware kind');
  const statusSelect = select('status', 'all statuses', 'Only workers in one status');
  const tagSelect = select('tag', 'all tags', 'Only workers with this tag');
  for (const status of ['idle', 'busy', 'overloaded', 'disconnected']) statusSelect.append(h('option', { value: status }, status));
  const search = h('input', { type: 'search', name: 'q', placeholder: 'worker id contains…', title: 'Only workers whose id contains this text', value: filters.search });
  let typing = null;
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => changed({ search: search.value.trim() }), 250);
  });
  const error = h('p', { class: 'error', role: 'alert' });
  const grid = workerGrid({ title: 'This page as a grid' });
  const table = dataTable({
    id: 'workers-table',
    caption: 'Workers',
    columns: COLUMNS,
    sort,
    onSort: (key, order) => {
      sort = { key, order };
      writeQuery({ sort: key, order });
      pages.reset();
      refresh.now();
    },
    csv: { filename: 'workers', href: () => apiUrl('/api/workers', { ...apiFilters(), sort: sort.key, order: sort.order, format: 'csv' }) },
    empty: 'No worker matches these filters.',
    rowKey: (worker) => worker.worker_id,
  });
  const pages = pager({ onPage: () => refresh.now() });

  root.append(
    h(
      'div',
      { class: 'page workers-page' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Workers'), h('p', { class: 'muted' }, 'Every worker, filtered and sorted on the server. Click a status to show only those.')),
      cards,
      h(
        'div',
        { class: 'panel filters', role: 'search' },
        h('label', {}, 'Hardware', hardwareSelect),
        h('label', {}, 'Status', statusSelect),
        h('label', {}, 'Tag', tagSelect),
        h('label', {}, 'Search', search),
        h('button', { type: 'button', class: 'button small', onclick: () => clearFilters(), title: 'Show every worker' }, 'Clear'),
      ),
      error,
      h('section', { class: 'panel' }, table.element, pages.element),
      grid.element,
    ),
  );

  function apiFilters() {
    return { hardware: filters.hardware, status: filters.status, tag: filters.tag, search: filters.search };
  }

  function changed(change) {
    Object.assign(filters, change);
    writeQuery({ hardware: filters.hardware, status: filters.status, tag: filters.tag, q: filters.search });
    pages.reset();
    refresh.now();
  }

  function clearFilters() {
    search.value = '';
    changed({ hardware: '', status: '', tag: '', search: '' });
  }

  function showSummary(summary) {
    const counts = { ...summary, active: (summary.busy ?? 0) + (summary.overloaded ?? 0) };
    replace(
      cards,
      STATUS_CARDS.map((card) => {
        const chosen = card.status && filters.status === card.status;
        const value = h('dd', {}, format.count(counts[card.key]));
        const item = h('div', { class: `card${card.status ? ` status-${card.status}` : ''}${chosen ? ' chosen' : ''}`, title: card.title, 'data-count': card.key }, h('dt', {}, card.label), value);
        if (card.status) {
          item.tabIndex = 0;
          item.setAttribute('role', 'button');
          item.addEventListener('click', () => {
            statusSelect.value = chosen ? '' : card.status;
            changed({ status: statusSelect.value });
          });
        }
        return item;
      }),
    );
    fillOptions(hardwareSelect, summary.by_hardware.map((kind) => [kind.hardware, `${kind.hardware} (${format.count(kind.total)})`]), filters.hardware);
    fillOptions(tagSelect, Object.entries(summary.tags).map(([tag, count]) => [tag, `${tag} (${format.count(count)})`]), filters.tag);
    statusSelect.value = filters.status;
  }

  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      const list = await getJson('/api/workers', { ...apiFilters(), sort: sort.key, order: sort.order, limit, cursor: pages.cursor() });
      setText(error, '');
      showSummary(list.summary);
      table.update(list.items, `${format.count(list.total)} match`);
      grid.update({ ...list, summary: null });
      pages.show({ count: list.items.length, total: list.total, limit, nextCursor: list.next_cursor });
    } catch (err) {
      setText(error, err.message);
    } finally {
      polling = false;
    }
  };
  const refresh = refresher({ poll });
  return () => {
    clearTimeout(typing);
    refresh.stop();
  };
}

/** Replaces a select's options after its first ("all") with `options` ([value, label]). */
function fillOptions(select, options, chosen) {
  const wanted = options.map(([value]) => value).join('\u0000');
  if (select.dataset.options !== wanted) {
    select.dataset.options = wanted;
    while (select.options.length > 1) select.remove(1);
    for (const [value, label] of options) select.append(h('option', { value }, label));
  }
  for (const [index, [, label]] of options.entries()) select.options[index + 1].textContent = label;
  select.value = chosen;
}
