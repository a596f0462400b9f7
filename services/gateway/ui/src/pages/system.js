// The System page (/system): how the monitoring system itself is doing. Each service's
// health from its health reports (GET /api/services), the coordinator's and load
// balancer's health and the archive's state (GET /api/status), the resource pools per
// hardware kind (GET /api/workers summary), the queue now and the processing rates (the
// `system` messages on the WebSocket, GET /api/metrics/system without it), and trends of
// utilisation, workers, queue lengths, throughput and events folded, over a range kept in
// the URL. Service filters and every table's sort are in the URL too.

import { getJson } from '../api.js';
import { servicesPanel } from '../components/system-services.js';
import { stateBadge } from '../components/state-badge.js';
import { trendPanel } from '../components/trend-panel.js';
import { utilisationBars } from '../components/utilisation.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { refresher } from '../refresh.js';
import { dataTable, sortedTable } from '../table.js';

const COMPONENT_NAMES = { coordinator: 'Coordinator', load_balancer: 'Load balancer' };
const HEALTH_MEANING = {
  healthy: 'It says it works as it should',
  degraded: 'It works, but says something is wrong',
  down: 'It does not work, or does not answer',
};

export function mount(root, app) {
  const live = app.trends;
  const updated = h('p', { class: 'muted small', id: 'system-updated', title: 'When the processor derived the figures below' }, 'waiting for the first figures…');
  const services = servicesPanel();
  const components = componentsPanel();
  const archive = archivePanel();
  const queue = queuePanel();
  const pools = poolsPanel();
  const utilisation = utilisationBars();
  const trends = systemTrends(live);

  root.append(
    h(
      'div',
      { class: 'page system-page' },
      h('div', { class: 'page-head' }, h('h1', {}, 'System'), updated),
      h('div', { class: 'columns-3' }, components.element, archive.element, queue.element),
      services.element,
      h('div', { class: 'columns-2' }, pools.element, utilisation.element),
      trends.element,
    ),
  );

  const showSystem = (system) => {
    if (!system) return;
    queue.show(system, live);
    utilisation.update(system.utilisation);
    setText(updated, `figures of ${format.time(system.time)}`);
  };

  let lastDraw = 0;
  const flush = () => {
    showSystem(app.socket.latest.get('system'));
    // The charts redraw at most once a second, whatever the tick.
    if (Date.now() - lastDraw >= 1000) {
      lastDraw = Date.now();
      trends.draw();
    }
  };

  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      const asks = [
        getJson('/api/services').then(services.update, services.showError),
        getJson('/api/status').then(
          (status) => {
            components.show(status.components, status.status);
            archive.show(status.archive);
          },
          (err) => {
            components.showError(err);
            archive.showError(err);
          },
        ),
        getJson('/api/workers', { limit: 1 }).then((list) => pools.update(list.summary?.by_hardware), pools.showError),
      ];
      // Without the live connection the figures come from the REST API.
      if (app.socket.state !== 'live') {
        asks.push(
          getJson('/api/metrics/system').then(
            (system) => {
              live.push(system);
              showSystem(system);
              trends.draw();
            },
            (err) => queue.showError(err),
          ),
        );
      }
      await Promise.all(asks);
    } finally {
      polling = false;
    }
  };

  const refresh = refresher({ poll, flush });
  const unsubscribe = [app.socket.on('system', () => refresh.pushed())];
  trends.start();
  flush();

  return () => {
    refresh.stop();
    for (const off of unsubscribe) off();
    trends.destroy();
  };
}

