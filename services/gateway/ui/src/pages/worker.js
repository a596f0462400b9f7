// A worker's page (/workers/<id>): its status, hardware and latest figures from
// GET /api/metrics/workers/{id}, redrawn at the refresh rate. The seed's fuller worker view
// (current tasks, history charts) comes with the worker history endpoint.

import { getJson } from '../api.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { refresher } from '../refresh.js';

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

export function title() {
  return 'Worker';
}

export function mount(root, _app, [workerId]) {
  const heading = h('h1', {}, 'Worker ', h('span', { id: 'worker-id' }, workerId));
  const error = h('p', { class: 'error', role: 'alert' });
  const capabilities = h('p', { class: 'muted', id: 'worker-capabilities' }, 'loading…');
  const values = new Map();
  const list = h(
    'dl',
    { class: 'figures-list' },
    FIGURES.map(([key, label, tip]) => {
      const value = h('dd', { id: `worker-${key}` }, '–');
      values.set(key, value);
      return h('div', { title: tip }, h('dt', {}, label), value);
    }),
  );
  root.append(
    h(
      'section',
      { class: 'panel narrow worker-detail' },
      h('p', { class: 'small' }, h('a', { href: '/' }, '← Overview')),
      heading,
      capabilities,
      error,
      list,
    ),
  );
  document.title = `${workerId} · fleetwatch`;

  const poll = async () => {
    try {
      const worker = await getJson(`/api/metrics/workers/${encodeURIComponent(workerId)}`);
      setText(error, '');
      const caps = worker.capabilities;
      if (caps) {
        replace(
          capabilities,
          `${caps.hardware}${caps.gpu_model ? ` · ${caps.gpu_model}` : ''} · ${caps.cpu_cores} cores · ${format.number(caps.memory_gb)} GB memory` +
            `${caps.gpu_memory_gb ? ` · ${format.number(caps.gpu_memory_gb)} GB GPU memory` : ''} · ${caps.slots} slots` +
            `${caps.tags?.length ? ` · tags: ${caps.tags.join(', ')}` : ''}`,
        );
      } else {
        setText(capabilities, 'Hardware not reported.');
      }
      for (const [key, , , show] of FIGURES) setText(values.get(key), show(worker));
      values.get('status').className = `status-text status-${worker.status}`;
      values.get('last_seen').title = format.dateTime(worker.last_seen) + ` (${format.time(worker.last_seen)})`;
    } catch (err) {
      setText(capabilities, '');
      setText(error, err.status === 404 ? `No worker ${workerId} is known (yet).` : err.message);
    }
  };
  const refresh = refresher({ poll });
  return () => refresh.stop();
}
