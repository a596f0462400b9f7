// A worker's page (/workers/<id>), the seed's worker detail view: its status and tasks,
// capabilities, current tasks and queue (the processor's live list), its figures live over
// the WebSocket (`worker:<id>`), historical performance (tasks per hour, success rate, mean
// task time) and resource trends (CPU, GPU, memory, network) over a chosen range, its
// compatibility with each model family, and the tasks it finished lately.

import { MODEL_FAMILIES, apiUrl, getJson } from '../api.js';
import { trendPanel } from '../components/trend-panel.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { loadHistory } from '../history.js';
import { refresher } from '../refresh.js';
import { dataTable } from '../table.js';

const FIGURES = [
  ['status', 'Status', 'idle, busy, overloaded or disconnected', (w) => w.status],
  ['cpu_pct', 'CPU', 'From its last heartbeat', (w) => format.percent(w.cpu_pct)],
  ['gpu_pct', 'GPU', 'From its last heartbeat; none without a GPU', (w) => (w.gpu_pct === undefined || w.gpu_pct === null ? 'none' : format.percent(w.gpu_pct))],
  ['memory_pct', 'Memory', 'From its last heartbeat', (w) => format.percent(w.memory_pct)],
  ['network_pct', 'Network', 'From its last heartbeat, relative to its link', (w) => format.percent(w.network_pct)],
  ['active_tasks', 'Running', 'Tasks running on it now', (w) => format.count(w.active_tasks)],
  ['queued_tasks', 'Waiting', 'Tasks waiting on it now', (w) => format.count(w.queued_tasks)],
  ['completed', 'Completed', 'Since the stream began', (w) => format.count(w.completed)],
  ['failed', 'Failed', 'Since the stream began', (w) => format.count(w.failed)],
  ['success_rate', 'Success rate', 'completed / (completed + failed)', (w) => format.ratio(w.success_rate)],
  ['mean_task_ms', 'Mean task', 'Mean processing time of its completed tasks', (w) => format.duration(w.mean_task_ms)],
  ['tasks_per_hour', 'Tasks / hour', 'Completions in the last 60 minutes', (w) => format.number(w.tasks_per_hour)],
  ['health_score', 'Health', '0 to 100: success rate, less when CPU runs past 80%', (w) => format.number(w.health_score)],
  ['uptime_secs', 'Uptime', 'Since it last joined', (w) => format.duration((w.uptime_secs ?? 0) * 1000)],
  ['last_seen', 'Last seen', 'Its last heartbeat', (w) => format.ago(w.last_seen)],
];

const TREND_METRICS = ['tasks_per_hour', 'success_rate', 'mean_task_ms', 'cpu_pct', 'gpu_pct', 'memory_pct', 'network_pct'];

export function title() {
  return 'Worker';
}

const taskLink = (task) => h('a', { href: `/tasks/${encodeURIComponent(task.task_id)}`, class: 'mono' }, task.task_id);