/** The coordinator's and load balancer's health (and any other component that reports). */
function componentsPanel() {
  const list = h('ul', { class: 'component-list', id: 'components' });
  const note = h('p', { class: 'muted small', id: 'components-note' });
  const element = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'components-title' },
    h('h2', { id: 'components-title', title: 'Health the coordinator and load balancer last reported (component_status events)' }, 'Coordinator and load balancer'),
    list,
    note,
  );
  return {
    element,
    show(components, verdict) {
      const entries = Object.entries(components ?? {}).sort(([a], [b]) => {
        const rank = (name) => (name === 'coordinator' ? 0 : name === 'load_balancer' ? 1 : 2);
        return rank(a) - rank(b) || a.localeCompare(b);
      });
      const missing = [];
      if (!components?.coordinator) missing.push('No coordinator is polled: the collector has no coordinator to ask, and none reports its health.');
      if (!components?.load_balancer) missing.push('No load balancer reports its health.');
      if (verdict === 'waiting') missing.unshift('No metrics yet: is the processor running?');
      setText(note, missing.join(' '));
      replace(
        list,
        entries.map(([name, state]) =>
          h(
            'li',
            { 'data-component': name },
            h('span', { class: 'component-name' }, COMPONENT_NAMES[name] ?? name),
            stateBadge(state.health, HEALTH_MEANING[state.health] ?? String(state.health)),
            h('span', { class: 'component-message', title: 'What it said last' }, String(state.message ?? '')),
            h(
              'span',
              // A coordinator the collector polls is reported on every poll: its last report is the last poll.
              { class: 'muted small component-since', title: `${state.health} since ${format.dateTime(state.since)}; last report ${format.dateTime(state.reported_at)} (for a polled coordinator, its last poll)` },
              `${state.health} for ${format.duration(Date.now() - state.since)}, reported ${format.ago(state.reported_at)}`,
            ),
          ),
        ),
      );
    },
    showError(err) {
      replace(list);
      setText(note, `The components' health could not be read: ${err.message}`);
    },
  };
}

/** The active archiver, those waiting to take over, and its lag behind each stream. */
function archivePanel() {
  const active = h('span', { id: 'archive-active', class: 'mono' }, '–');
  const standby = h('span', { id: 'archive-standby' }, '–');
  const note = h('p', { class: 'muted small', id: 'archive-note' });
  const streams = dataTable({
    id: 'archive-streams',
    csv: { filename: 'archive-lag' },
    empty: 'No lag reported.',
    rowKey: (row) => row.stream,
    columns: [
      { key: 'stream', label: 'Stream', title: 'The JetStream stream the archiver reads' },
      { key: 'lag_messages', label: 'Behind', title: 'Messages in the stream not yet archived (0 when caught up)', num: true, value: (row) => format.count(row.lag_messages) },
      { key: 'lag_seconds', label: 'Oldest waiting', title: 'Age of the oldest message not yet archived (0 when caught up)', num: true, value: (row) => format.duration(row.lag_seconds * 1000) },
    ],
  });
  const element = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'archive-title' },
    h('h2', { id: 'archive-title', title: 'The archiver keeps the history the trends and the history endpoints read' }, 'Archive'),
    h(
      'dl',
      { class: 'cards archive-cards' },
      h('div', { class: 'card', title: 'The archiver that holds the lease and archives now' }, h('dt', {}, 'Active archiver'), h('dd', {}, active)),
      h('div', { class: 'card', title: 'Archivers waiting to take over should the active one stop' }, h('dt', {}, 'Standby'), h('dd', {}, standby)),
    ),
    note,
    streams.element,
  );
  return {
    element,
    show(archive) {
      setText(active, archive?.active ?? 'none');
      setText(standby, format.count(archive?.standby));
      setText(note, archive?.active ? '' : 'No archiver is active: history, trends before this page opened and the event list are unavailable.');
      streams.update(archive?.streams ?? []);
    },
    showError(err) {
      setText(note, `The archive's state could not be read: ${err.message}`);
    },
  };
}

