// One model family's page (/task-types/<family>), the seed's "Task Type View": its counts
// (active, queued, completed, failed); three columns: the distribution of its tasks by
// model, each model's completion (success) rate, and the assignment of its tasks by worker
// type; the throughput of each model compared and how long its tasks ran, over the range
// chosen (in the URL); its scheduling efficiency (average queue time, optimal worker
// match); and a table of its models, sortable (in the URL) with CSV. Live figures come
// from the `tasks` topic, the assignment from GET /api/tasks?group_by=hardware, the range's
// from the archive (GET /api/metrics/tasks/stats and /distribution).

import { getJson } from '../api.js';
import { BarChart } from '../charts.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { rangePicker } from '../range.js';
import { refresher } from '../refresh.js';
import { groupColumns, problemText, successTone, widestThroughput } from './performance-groups.js';
import { sortedTable } from '../table.js';
import { liveTasks } from './task-types-live.js';

/** Redraw the lists and the table at most this often from the socket. */
const REDRAW_MS = 1000;
/** Read a following range's figures again this often. */
const RANGE_REFRESH_MS = 15_000;

/** Tasks of a group seen in all: waiting, running and finished. */
const seen = (row) => (row.queued ?? 0) + (row.running ?? 0) + (row.completed ?? 0) + (row.failed ?? 0);