export function mount(root, app, [workerId]) {
  const headline = h('p', { class: 'muted', id: 'worker-headline' }, 'loading…');
  const error = h('p', { class: 'error', role: 'alert' });
  const capabilities = h('dl', { class: 'capabilities', id: 'worker-capabilities' });
  const values = new Map();
  const figures = h(
    'dl',
    { class: 'figures-list' },
    FIGURES.map(([key, label, tip]) => {
      const value = h('dd', { id: `worker-${key}` }, '–');
      values.set(key, value);
      return h('div', { title: tip }, h('dt', {}, label), value);
    }),
  );
  const running = dataTable({
    id: 'worker-running',
    caption: 'Current tasks',
    csv: { filename: `${workerId}-running` },
    empty: 'Nothing runs on it.',
    rowKey: (task) => task.task_id,
    columns: [
      { key: 'task_id', label: 'Task', title: 'Running on this worker now', value: taskLink },
      { key: 'model', label: 'Model', title: 'What it benchmarks' },
      { key: 'running_for', label: 'For', num: true, title: 'Since it started', value: (task) => format.duration(Date.now() - task.started_at), csv: (task) => Date.now() - task.started_at },
    ],
  });
  const queue = dataTable({
    id: 'worker-queue',
    caption: 'Queue',
    csv: { filename: `${workerId}-queue` },
    empty: 'Nothing waits on it.',
    rowKey: (task) => task.task_id,
    columns: [
      { key: 'task_id', label: 'Task', title: 'Assigned to this worker, waiting for a slot', value: taskLink },
      { key: 'model', label: 'Model', title: 'What it benchmarks' },
      { key: 'priority', label: 'Prio', num: true, title: '0 (lowest) to 9' },
    ],
  });
  const compatibility = dataTable({
    id: 'worker-compatibility',
    caption: 'Compatibility by model family',
    csv: { filename: `${workerId}-compatibility` },
    empty: 'No finished runs on its hardware yet.',
    rowKey: (row) => row.family,
    columns: [
      { key: 'family', label: 'Family', title: 'A model family', value: (row) => h('a', { href: `/task-types/${encodeURIComponent(row.family)}` }, row.family) },
      { key: 'score', label: 'Score', num: true, title: 'Its hardware kind\'s score for the family: 100 x success x relative speed (docs/METRICS.md)', value: (row) => (row.score === null ? '–' : `${format.number(row.score)}%`) },
      { key: 'runs', label: 'Runs', num: true, title: 'Finished runs of the family on its hardware kind, fleet-wide' },
      { key: 'own', label: 'Its success', num: true, title: 'This worker\'s own success rate on the family over the last 24 hours', value: (row) => format.ratio(row.own), csv: (row) => row.own },
    ],
  });
  const recent = dataTable({
    id: 'worker-finished',
    caption: 'Finished lately',
    csv: { filename: `${workerId}-tasks`, href: () => apiUrl('/api/tasks', { status: 'completed', worker_id: workerId, format: 'csv' }) },
    empty: 'It has finished nothing the archive holds.',
    rowKey: (task) => `${task.task_id}-${task.finished_at}`,
    columns: [
      { key: 'task_id', label: 'Task', title: 'Finished on this worker', value: taskLink },
      { key: 'model', label: 'Model', title: 'What it benchmarked' },
      { key: 'status', label: 'End', title: 'completed or failed', value: (task) => h('span', { class: `status-text end-${task.status}` }, task.status) },
      { key: 'processing_ms', label: 'Ran', num: true, title: 'Start to end', value: (task) => format.duration(task.processing_ms) },
      { key: 'finished_at', label: 'Ended', num: true, title: 'When it ended', value: (task) => format.time(task.finished_at) },
      { key: 'error', label: 'Error', title: 'Why it failed, as the worker said', value: (task) => (task.error ? h('span', { class: 'failure-error' }, task.error) : '') },
    ],
  });
  const history = (start, end, signal) =>
    loadHistory(start, end, TREND_METRICS, { signal, path: `/api/metrics/workers/${encodeURIComponent(workerId)}/history` });
  const performance = trendPanel({
    id: 'worker-performance',
    title: 'Historical performance',
    fallback: '1h',
    load: history,
    charts: [
      { title: 'Tasks per hour', description: 'completions in the 60 minutes before each point', series: [{ key: 'tasks_per_hour', label: 'tasks/hour' }], format: format.number, height: 120 },
      { title: 'Success rate', description: 'completed / (completed + failed), since it joined', series: [{ key: 'success_rate', label: 'success' }], format: format.ratio, height: 120 },
      { title: 'Mean task time', description: 'mean processing time of its completed tasks', series: [{ key: 'mean_task_ms', label: 'mean' }], format: format.duration, height: 120 },
    ],
  });
  const resources = trendPanel({
    id: 'worker-resources',
    title: 'Resource trends',
    fallback: '1h',
    load: history,
    markers: false,
    charts: [
      {
        title: 'CPU, GPU, memory, network',
        description: 'percent of each, from its heartbeats, sampled every 10 s',
        series: [
          { key: 'cpu_pct', label: 'CPU' },
          { key: 'gpu_pct', label: 'GPU' },
          { key: 'memory_pct', label: 'memory' },
          { key: 'network_pct', label: 'network', dash: [4, 3] },
        ],
        format: format.percent,
      },
    ],
  });

  root.append(
    h(
      'div',
      { class: 'page worker-detail' },
      h('p', { class: 'small' }, h('a', { href: '/workers' }, '← Workers')),
      h('div', { class: 'page-head' }, h('h1', {}, 'Worker ', h('span', { id: 'worker-id', class: 'mono' }, workerId)), headline),
      error,
      h(
        'div',
        { class: 'columns-3' },
        h('section', { class: 'panel' }, h('h2', {}, 'Capabilities'), capabilities),
        h('section', { class: 'panel' }, running.element, queue.element),
        h('section', { class: 'panel' }, compatibility.element),
      ),
      h('section', { class: 'panel' }, h('h2', {}, 'Now'), figures),
      h('div', { class: 'columns-2' }, performance.element, resources.element),
      h('section', { class: 'panel' }, recent.element),
    ),
  );
  document.title = `${workerId} · fleetwatch`;

  let worker = null;
  const show = (next) => {
    worker = next;
    setText(error, '');
    const caps = next.capabilities;
    setText(headline, `${next.status} · ${format.count(next.active_tasks)} running, ${format.count(next.queued_tasks)} waiting · ${caps?.hardware ?? 'hardware unknown'}`);
    replace(
      capabilities,
      caps
        ? [
            ['Hardware', caps.hardware],
            ['CPU', `${caps.cpu_cores} cores`],
            ['GPU', caps.gpu_model ? `${caps.gpu_model}${caps.gpu_memory_gb ? `, ${format.number(caps.gpu_memory_gb)} GB` : ''}` : 'none'],
            ['Memory', `${format.number(caps.memory_gb)} GB`],
            ['Slots', `${caps.slots} task${caps.slots === 1 ? '' : 's'} at once`],
            ['Tags', caps.tags?.length ? caps.tags.join(', ') : 'none'],
          ].map(([label, value]) => h('div', {}, h('dt', {}, label), h('dd', {}, value)))
        : h('p', { class: 'muted' }, 'Hardware not reported.'),
    );
    for (const [key, , , display] of FIGURES) setText(values.get(key), display(next));
    values.get('status').className = `status-text status-${next.status}`;
    values.get('last_seen').title = `${format.dateTime(next.last_seen)} (${format.time(next.last_seen)})`;
  };

  let polling = false;
  let polls = 0;
  const poll = async () => {
    if (polling) return;
    polling = true;
    polls += 1;
    try {
      const current = await getJson(`/api/metrics/workers/${encodeURIComponent(workerId)}`);
      show(current);
      const [runs, waits, tasks, finished, own] = await Promise.all([
        getJson('/api/tasks', { worker_id: workerId, status: 'running', sort: 'started_at', limit: 50 }),
        getJson('/api/tasks', { worker_id: workerId, status: 'assigned', sort: 'priority', order: 'desc', limit: 50 }),
        getJson('/api/metrics/tasks').catch(() => null),
        polls % 5 === 1 ? getJson('/api/tasks', { worker_id: workerId, status: 'completed', limit: 20 }).catch(() => null) : null,
        polls % 5 === 1 ? getJson('/api/metrics/tasks/stats', { worker_id: workerId, by: 'family', start_time: Date.now() - 86_400_000 }).catch(() => null) : null,
      ]);
      running.update(runs.items, runs.total > runs.items.length ? `${runs.total} in all` : '');
      queue.update(waits.items);
      if (finished) recent.update(finished.items, finished.total ? `${format.count(finished.total)} in the archive` : '');
      if (tasks) showCompatibility(tasks.compatibility, own?.items);
    } catch (err) {
      if (err.status === 404) {
        setText(headline, '');
        setText(error, `No worker ${workerId} is known (yet): it has not reported, or it retired.`);
      } else {
        setText(error, err.message);
      }
    } finally {
      polling = false;
    }
    if (polls % 15 === 0) {
      performance.reload();
      resources.reload();
    }
  };

  let ownByFamily = new Map();
  function showCompatibility(pairs, own) {
    if (own) ownByFamily = new Map(own.map((row) => [row.key, row.success_rate]));
    const kind = worker?.capabilities?.hardware;
    const rows = MODEL_FAMILIES.map((family) => {
      const pair = (pairs ?? []).find((candidate) => candidate.hardware === kind && candidate.family === family);
      return { family, score: pair?.score ?? null, runs: pair?.runs ?? 0, own: ownByFamily.get(family) ?? null };
    });
    compatibility.update(rows, kind ? `for ${kind} workers` : '');
  }

  const refresh = refresher({ poll, flush: () => worker && show({ ...worker, ...app.socket.latest.get(`worker:${workerId}`) }) });
  const unsubscribe = [app.socket.follow([`worker:${workerId}`]), app.socket.on(`worker:${workerId}`, () => refresh.pushed())];
  performance.start();
  resources.start();
  return () => {
    refresh.stop();
    for (const off of unsubscribe) off();
    performance.destroy();
    resources.destroy();
  };
}