/** The queue now and the processing rates. */
function queuePanel() {
  const card = (id, label, title) => {
    const value = h('dd', { id }, '–');
    return { value, element: h('div', { class: 'card', title }, h('dt', {}, label), value) };
  };
  const cards = {
    queued: card('sys-queued', 'Queued', 'Tasks waiting for a worker now'),
    assigned: card('sys-assigned', 'Assigned', 'Tasks placed on a worker, not started yet'),
    running: card('sys-running', 'Running', 'Tasks running now'),
    p50: card('sys-queue-p50', 'Queue p50', 'Median time tasks waited to start (last 1000 starts)'),
    p95: card('sys-queue-p95', 'Queue p95', '95th percentile of the time tasks waited to start (last 1000 starts)'),
    p99: card('sys-queue-p99', 'Queue p99', '99th percentile of the time tasks waited to start (last 1000 starts)'),
    throughput: card('sys-throughput', 'Tasks/min', 'Tasks completed in the last 60 s'),
    events: card('sys-events-rate', 'Events/min', 'Events the processor folded into the fleet state over the last minute (the rise of events_seq)'),
    processing: card('sys-processing-p50', 'Run p50', 'Median time tasks ran (last 1000 completions)'),
    efficiency: card('sys-efficiency', 'Best fit', 'Share of the last 1000 assignments that went to a best-fit worker (scheduling efficiency)'),
  };
  const error = h('p', { class: 'error small', role: 'alert' });
  const element = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'queue-title' },
    h('h2', { id: 'queue-title', title: 'Queue statistics and processing rates, live' }, 'Queue and processing'),
    error,
    h('dl', { class: 'cards queue-cards' }, Object.values(cards).map((entry) => entry.element)),
  );
  return {
    element,
    show(system, live) {
      setText(error, '');
      setText(cards.queued.value, format.count(system.tasks?.queued));
      setText(cards.assigned.value, format.count(system.tasks?.assigned));
      setText(cards.running.value, format.count(system.tasks?.running));
      setText(cards.p50.value, format.duration(system.queue_time_ms?.p50));
      setText(cards.p95.value, format.duration(system.queue_time_ms?.p95));
      setText(cards.p99.value, format.duration(system.queue_time_ms?.p99));
      setText(cards.throughput.value, format.number(system.throughput_per_min));
      setText(cards.events.value, format.number(live.latest('events_seq_per_min')));
      setText(cards.processing.value, format.duration(system.processing_time_ms?.p50));
      setText(cards.efficiency.value, format.ratio(system.scheduling_efficiency));
    },
    showError(err) {
      setText(error, err.status === 503 ? 'No metrics yet: is the processor running?' : `The system metrics could not be read: ${err.message}`);
    },
  };
}

/** Workers, slots and tasks per hardware kind, the slots in use as bars. */
function poolsPanel() {
  let widest = 1;
  const used = (row) => (row.slots > 0 ? row.running / row.slots : null);
  const table = sortedTable({
    id: 'pools',
    caption: 'Resource pools',
    urlKey: 'pool_sort',
    sort: { key: 'hardware', order: 'asc' },
    csv: { filename: 'resource-pools' },
    empty: 'No workers yet.',
    rowKey: (row) => row.hardware,
    columns: [
      { key: 'hardware', label: 'Hardware', title: 'The kind of accelerator the workers have' },
      { key: 'total', label: 'Workers', title: 'Workers of this kind (every status)', num: true, value: (row) => format.count(row.total) },
      { key: 'idle', label: 'Idle', title: 'Connected, running nothing', num: true, value: (row) => format.count(row.idle) },
      { key: 'busy', label: 'Busy', title: 'Connected, running tasks', num: true, value: (row) => format.count(row.busy) },
      { key: 'overloaded', label: 'Over', title: 'CPU at 90% or more, or more tasks waiting than slots', num: true, value: (row) => format.count(row.overloaded) },
      { key: 'disconnected', label: 'Gone', title: 'No heartbeat for 15 s, or reported offline', num: true, value: (row) => format.count(row.disconnected) },
      { key: 'queued', label: 'Waiting', title: 'Tasks waiting on these workers (assigned, not started)', num: true, value: (row) => format.count(row.queued) },
      {
        key: 'used',
        label: 'Slots used',
        title: 'Tasks running / slots (tasks at once) of the connected workers; the bar is to scale across kinds',
        num: true,
        sortValue: used,
        value: (row) => {
          const share = used(row);
          const fill = Math.max(0, Math.min(1, share ?? 0)) * 100;
          return h(
            'span',
            { class: 'pool-use', title: `${row.hardware}: ${format.count(row.running)} of ${format.count(row.slots)} slots running tasks; the bar's length is the pool's size beside the largest` },
            h('span', { class: 'bar-text' }, `${format.count(row.running)} / ${format.count(row.slots)} (${format.ratio(share)})`),
            h(
              'span',
              { class: 'pool-bar', style: `width:${((row.slots / widest) * 100).toFixed(1)}%`, 'aria-hidden': 'true' },
              h('span', { class: `pool-fill${share >= 0.9 ? ' pool-full' : ''}`, style: `width:${fill.toFixed(1)}%` }),
            ),
          );
        },
        csv: (row) => used(row),
      },
      { key: 'slots', label: 'Slots', title: 'Tasks these workers can run at once', num: true, value: (row) => format.count(row.slots) },
    ],
  });
  const error = h('p', { class: 'error small', role: 'alert' });
  const element = h('section', { class: 'panel pools', 'aria-label': 'Resource pools' }, error, table.element);
  return {
    element,
    update(kinds) {
      setText(error, '');
      const rows = Array.isArray(kinds) ? kinds : [];
      // The bar's full width is the largest pool; its filled part the slots in use.
      widest = Math.max(1, ...rows.map((row) => row.slots ?? 0));
      table.update(rows);
    },
    showError(err) {
      setText(error, `The resource pools could not be read: ${err.message}`);
    },
  };
}

