// The overview page (/), the seed's main dashboard: a status line, the worker grid, task
// distribution (the queue, task -> worker assignments, and each family and model), the
// performance trends, resource utilisation, and the alerts firing with the latest task
// failures. System figures and alerts come live over the WebSocket; workers, tasks and
// the health verdict from the REST API, at the refresh rate chosen in the header. The
// grid's status filter is in the URL (`?status=`).

import { getJson } from '../api.js';
import { alertPanel } from '../components/alert-list.js';
import { taskFlow } from '../components/task-flow.js';
import { taskTable } from '../components/task-table.js';
import { trendsPanel } from '../components/trends.js';
import { utilisationBars } from '../components/utilisation.js';
import { workerGrid } from '../components/worker-grid.js';
import { h, setText } from '../dom.js';
import * as format from '../format.js';
import { refresher } from '../refresh.js';
import { readQuery, writeQuery } from '../url-state.js';

const HEALTH_MEANING = {
  waiting: 'No metrics yet: is the processor running?',
  healthy: 'Metrics are current and no alert is firing',
  degraded: 'An alert is firing',
  critical: 'A critical alert is firing, or over a quarter of the workers are disconnected',
  stale: 'The last metrics are over 10 s old',
};

export function mount(root, app) {
  const statusLine = buildStatusLine();
  let status = readQuery().status ?? '';
  const grid = workerGrid({
    status,
    onFilter: (chosen) => {
      status = chosen;
      writeQuery({ status: chosen });
      refresh.now();
    },
  });
  const flow = taskFlow();
  const families = taskTable({ id: 'tasks-by-family', caption: 'By model family', keyLabel: 'Family', link: (family) => `/task-types/${encodeURIComponent(family)}` });
  const models = taskTable({ id: 'tasks-by-model', caption: 'By model', keyLabel: 'Model' });
  const tasksError = h('p', { class: 'error small', role: 'alert' });
  const distribution = h(
    'section',
    { class: 'panel distribution', 'aria-labelledby': 'distribution-title' },
    h('h2', { id: 'distribution-title' }, 'Task distribution'),
    tasksError,
    flow.element,
    h('div', { class: 'scroll-x' }, families.element),
    h('div', { class: 'scroll-y' }, models.element),
  );
  const trends = trendsPanel(app.trends);
  const utilisation = utilisationBars();
  const alerts = alertPanel();
  const workersError = h('p', { class: 'error small', role: 'alert' });
  grid.element.insertBefore(workersError, grid.element.children[1]);

  root.append(
    h(
      'div',
      { class: 'overview' },
      statusLine.element,
      h('div', { class: 'overview-columns' }, grid.element, distribution, trends.element),
      utilisation.element,
      alerts.element,
    ),
  );

  // What the WebSocket delivered, drawn at the refresh rate.
  const flush = () => {
    const system = app.socket.latest.get('system');
    if (system) {
      statusLine.showSystem(system);
      utilisation.update(system.utilisation);
      grid.setFleetCounts(system.workers);
    }
    alerts.updateFiring(app.socket.latest.get('alerts_firing'));
    trends.draw();
  };

  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      await Promise.all([
        getJson('/api/status').then(statusLine.showStatus, (err) => statusLine.showStatusError(err)),
        getJson('/api/metrics/tasks').then(
          (tasks) => {
            setText(tasksError, '');
            families.update(tasks.by_family);
            models.update(tasks.by_model);
            alerts.updateFailures(tasks.recent_failures);
          },
          (err) => setText(tasksError, err.status === 503 ? 'No task metrics yet: is the processor running?' : err.message),
        ),
        getJson('/api/workers', { sort: 'attention', status, limit: app.settings.max_workers_shown }).then(
          (list) => {
            setText(workersError, '');
            grid.update(list);
          },
          (err) => setText(workersError, err.message),
        ),
        flow.poll(),
      ]);
    } finally {
      polling = false;
    }
  };

  const refresh = refresher({ poll, flush });
  const unsubscribe = [
    app.socket.on('system', () => refresh.pushed()),
    app.socket.follow(['alerts']),
    app.socket.on('alerts_firing', () => refresh.pushed()),
  ];
  trends.start();
  flush();

  return () => {
    refresh.stop();
    for (const off of unsubscribe) off();
    trends.destroy();
  };
}

/** The top strip: health, workers, tasks, throughput and the WebSocket's state. */
function buildStatusLine() {
  // The ids below are kept as the first dashboard had them; end-to-end tests read them.
  const health = h('span', { id: 'health', class: 'waiting', title: HEALTH_MEANING.waiting }, 'waiting');
  const figure = (id, label, title) => {
    const value = h('span', { id }, '–');
    return { value, element: h('span', { class: 'figure', title }, value, ' ', h('span', { class: 'figure-label' }, label)) };
  };
  const active = h('span', { id: 'workers-active' }, '–');
  const total = h('span', { id: 'workers-total' }, '–');
  const workers = h(
    'span',
    { class: 'status-group', title: 'Workers active (connected and running tasks) / all workers known' },
    h('span', { class: 'group-label' }, 'Workers'),
    h('span', { class: 'figure' }, active, ' / ', total),
  );
  const running = figure('tasks-running', 'running', 'Tasks running now');
  const queued = figure('tasks-queued-count', 'queued', 'Tasks waiting to start now (queued or assigned to a worker)');
  const completed = figure('tasks-completed', 'completed', 'Tasks completed since the stream began');
  const failed = figure('tasks-failed', 'failed', 'Tasks that failed since the stream began');
  const tasks = h(
    'span',
    { class: 'status-group' },
    h('span', { class: 'group-label' }, 'Tasks'),
    running.element,
    queued.element,
    completed.element,
    failed.element,
  );
  const throughput = figure('throughput', 'tasks/min', 'Tasks completed in the last 60 s');
  const updated = h('span', { class: 'muted small', id: 'updated-at', title: 'When the processor derived these figures' });
  const element = h(
    'section',
    { class: 'status-line panel', 'aria-label': 'System overview' },
    h('span', { class: 'status-group' }, h('span', { class: 'group-label' }, 'Status'), health),
    workers,
    tasks,
    h('span', { class: 'status-group' }, throughput.element),
    h('span', { class: 'status-end' }, updated),
  );

  return {
    element,
    showSystem(system) {
      setText(active, format.count(system.workers?.active));
      setText(total, format.count(system.workers?.total));
      setText(running.value, format.count(system.tasks?.running));
      setText(queued.value, format.count((system.tasks?.queued ?? 0) + (system.tasks?.assigned ?? 0)));
      setText(completed.value, format.count(system.tasks?.completed));
      setText(failed.value, format.count(system.tasks?.failed));
      setText(throughput.value, format.number(system.throughput_per_min));
      setText(updated, `updated ${format.time(system.time)}`);
    },
    showStatus(status) {
      const verdict = typeof status?.status === 'string' ? status.status : 'waiting';
      health.className = HEALTH_MEANING[verdict] ? verdict : 'waiting';
      setText(health, verdict, HEALTH_MEANING[verdict] ?? verdict);
    },
    showStatusError(err) {
      health.className = 'stale';
      setText(health, 'unreachable', err.message);
    },
  };
}
