// The tasks page (/tasks): the counts by status (live), then a task list searched and
// filtered on the server, live ones (queued, assigned, running, retrying) from the
// processor or finished ones (completed, failed) from the archive, by family, model,
// hardware, worker, id text and time, all in the URL with the sort; how long tasks ran
// (a distribution over the chosen range) and the tasks that wait for others.

import { MODEL_FAMILIES, apiUrl, getJson } from '../api.js';
import { BarChart } from '../charts.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { rangePicker } from '../range.js';
import { refresher } from '../refresh.js';
import { dataTable, pager } from '../table.js';
import { readQuery, writeQuery } from '../url-state.js';

const CHOICES = [
  { value: '', label: 'live (queued, assigned, running, retrying)' },
  { value: 'queued', label: 'queued' },
  { value: 'assigned', label: 'assigned' },
  { value: 'running', label: 'running' },
  { value: 'retrying', label: 'retrying' },
  { value: 'completed,failed', label: 'finished (completed, failed)' },
  { value: 'completed', label: 'completed' },
  { value: 'failed', label: 'failed' },
];
const FINISHED = ['completed', 'failed'];
const isFinished = (status) => status.split(',').some((part) => FINISHED.includes(part));

const COUNT_CARDS = [
  ['running', 'Running', 'Tasks running now'],
  ['queued', 'Queued', 'Waiting for a worker'],
  ['assigned', 'Assigned', 'Placed on a worker, waiting for a slot'],
  ['completed', 'Completed', 'Since the stream began'],
  ['failed', 'Failed', 'Failures since the stream began (a retried task counts each time)'],
  ['retried', 'Retried', 'Retries since the stream began'],
  ['cancelled', 'Cancelled', 'Since the stream began'],
];

const taskLink = (task) => h('a', { href: `/tasks/${encodeURIComponent(task.task_id)}`, class: 'mono' }, task.task_id);
const workerLink = (task) => (task.worker_id ? h('a', { href: `/workers/${encodeURIComponent(task.worker_id)}`, class: 'mono' }, task.worker_id) : '–');
const familyLink = (task) => (task.family ? h('a', { href: `/task-types/${encodeURIComponent(task.family)}` }, task.family) : '–');
const statusText = (task) => h('span', { class: `task-status task-${task.status}` }, task.status);

const COMMON = [
  { key: 'task_id', label: 'Task', title: 'Its id; opens its page', value: taskLink },
  { key: 'status', label: 'Status', title: 'queued, assigned, running, retrying; completed or failed', value: statusText },
  { key: 'model', label: 'Model', title: 'What it benchmarks' },
  { key: 'family', label: 'Family', title: 'The model family', value: familyLink, sortable: false },
  { key: 'priority', label: 'Prio', title: '0 (lowest) to 9', num: true },
  { key: 'worker_id', label: 'Worker', title: 'Where it runs or ran', value: workerLink },
  { key: 'hardware', label: 'Hardware', title: 'Its worker\'s hardware kind', sortable: false },
];

const LIVE_COLUMNS = [
  ...COMMON,
  { key: 'created_at', label: 'Queued', title: 'When it was first queued', num: true, value: (task) => format.ago(task.created_at) },
  { key: 'started_at', label: 'For', title: 'Running: since it started. Waiting: since it was last queued', num: true, value: (task) => format.duration(Date.now() - (task.started_at ?? task.queued_at)), csv: (task) => Date.now() - (task.started_at ?? task.queued_at) },
  { key: 'waiting_on', label: 'Waits for', title: 'Tasks it depends on that have not finished', sortable: false, value: (task) => (task.waiting_on?.length ? task.waiting_on.map((id) => [h('a', { href: `/tasks/${encodeURIComponent(id)}`, class: 'mono' }, id), ' ']) : ''), csv: (task) => (task.waiting_on ?? []).join(' ') },
  { key: 'attempts', label: 'Retries', title: 'Retries so far', num: true, sortable: false },
];

const FINISHED_COLUMNS = [
  ...COMMON,
  { key: 'finished_at', label: 'Ended', title: 'When it ended', num: true, value: (task) => format.dateTime(task.finished_at) },
  { key: 'queue_ms', label: 'Waited', title: 'Start minus last queued', num: true, value: (task) => format.duration(task.queue_ms) },
  { key: 'processing_ms', label: 'Ran', title: 'End minus start', num: true, value: (task) => format.duration(task.processing_ms) },
  { key: 'total_ms', label: 'Total', title: 'End minus first queued', num: true, value: (task) => format.duration(task.total_ms) },
  { key: 'attempts', label: 'Retries', title: 'Retries before this end', num: true, sortable: false },
  { key: 'error', label: 'Error', title: 'Why it failed, as the worker said', sortable: false, value: (task) => (task.error ? h('span', { class: 'failure-error' }, task.error) : '') },
];

const bucketLabel = (le, previous) => (le === null ? `> ${format.shortDuration(previous)}` : `≤ ${format.shortDuration(le)}`);