/** Utilisation, workers by status, queue lengths, throughput and events folded, over time. */
function systemTrends(live) {
  const charts = [
    {
      title: 'Utilisation',
      description: 'mean CPU, GPU, memory and network use over connected workers, percent',
      series: [
        { key: 'utilisation_cpu', label: 'CPU' },
        { key: 'utilisation_gpu', label: 'GPU' },
        { key: 'utilisation_memory', label: 'memory' },
        { key: 'utilisation_network', label: 'network', dash: [4, 3] },
      ],
      format: (value) => format.percent(value),
    },
    {
      title: 'Workers by status',
      description: 'workers idle, busy, overloaded and disconnected',
      series: [
        { key: 'workers_idle', label: 'idle' },
        { key: 'workers_busy', label: 'busy' },
        { key: 'workers_overloaded', label: 'overloaded' },
        { key: 'workers_disconnected', label: 'disconnected', dash: [4, 3] },
      ],
      format: (value) => format.count(value),
    },
    {
      title: 'Queue lengths',
      description: 'tasks queued, assigned to a worker and running',
      series: [
        { key: 'tasks_queued', label: 'queued' },
        { key: 'tasks_assigned', label: 'assigned' },
        { key: 'tasks_running', label: 'running' },
      ],
      format: (value) => format.count(value),
    },
    {
      title: 'Queue time',
      description: 'p50, p95 and p99 of the time tasks waited to start',
      series: [
        { key: 'queue_time_ms_p50', label: 'p50' },
        { key: 'queue_time_ms_p95', label: 'p95' },
        { key: 'queue_time_ms_p99', label: 'p99', dash: [4, 3] },
      ],
      format: (value) => format.duration(value),
    },
    {
      title: 'Throughput',
      description: 'tasks completed per minute (over the last 60 s at each point), and failures per minute',
      series: [
        { key: 'throughput_per_min', label: 'completed/min' },
        { key: 'tasks_failed_per_min', label: 'failed/min', dash: [4, 3] },
      ],
      format: (value) => format.number(value),
    },
    {
      title: 'Events folded',
      description: 'events the processor folded into the fleet state per minute (the rise of events_seq over the minute before)',
      series: [{ key: 'events_seq_per_min', label: 'events/min' }],
      format: (value) => format.number(value),
    },
  ];
  return trendPanel({ id: 'system-trends', title: 'Trends', charts, live });
}