/** A bucket bound, short: "250 ms", "2.5 s", "2 min", "1 h". */
function bound(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${ms / 1000} s`;
  if (ms < 3_600_000) return `${Number((ms / 60_000).toFixed(1))} min`;
  return `${Number((ms / 3_600_000).toFixed(1))} h`;
}

/** A bucket's bound as a label: "≤ 2.5 s", or "> 1 h" past the last. */
function bucketLabel(le, bounds) {
  if (le === null || le === undefined) return `> ${bound(bounds.at(-1))}`;
  return `≤ ${bound(le)}`;
}

/** Every bucket from the first to the last that holds runs, the empty ones between included. */
function fillBuckets(distribution) {
  const bounds = Array.isArray(distribution?.bounds_ms) ? distribution.bounds_ms : [];
  const counts = new Map((distribution?.buckets ?? []).map((bucket) => [bucket.le_ms ?? null, bucket.count ?? 0]));
  const all = [...bounds, null];
  const held = all.map((le, index) => (counts.get(le) ? index : -1)).filter((index) => index >= 0);
  if (held.length === 0) return { labels: [], counts: [] };
  const picked = all.slice(held[0], held.at(-1) + 1);
  return { labels: picked.map((le) => bucketLabel(le, bounds)), counts: picked.map((le) => counts.get(le) ?? 0) };
}

export function familyPage(root, app, family) {
  const live = liveTasks(app);
  const updated = h('p', { class: 'muted small', id: 'tt-updated', title: 'When the processor derived the figures shown' }, 'waiting for figures…');
  const error = h('p', { class: 'error', role: 'alert', id: 'tt-error' });
  const notice = h('p', { class: 'muted', id: 'tt-notice', role: 'status' });

  // The header: the seed's Active | Queued | Completed | Failed, and the family's rates.
  const figure = (id, label, title) => {
    const value = h('span', { id, class: 'figure' }, '–');
    return { value, element: h('span', { class: 'tt-count', title }, h('span', { class: 'group-label' }, label), value) };
  };
  const counts = {
    active: figure('tt-active', 'Active', 'Tasks of this family running now'),
    queued: figure('tt-queued', 'Queued', 'Tasks of this family waiting to start now (queued or assigned)'),
    completed: figure('tt-completed', 'Completed', 'Tasks of this family completed since the stream began'),
    failed: figure('tt-failed', 'Failed', 'Tasks of this family that failed since the stream began'),
    success: figure('tt-success', 'Success', 'completed / (completed + failed)'),
    throughput: figure('tt-throughput', 'Tasks/min', 'Completions of this family in the last 60 s'),
  };
  const header = h('section', { class: 'panel status-line tt-counts', 'aria-label': `${family} tasks now` }, Object.values(counts).map((item) => item.element));

  // The three columns.
  const distribution = h('ul', { class: 'tt-bars', id: 'tt-distribution' });
  const completion = h('ul', { class: 'tt-bars', id: 'tt-completion' });
  const assignment = h('ul', { class: 'tt-hardware', id: 'tt-assignment' });
  const assignmentNote = h('p', { class: 'muted small', id: 'tt-assignment-note' });
  const compatibility = h('ul', { class: 'tt-bars', id: 'tt-compatibility' });
  const column = (id, title, tip, ...content) =>
    h('section', { class: 'panel', id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title`, title: tip }, title), ...content);
  const columns = h(
    'div',
    { class: 'columns-3 tt-columns' },
    column('tt-distribution-panel', 'Distribution', 'Each model\'s share of this family\'s tasks seen (queued, running and finished)', h('p', { class: 'muted small tt-sub' }, 'By model'), distribution),
    column('tt-completion-panel', 'Completion rate', 'Each model\'s success rate: completed / (completed + failed)', h('p', { class: 'muted small tt-sub' }, 'Success rate'), completion),
    column(
      'tt-assignment-panel',
      'Worker assignment',
      'This family\'s tasks placed on workers now (running, and assigned waiting to start), by worker type',
      h('p', { class: 'muted small tt-sub' }, 'Assignment by worker type'),
      assignment,
      assignmentNote,
      h('h3', { class: 'tt-sub-title', title: 'Compatibility score of each hardware kind for this family: 100 x success x speed' }, 'Compatibility by hardware'),
      compatibility,
    ),
  );

  // Over the range: throughput by model and the run-time distribution.
  const picker = rangePicker({ fallback: '1h', onChange: () => loadRange() });
  const throughputChart = new BarChart({
    title: 'Throughput by model',
    description: 'Completions per minute of each model over the range chosen (completed in the range / its length)',
    series: [{ key: 'throughput', label: 'tasks/min' }],
    format: (value) => format.number(value),
  });
  const durationChart = new BarChart({
    title: 'Run time distribution',
    description: 'How many of this family\'s completed tasks ran for how long, over the range chosen',
    series: [{ key: 'count', label: 'tasks' }],
    format: (value) => format.count(value),
  });
  const throughputNote = h('p', { class: 'muted small', id: 'tt-throughput-note', role: 'status' });
  const percentiles = h('p', { class: 'small tt-percentiles', id: 'tt-percentiles', title: 'Nearest-rank percentiles of the run times over the range' });
  const rangePanel = h(
    'section',
    { class: 'panel', id: 'tt-range', 'aria-labelledby': 'tt-range-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'tt-range-title', title: 'Figures over the range chosen, from the archive' }, 'Throughput comparison and run times'), picker.element),
    throughputNote,
    h('div', { class: 'columns-2' }, throughputChart.element, h('div', {}, durationChart.element, percentiles)),
  );

  // Scheduling efficiency.
  const scheduling = {
    queueMean: figure('tt-queue-mean', 'Average queue time', 'Mean wait of this family\'s last 200 starts (start − last queued)'),
    queueP95: figure('tt-queue-p95', 'Queue p95', '95th percentile wait of this family\'s last 200 starts'),
    bestFit: figure('tt-best-fit', 'Optimal worker match', 'Share of this family\'s last 200 assignments that went to a best-fit worker'),
    rangeQueue: figure('tt-range-queue', 'Average queue time (range)', 'Mean wait of the tasks of this family that finished in the range chosen'),
  };
  const schedulingPanel = h(
    'section',
    { class: 'panel', id: 'tt-scheduling', 'aria-labelledby': 'tt-scheduling-title' },
    h('h2', { id: 'tt-scheduling-title', title: 'How quickly and how well this family\'s tasks are placed' }, 'Scheduling efficiency'),
    h('div', { class: 'status-line tt-scheduling' }, Object.values(scheduling).map((item) => item.element)),
  );

  // The models table: live figures and the range's.
  let rangeByModel = new Map();
  let widest = 1;
  let familyTotal = 0;
  const rangeColumn = (key, label, title, pick, show) => ({
    key,
    label,
    title,
    num: true,
    sortValue: (row) => pick(rangeByModel.get(row.key)),
    value: (row) => show(pick(rangeByModel.get(row.key))),
  });
  const models = sortedTable({
    id: 'tt-models',
    caption: 'Models',
    urlKey: 'sort',
    sort: { key: 'throughput_per_min', order: 'desc' },
    csv: { filename: `task-type-${family}-models` },
    empty: 'No tasks of this family yet.',
    columns: [
      { key: 'key', label: 'Model', title: 'The model the tasks benchmark', value: (row) => h('span', { class: 'model-name' }, row.key) },
      {
        key: 'share',
        label: 'Share',
        title: 'Its share of this family\'s tasks seen (queued, running and finished)',
        num: true,
        sortValue: (row) => (familyTotal ? seen(row) / familyTotal : null),
        value: (row) => format.ratio(familyTotal ? seen(row) / familyTotal : null),
      },
      ...groupColumns({
        widest: () => widest,
        include: ['running', 'queued', 'completed', 'failed', 'throughput_per_min', 'success_rate', 'run_p50', 'queue_mean', 'best_fit_ratio'],
      }),
      rangeColumn('range_completed', 'Done (range)', 'Completed in the range chosen', (stats) => stats?.completed, format.count),
      rangeColumn('range_success', 'Success (range)', 'Success rate in the range chosen', (stats) => stats?.success_rate, format.ratio),
      rangeColumn('range_run_mean', 'Run mean (range)', 'Mean run time of those completed in the range', (stats) => stats?.mean_processing_ms, format.duration),
      rangeColumn('range_throughput', 'Tasks/min (range)', 'Completions per minute over the range', (stats) => stats?.throughput_per_min, format.number),
    ],
  });
  const modelsPanel = h('section', { class: 'panel', id: 'tt-models-panel' }, models.element);

  root.append(
    h(
      'div',
      { class: 'page task-type' },
      h(
        'div',
        { class: 'page-head' },
        h('a', { href: '/task-types', class: 'small', title: 'Every model family' }, '← Task types'),
        h('h1', {}, 'Task type: ', h('span', { id: 'tt-family' }, family)),
        updated,
      ),
      error,
      notice,
      header,
      columns,
      rangePanel,
      schedulingPanel,
      modelsPanel,
    ),
  );

  let lastDraw = 0;
  let drawnTime = -Infinity;
  function draw(tasks, force = false) {
    if (!tasks || (!force && (tasks.time <= drawnTime || Date.now() - lastDraw < REDRAW_MS))) return;
    drawnTime = tasks.time;
    lastDraw = Date.now();
    setText(updated, `updated ${format.time(tasks.time)}`);
    const group = (tasks.by_family ?? []).find((row) => row.key === family);
    const rows = (tasks.by_model ?? []).filter((row) => row.family === family);
    setText(notice, group || rows.length ? '' : `No ${family} tasks have been seen since the stream began.`);
    setText(counts.active.value, format.count(group?.running ?? 0));
    setText(counts.queued.value, format.count(group?.queued ?? 0));
    setText(counts.completed.value, format.count(group?.completed ?? 0));
    setText(counts.failed.value, format.count(group?.failed ?? 0));
    setText(counts.success.value, format.ratio(group?.success_rate));
    setText(counts.throughput.value, format.number(group?.throughput_per_min ?? 0));
    setText(scheduling.queueMean.value, format.duration(group?.queue_time_ms?.mean));
    setText(scheduling.queueP95.value, format.duration(group?.queue_time_ms?.p95));
    setText(scheduling.bestFit.value, format.ratio(group?.best_fit_ratio));

    familyTotal = rows.reduce((sum, row) => sum + seen(row), 0);
    const byShare = [...rows].sort((a, b) => seen(b) - seen(a) || a.key.localeCompare(b.key));
    barList(
      distribution,
      byShare.map((row) => {
        const share = familyTotal ? seen(row) / familyTotal : 0;
        return { key: row.key, text: format.ratio(share), share, title: `${row.key}: ${format.count(seen(row))} of ${format.count(familyTotal)} tasks seen` };
      }),
      'No tasks of this family yet.',
    );
    barList(
      completion,
      byShare.map((row) => ({
        key: row.key,
        text: format.ratio(row.success_rate),
        share: row.success_rate,
        tone: successTone(row.success_rate),
        title: `${row.key}: ${format.count(row.completed)} completed, ${format.count(row.failed)} failed`,
      })),
      'No tasks of this family yet.',
    );
    const pairs = (tasks.compatibility ?? []).filter((pair) => pair.family === family).sort((a, b) => b.score - a.score);
    barList(
      compatibility,
      pairs.map((pair) => ({
        key: pair.hardware,
        text: format.count(pair.score),
        share: pair.score / 100,
        tone: pair.score >= 85 ? 'bar-ok' : pair.score >= 50 ? 'bar-warn' : 'bar-bad',
        title: `${pair.hardware}: score ${format.number(pair.score)} over ${format.count(pair.runs)} runs`,
      })),
      'No run has finished yet.',
    );
    widest = widestThroughput(rows);
    models.update(rows);
  }

  async function pollAssignment() {
    try {
      const placed = await getJson('/api/tasks', { status: 'assigned,running', family, group_by: 'hardware', limit: 100 });
      const groups = Array.isArray(placed.groups) ? placed.groups : [];
      const widestGroup = Math.max(1, ...groups.map((group) => group.total ?? 0));
      if (groups.length === 0) {
        replace(assignment, h('li', { class: 'empty' }, 'No task of this family is on a worker now.'));
      } else {
        replace(
          assignment,
          groups.map((group) =>
            h(
              'li',
              {
                'data-key': group.key,
                title: `${group.key}: ${format.count(group.running)} running, ${format.count(group.assigned)} assigned and waiting to start`,
              },
              h('span', { class: 'hw-chip mono' }, String(group.key).toUpperCase()),
              h(
                'span',
                { class: 'queue-bar', 'aria-hidden': 'true' },
                h('span', { class: 'queue-running', style: `width:${(((group.running ?? 0) / widestGroup) * 100).toFixed(1)}%` }),
                h('span', { class: 'queue-queued', style: `width:${(((group.assigned ?? 0) / widestGroup) * 100).toFixed(1)}%` }),
              ),
              h('span', { class: 'num' }, `${format.count(group.running)} + ${format.count(group.assigned)}`),
            ),
          ),
        );
      }
      setText(assignmentNote, groups.length ? 'running + assigned, now' : '');
    } catch (err) {
      replace(assignment, h('li', { class: 'error small' }, err.status === 400 ? `No task family "${family}".` : problemText(err, 'live task lists')));
    }
  }

  // The range's figures, loaded again when the range changes and, while it follows now, now and then.
  let rangeRequest = null;
  let rangeLoadedAt = 0;
  function loadRange() {
    rangeRequest?.abort();
    const controller = new AbortController();
    rangeRequest = controller;
    rangeLoadedAt = Date.now();
    const range = picker.range();
    const query = { family, start_time: Math.floor(range.start), end_time: Math.ceil(range.end) };
    setText(throughputNote, 'loading the range…');
    rangePanel.dataset.loading = 'true';
    Promise.all([
      getJson('/api/metrics/tasks/stats', { ...query, by: 'model' }, { signal: controller.signal }),
      getJson('/api/metrics/tasks/distribution', query, { signal: controller.signal }),
      getJson('/api/metrics/tasks/stats', { ...query, by: 'family' }, { signal: controller.signal }),
    ])
      .then(([byModel, runTimes, byFamily]) => {
        if (rangeRequest !== controller) return;
        const items = Array.isArray(byModel.items) ? byModel.items : [];
        rangeByModel = new Map(items.map((item) => [item.key, item]));
        const sorted = [...items].sort((a, b) => (b.throughput_per_min ?? 0) - (a.throughput_per_min ?? 0) || String(a.key).localeCompare(String(b.key)));
        throughputChart.setData({ labels: sorted.map((item) => String(item.key)), values: { throughput: sorted.map((item) => item.throughput_per_min ?? 0) } });
        const buckets = fillBuckets(runTimes);
        durationChart.setData({ labels: buckets.labels, values: { count: buckets.counts } });
        setText(
          percentiles,
          runTimes.count ? `${format.count(runTimes.count)} completed · mean ${format.duration(runTimes.mean_ms)} · p50 ${format.duration(runTimes.p50_ms)} · p95 ${format.duration(runTimes.p95_ms)} · p99 ${format.duration(runTimes.p99_ms)}` : '',
        );
        const familyStats = (byFamily.items ?? []).find((item) => item.key === family);
        setText(scheduling.rangeQueue.value, format.duration(familyStats?.mean_queue_ms));
        setText(throughputNote, items.length ? '' : 'Nothing of this family finished in this range.');
        rangePanel.dataset.loading = 'false';
        const tasks = live.current();
        if (tasks) draw(tasks, true);
      })
      .catch((err) => {
        if (err.name === 'AbortError' || rangeRequest !== controller) return;
        rangePanel.dataset.loading = 'false';
        if (err.status === 400) setText(throughputNote, `No task family "${family}".`);
        else if (err.status === 404 || err.status === 503) setText(throughputNote, 'The archive cannot answer yet: no figures over the range (the live figures above still show).');
        else setText(throughputNote, `The range could not be loaded (${err.message}).`);
      });
  }

  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      await Promise.all([
        live.poll().then(
          (tasks) => {
            setText(error, '');
            draw(tasks, true);
          },
          (err) => setText(error, problemText(err)),
        ),
        pollAssignment(),
      ]);
      if (picker.range().follows && Date.now() - rangeLoadedAt >= RANGE_REFRESH_MS) loadRange();
    } finally {
      polling = false;
    }
  };
  const flush = () => draw(live.current());
  const refresh = refresher({ poll, flush });
  const off = app.socket.on('tasks', () => refresh.pushed());
  loadRange();
  flush();

  return () => {
    refresh.stop();
    off();
    live.stop();
    rangeRequest?.abort();
    throughputChart.destroy();
    durationChart.destroy();
  };
}

/** A list of labelled bars: `[{ key, text, share (0 to 1), tone?, title }]`. */
function barList(list, items, empty) {
  if (items.length === 0) {
    replace(list, h('li', { class: 'empty' }, empty));
    return;
  }
  replace(
    list,
    items.map((item) =>
      h(
        'li',
        { 'data-key': item.key, title: item.title },
        h('span', { class: 'tt-bar-label' }, item.key),
        h('span', { class: 'tt-bar-track', 'aria-hidden': 'true' }, h('span', { class: `bar ${item.tone ?? ''}`.trim(), style: `width:${(Math.max(0, Math.min(1, item.share || 0)) * 100).toFixed(1)}%` })),
        h('span', { class: 'num' }, item.text),
      ),
    ),
  );
}