export function mount(root, app) {
  const query = readQuery();
  const filters = {
    status: CHOICES.some((choice) => choice.value === query.status) ? query.status : '',
    family: query.family ?? '',
    model: query.model ?? '',
    hardware: query.hardware ?? '',
    worker_id: query.worker ?? '',
    search: query.q ?? '',
  };
  let sort = { key: query.sort ?? '', order: query.order ?? '' };
  const limit = app.settings.max_workers_shown;

  const cards = h('dl', { class: 'cards', id: 'task-counts' });
  const statusSelect = h('select', { name: 'status', title: 'Live tasks from the processor, or finished ones from the archive' }, CHOICES.map((choice) => h('option', { value: choice.value }, choice.label)));
  statusSelect.value = filters.status;
  statusSelect.addEventListener('change', () => changed({ status: statusSelect.value }));
  const familySelect = h('select', { name: 'family', title: 'Only one model family' }, h('option', { value: '' }, 'all families'), MODEL_FAMILIES.map((family) => h('option', { value: family }, family)));
  familySelect.value = filters.family;
  familySelect.addEventListener('change', () => changed({ family: familySelect.value }));
  const modelSelect = h('select', { name: 'model', title: 'Only one model' }, h('option', { value: '' }, 'all models'));
  modelSelect.addEventListener('change', () => changed({ model: modelSelect.value }));
  const hardwareSelect = h('select', { name: 'hardware', title: 'Only tasks on one hardware kind' }, h('option', { value: '' }, 'all hardware'), ['cpu', 'cuda', 'rocm', 'tpu', 'webgpu', 'webnn', 'npu', 'other'].map((kind) => h('option', { value: kind }, kind)));
  hardwareSelect.value = filters.hardware;
  hardwareSelect.addEventListener('change', () => changed({ hardware: hardwareSelect.value }));
  const text = (name, placeholder, title, value) => {
    const input = h('input', { type: 'search', name, placeholder, title, value });
    let typing = null;
    input.addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => changed({ [name]: input.value.trim() }), 300);
    });
    return input;
  };
  const workerInput = text('worker_id', 'worker id', 'Only tasks on this worker', filters.worker_id);
  const searchInput = text('search', 'task id contains…', 'Only tasks whose id contains this text', filters.search);
  const picker = rangePicker({ fallback: '1h', onChange: () => changed({}) });
  const error = h('p', { class: 'error', role: 'alert' });
  const source = h('p', { class: 'muted small', id: 'tasks-source' });

  const onSort = (key, order) => {
    sort = { key, order };
    writeQuery({ sort: key, order });
    pages.reset();
    refresh.now();
  };
  const apiFilters = () => ({ status: filters.status, family: filters.family, model: filters.model, hardware: filters.hardware, worker_id: filters.worker_id, search: filters.search });
  const liveTable = dataTable({ id: 'tasks-table', caption: 'Tasks', columns: LIVE_COLUMNS, onSort, csv: { filename: 'tasks-live' }, empty: 'No live task matches.', rowKey: (task) => task.task_id });
  const finishedTable = dataTable({
    id: 'tasks-table',
    caption: 'Tasks',
    columns: FINISHED_COLUMNS,
    onSort,
    csv: { filename: 'tasks-finished', href: () => apiUrl('/api/tasks', { ...apiFilters(), ...rangeParams(), sort: sort.key || undefined, order: sort.order || undefined, format: 'csv' }) },
    empty: 'No finished task in this range matches.',
    rowKey: (task) => `${task.task_id}-${task.finished_at}`,
  });
  const tableHolder = h('div', {});
  const pages = pager({ onPage: () => refresh.now() });
  const distribution = new BarChart({ title: 'Execution time', description: 'how long the completed tasks the filters select ran, over the range: tasks per bucket', series: [{ key: 'count', label: 'tasks' }], format: format.count });
  const distributionNote = h('p', { class: 'muted small', id: 'distribution-note' });
  const blocked = dataTable({
    id: 'tasks-blocked',
    caption: 'Waiting for other tasks',
    csv: { filename: 'tasks-waiting' },
    empty: 'No queued task waits for another.',
    rowKey: (task) => task.task_id,
    columns: [
      { key: 'task_id', label: 'Task', title: 'Queued, and waiting for the tasks it depends on', value: taskLink },
      { key: 'model', label: 'Model', title: 'What it benchmarks' },
      { key: 'waiting_on', label: 'Waits for', title: 'Its dependencies that have not finished', value: (task) => task.waiting_on.map((id) => [h('a', { href: `/tasks/${encodeURIComponent(id)}`, class: 'mono' }, id), ' ']), csv: (task) => task.waiting_on.join(' ') },
      { key: 'depends_on', label: 'Depends on', title: 'Every task it depends on', num: true, value: (task) => format.count(task.depends_on.length), csv: (task) => task.depends_on.join(' ') },
    ],
  });

  root.append(
    h(
      'div',
      { class: 'page tasks-page' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Tasks'), h('p', { class: 'muted' }, 'Live tasks from the processor, finished ones from the archive.')),
      cards,
      h(
        'div',
        { class: 'panel filters', role: 'search' },
        h('label', {}, 'Status', statusSelect),
        h('label', {}, 'Family', familySelect),
        h('label', {}, 'Model', modelSelect),
        h('label', {}, 'Hardware', hardwareSelect),
        h('label', {}, 'Worker', workerInput),
        h('label', {}, 'Search', searchInput),
        picker.element,
      ),
      error,
      h('section', { class: 'panel' }, source, tableHolder, pages.element),
      h('div', { class: 'columns-2' }, h('section', { class: 'panel' }, distribution.element, distributionNote), h('section', { class: 'panel' }, blocked.element)),
    ),
  );

  function rangeParams() {
    const range = picker.range();
    return { start_time: Math.floor(range.start), end_time: Math.ceil(range.end) };
  }

  function changed(change) {
    const wasFinished = isFinished(filters.status);
    Object.assign(filters, change);
    // Live and finished lists sort by different columns.
    if (isFinished(filters.status) !== wasFinished) sort = { key: '', order: '' };
    fresh = true;
    writeQuery({ status: filters.status, family: filters.family, model: filters.model, hardware: filters.hardware, worker: filters.worker_id, q: filters.search, sort: sort.key, order: sort.order });
    pages.reset();
    refresh.now();
  }

  function showCounts(system) {
    const counts = system?.tasks;
    replace(
      cards,
      COUNT_CARDS.map(([key, label, title]) => h('div', { class: 'card', title, 'data-count': key }, h('dt', {}, label), h('dd', {}, format.count(counts?.[key])))),
    );
  }

  let polling = false;
  let polls = 0;
  // The slower figures (models, the distribution) are read every fifth poll, and at once
  // after the filters change.
  let fresh = true;
  const poll = async () => {
    if (polling) return;
    polling = true;
    polls += 1;
    const slow = fresh || polls % 5 === 1;
    fresh = false;
    const finished = isFinished(filters.status);
    const table = finished ? finishedTable : liveTable;
    if (tableHolder.firstChild !== table.element) replace(tableHolder, table.element);
    table.setSort(sort.key ? sort : null);
    try {
      const asked = { ...apiFilters(), ...(finished ? rangeParams() : {}), sort: sort.key || undefined, order: sort.order || undefined, limit, cursor: pages.cursor() };
      const [list, metrics, waiting, spread] = await Promise.all([
        getJson('/api/tasks', asked),
        slow ? getJson('/api/metrics/tasks').catch(() => null) : null,
        getJson('/api/tasks', { status: 'queued', blocked: true, sort: 'created_at', limit: 20 }).catch(() => null),
        slow ? getJson('/api/metrics/tasks/distribution', { family: filters.family, model: filters.model, hardware: filters.hardware, worker_id: filters.worker_id, ...rangeParams() }).catch((err) => err) : null,
      ]);
      setText(error, '');
      setText(source, finished ? 'Finished tasks, from the archive, newest first unless sorted.' : 'Live tasks, from the processor, oldest first unless sorted.');
      table.update(list.items, `${format.count(list.total)} match`);
      pages.show({ count: list.items.length, total: list.total, limit, nextCursor: list.next_cursor });
      if (metrics) fillModels(metrics.by_model.map((model) => model.key));
      if (waiting) blocked.update(waiting.items, waiting.total ? `${format.count(waiting.total)} waiting` : '');
      if (spread) showDistribution(spread);
    } catch (err) {
      setText(error, err.status === 503 ? `${err.reason}: the list cannot be shown now.` : err.message);
    } finally {
      polling = false;
    }
  };

  function showDistribution(spread) {
    if (spread instanceof Error) {
      setText(distributionNote, spread.status === 503 ? 'The archive does not answer: no distribution.' : spread.message);
      return;
    }
    const counts = new Map(spread.buckets.map((bucket) => [bucket.le_ms, bucket.count]));
    const bounds = [...spread.bounds_ms, null];
    const labels = bounds.map((bound, index) => bucketLabel(bound, spread.bounds_ms[index - 1]));
    distribution.setData({ labels, values: { count: bounds.map((bound) => counts.get(bound) ?? 0) } });
    setText(
      distributionNote,
      spread.count ? `${format.count(spread.count)} completed · p50 ${format.duration(spread.p50_ms)} · p95 ${format.duration(spread.p95_ms)} · p99 ${format.duration(spread.p99_ms)}` : 'No completed task in this range matches.',
      'Nearest-rank percentiles of the run times',
    );
  }

  function fillModels(models) {
    const wanted = models.join('\u0000');
    if (modelSelect.dataset.options === wanted) return;
    modelSelect.dataset.options = wanted;
    while (modelSelect.options.length > 1) modelSelect.remove(1);
    for (const model of models) modelSelect.append(h('option', { value: model }, model));
    modelSelect.value = filters.model;
  }

  showCounts(app.socket.latest.get('system'));
  const refresh = refresher({ poll, flush: () => showCounts(app.socket.latest.get('system')) });
  const off = app.socket.on('system', () => refresh.pushed());
  return () => {
    refresh.stop();
    off();
    distribution.destroy();
  };
}
