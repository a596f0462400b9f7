// The performance page (/performance): the fleet's throughput and latency now and as trends
// (with scheduling efficiency and utilisation) over a range, hardware compared (a table and
// the hardware x family compatibility matrix), task types compared (by family and by model),
// how much of the fleet's capacity does work, and the recommendations the gateway reads off
// these figures. Figures come from GET /api/performance at the refresh rate and, between
// polls, from the `system` and `tasks` WebSocket topics. Sorting of every table, the model
// table's family filter and the trends' range are in the URL.

import { MODEL_FAMILIES, getJson } from '../api.js';
import { familyHref, groupColumns, problemText, widestThroughput } from '../components/performance-groups.js';
import { sortedTable } from '../table.js';
import { performanceTrends } from '../components/performance-trends.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { refresher } from '../refresh.js';
import { readQuery, writeQuery } from '../url-state.js';

/** Model families in the order the product names them; others seen follow, sorted. */
const FAMILY_ORDER = MODEL_FAMILIES;
/** Tables redraw at most this often from the WebSocket (the REST poll always redraws). */
const TABLE_REDRAW_MS = 1000;

export function mount(root, app) {
  const updated = h('p', { class: 'muted small', id: 'perf-updated', title: 'When the processor derived the figures shown' }, 'waiting for figures…');
  const error = h('p', { class: 'error', role: 'alert', id: 'perf-error' });
  const summary = summaryCards();
  const trends = performanceTrends(app.trends);
  const recommendations = recommendationList();
  const efficiency = efficiencyCards();
  const hardware = hardwareTable();
  const matrix = compatibilityMatrix();
  const families = familyTable();
  const models = modelTable();

  root.append(
    h(
      'div',
      { class: 'page performance' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Performance'), updated),
      error,
      summary.element,
      h('div', { class: 'columns-2 perf-columns' }, recommendations.element, efficiency.element),
      trends.element,
      h(
        'section',
        { class: 'panel', id: 'hardware', 'aria-labelledby': 'hardware-title' },
        h('h2', { id: 'hardware-title', class: 'section-title', title: 'Tasks grouped by the hardware of the worker they ran on' }, 'Hardware comparison'),
        h('div', { class: 'columns-2 perf-hardware' }, hardware.element, matrix.element),
      ),
      h(
        'section',
        { class: 'panel', id: 'task-analysis', 'aria-labelledby': 'task-analysis-title' },
        h('h2', { id: 'task-analysis-title', class: 'section-title', title: 'Tasks grouped by model family and by model' }, 'Task type analysis'),
        families.element,
        models.element,
      ),
    ),
  );

  let lastTables = 0;
  let tasksTime = -Infinity;
  const drawGroups = (groups) => {
    hardware.update(groups.by_hardware);
    matrix.update(groups.compatibility, groups.by_hardware);
    families.update(groups.by_family);
    models.update(groups.by_model);
    lastTables = Date.now();
  };

  // What the WebSocket delivered, drawn at the refresh rate.
  const flush = () => {
    const system = app.socket.latest.get('system');
    if (system) {
      summary.update(system);
      setText(updated, `updated ${format.time(system.time)}`);
    }
    const tasks = app.socket.latest.get('tasks');
    if (tasks && tasks.time > tasksTime && Date.now() - lastTables >= TABLE_REDRAW_MS) {
      tasksTime = tasks.time;
      drawGroups(tasks);
    }
    trends.draw();
  };

  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      const perf = await getJson('/api/performance');
      setText(error, '');
      summary.update(perf);
      setText(updated, `updated ${format.time(perf.time)}`);
      efficiency.update(perf.efficiency, perf.utilisation);
      recommendations.update(perf.recommendations);
      if (!(tasksTime > perf.time)) drawGroups(perf);
    } catch (err) {
      setText(error, problemText(err, 'performance figures'));
      if (err.status === 503) recommendations.waiting();
    } finally {
      polling = false;
    }
  };

  const refresh = refresher({ poll, flush });
  const unfollow = app.socket.follow(['tasks']);
  const unsubscribe = [
    app.socket.on('system', () => refresh.pushed()),
    app.socket.on('tasks', () => refresh.pushed()),
  ];
  trends.start();
  flush();

  return () => {
    refresh.stop();
    for (const off of unsubscribe) off();
    unfollow();
    trends.destroy();
  };
}

/** A card of a figure: `{ element, value }` (`value` the <dd>). */
function card(id, label, title, note = '') {
  const value = h('dd', { id }, '–');
  const element = h('div', { class: 'card', title }, h('dt', {}, label), value, note ? h('span', { class: 'card-note' }, note) : null);
  return { element, value };
}

/** The fleet's throughput and latency now. */
function summaryCards() {
  const cards = {
    throughput: card('perf-throughput', 'Throughput', 'Tasks completed in the last 60 s', 'tasks/min'),
    queueP50: card('perf-queue-p50', 'Queue time p50', 'Median wait before a task starts, over the last 1000 starts'),
    queueP95: card('perf-queue-p95', 'Queue time p95', '95th percentile wait before a task starts, over the last 1000 starts'),
    runP50: card('perf-run-p50', 'Processing p50', 'Median run time, over the last 1000 completions'),
    runP95: card('perf-run-p95', 'Processing p95', '95th percentile run time, over the last 1000 completions'),
    scheduling: card('perf-scheduling', 'Scheduling efficiency', 'Share of the last 1000 assignments that went to a best-fit worker'),
  };
  const element = h(
    'section',
    { class: 'perf-summary', 'aria-label': 'Throughput and latency now' },
    h('dl', { class: 'cards' }, Object.values(cards).map((item) => item.element)),
  );
  return {
    element,
    /** From a `system` message or /api/performance (the same fields). */
    update(figures) {
      setText(cards.throughput.value, format.number(figures.throughput_per_min));
      setText(cards.queueP50.value, format.duration(figures.queue_time_ms?.p50));
      setText(cards.queueP95.value, format.duration(figures.queue_time_ms?.p95));
      setText(cards.runP50.value, format.duration(figures.processing_time_ms?.p50));
      setText(cards.runP95.value, format.duration(figures.processing_time_ms?.p95));
      setText(cards.scheduling.value, format.ratio(figures.scheduling_efficiency));
    },
  };
}

/** How much of the fleet's capacity does work (the `efficiency` of /api/performance). */
function efficiencyCards() {
  const cards = {
    connected: card('eff-connected', 'Connected workers', 'Workers sending heartbeats'),
    idle: card('eff-idle', 'Idle workers', 'Connected workers running nothing'),
    busy: card('eff-busy-share', 'Busy share', 'Busy and overloaded workers over connected workers'),
    slots: card('eff-slots', 'Task slots', 'Tasks the connected workers can run at once'),
    running: card('eff-running', 'Running', 'Tasks running in those slots'),
    slotUse: card('eff-slot-utilisation', 'Slot utilisation', 'Running tasks over task slots'),
    waiting: card('eff-waiting', 'Waiting', 'Tasks waiting to start (queued or assigned)'),
    perWorker: card('eff-per-busy-worker', 'Per busy worker', 'Completions per minute per busy worker', 'tasks/min'),
    cpu: card('eff-cpu', 'CPU', 'Mean CPU use over connected workers'),
    gpu: card('eff-gpu', 'GPU', 'Mean GPU use over connected workers that have a GPU'),
    memory: card('eff-memory', 'Memory', 'Mean memory use over connected workers'),
    network: card('eff-network', 'Network', 'Mean network use over connected workers'),
  };
  const element = h(
    'section',
    { class: 'panel', id: 'efficiency', 'aria-labelledby': 'efficiency-title' },
    h('h2', { id: 'efficiency-title', title: 'How much of the fleet\'s capacity does work now' }, 'Utilisation efficiency'),
    h('dl', { class: 'cards perf-efficiency' }, Object.values(cards).map((item) => item.element)),
  );
  return {
    element,
    update(efficiency, utilisation) {
      if (!efficiency) return;
      setText(cards.connected.value, format.count(efficiency.connected_workers));
      setText(cards.idle.value, format.count(efficiency.idle_workers));
      setText(cards.busy.value, format.ratio(efficiency.busy_share));
      setText(cards.slots.value, format.count(efficiency.slots));
      setText(cards.running.value, format.count(efficiency.running));
      setText(cards.slotUse.value, format.ratio(efficiency.slot_utilisation));
      setText(cards.waiting.value, format.count(efficiency.waiting));
      setText(cards.perWorker.value, format.number(efficiency.throughput_per_busy_worker));
      setText(cards.cpu.value, format.percent(utilisation?.cpu));
      setText(cards.gpu.value, format.percent(utilisation?.gpu));
      setText(cards.memory.value, format.percent(utilisation?.memory));
      setText(cards.network.value, format.percent(utilisation?.network));
    },
  };
}

/** A link inside the dashboard, or null for anything else (a link is shown only if it stays here). */
function pageLink(link) {
  return typeof link === 'string' && link.startsWith('/') && !link.startsWith('//') ? link : null;
}

/** The recommendations: severity, title, detail and a link to the page that shows more. */
function recommendationList() {
  const count = h('span', { id: 'recommendation-count', class: 'badge', title: 'Recommendations now' }, '–');
  const list = h('ul', { class: 'recommendations', id: 'recommendations', 'aria-live': 'polite' }, h('li', { class: 'muted' }, 'Waiting for the figures…'));
  const element = h(
    'section',
    { class: 'panel', id: 'recommendations-panel', 'aria-labelledby': 'recommendations-title' },
    h('h2', { id: 'recommendations-title', title: 'Changes the figures call for, most pressing first, each with the numbers it rests on' }, 'Recommendations ', count),
    list,
  );
  return {
    element,
    waiting() {
      replace(list, h('li', { class: 'muted' }, 'No figures yet, so nothing to recommend.'));
    },
    update(found) {
      const items = Array.isArray(found) ? found : [];
      setText(count, format.count(items.length));
      if (items.length === 0) {
        replace(list, h('li', { class: 'empty', id: 'no-recommendations' }, 'No recommendations: nothing in the figures calls for a change.'));
        return;
      }
      replace(
        list,
        items.map((item) => {
          const severity = item.severity === 'warning' ? 'warning' : item.severity === 'critical' ? 'critical' : 'info';
          const link = pageLink(item.link);
          return h(
            'li',
            { class: `recommendation severity-${severity}`, 'data-kind': String(item.kind ?? '') },
            h('span', { class: `severity severity-${severity}`, title: `Severity: ${item.severity ?? 'info'}` }, String(item.severity ?? 'info')),
            h(
              'div',
              { class: 'recommendation-body' },
              h('p', { class: 'recommendation-title' }, String(item.title ?? '')),
              h('p', { class: 'recommendation-detail muted' }, String(item.detail ?? '')),
              link ? h('a', { class: 'recommendation-link small', href: link, title: `Open ${link}` }, 'Show the figures →') : null,
            ),
          );
        }),
      );
    },
  };
}

/** Hardware kinds compared: throughput, success, run times, what runs and waits. */
function hardwareTable() {
  let widest = 1;
  const table = sortedTable({
    id: 'hardware-table',
    caption: 'By hardware',
    urlKey: 'hw_sort',
    sort: { key: 'throughput_per_min', order: 'desc' },
    csv: { filename: 'performance-hardware' },
    empty: 'No task has run on a worker yet.',
    columns: [
      { key: 'key', label: 'Hardware', title: 'The hardware of the worker the tasks ran on', value: (row) => h('span', { class: 'mono' }, row.key) },
      ...groupColumns({
        widest: () => widest,
        include: ['throughput_per_min', 'success_rate', 'run_p50', 'run_p95', 'running', 'queued', 'completed', 'failed', 'queue_mean', 'best_fit_ratio'],
      }),
    ],
  });
  return {
    element: table.element,
    update(rows) {
      widest = widestThroughput(rows);
      table.update(rows);
    },
  };
}

/** The tone of a compatibility score (0 to 100). */
function scoreLevel(score) {
  if (!Number.isFinite(score)) return 'none';
  return score >= 85 ? 'high' : score >= 50 ? 'mid' : 'low';
}

/**
 * Hardware x family: the compatibility score of each pair that ran (100 x success x speed),
 * a coloured cell with the number as text; sortable by hardware or by any family's score.
 */
function compatibilityMatrix() {
  const holder = h('div', { class: 'compat-holder' });
  const element = h(
    'div',
    { class: 'compatibility' },
    holder,
    h(
      'p',
      { class: 'muted small compat-legend', title: 'score = 100 x success x speed; speed = the family\'s fastest mean run time on any hardware / this pair\'s' },
      h('span', { class: 'score score-high' }, '≥ 85'),
      ' runs it well · ',
      h('span', { class: 'score score-mid' }, '50–85'),
      ' slower or less reliable · ',
      h('span', { class: 'score score-low' }, '< 50'),
      ' a poor match · – never ran',
    ),
  );
  let familiesShown = null;
  let table = null;

  function build(families) {
    familiesShown = families.join(',');
    table = sortedTable({
      id: 'compatibility-table',
      caption: 'Compatibility (hardware × family)',
      urlKey: 'compat_sort',
      sort: { key: 'key', order: 'asc' },
      csv: { filename: 'performance-compatibility' },
      empty: 'No hardware kind has run a task yet.',
      columns: [
        { key: 'key', label: 'Hardware', title: 'The hardware kind', value: (row) => h('span', { class: 'mono' }, row.key) },
        ...families.map((family) => ({
          key: `family:${family}`,
          label: family,
          title: `The compatibility score of each hardware kind for ${family} tasks (0 to 100)`,
          num: true,
          sortValue: (row) => row.pairs[family]?.score ?? null,
          value: (row) => {
            const pair = row.pairs[family];
            const score = pair?.score;
            return h(
              'span',
              {
                class: `score score-${scoreLevel(score)}`,
                'data-family': family,
                title: pair
                  ? `${row.key} × ${family}: score ${format.number(score)} over ${format.count(pair.runs)} runs`
                  : `${row.key} has not run ${family} tasks`,
              },
              pair ? format.count(score) : '–',
            );
          },
        })),
        {
          key: 'runs',
          label: 'Runs',
          title: 'Finished runs (completed or failed) on this hardware, all families',
          num: true,
          value: (row) => format.count(row.runs),
        },
      ],
    });
    replace(holder, table.element);
  }

  return {
    element,
    update(compatibility, byHardware) {
      const pairs = Array.isArray(compatibility) ? compatibility : [];
      const seen = new Set(pairs.map((pair) => pair.family));
      const families = [...FAMILY_ORDER.filter((family) => seen.has(family)), ...[...seen].filter((family) => !FAMILY_ORDER.includes(family)).sort()];
      if (families.length === 0) families.push(...FAMILY_ORDER);
      if (families.join(',') !== familiesShown) build(families);
      const rows = new Map();
      const row = (key) => {
        if (!rows.has(key)) rows.set(key, { key, pairs: {}, runs: 0 });
        return rows.get(key);
      };
      for (const group of Array.isArray(byHardware) ? byHardware : []) row(group.key);
      for (const pair of pairs) {
        const entry = row(pair.hardware);
        entry.pairs[pair.family] = pair;
        entry.runs += pair.runs ?? 0;
      }
      table.update([...rows.values()]);
    },
  };
}

/** Model families compared; each links to its task-type page. */
function familyTable() {
  let widest = 1;
  const table = sortedTable({
    id: 'family-table',
    caption: 'By model family',
    urlKey: 'family_sort',
    sort: { key: 'key', order: 'asc' },
    csv: { filename: 'performance-families' },
    empty: 'No tasks yet.',
    columns: [
      { key: 'key', label: 'Family', title: 'The model family; opens its task-type page', value: (row) => h('a', { href: familyHref(row.key) }, row.key) },
      ...groupColumns({ widest: () => widest }),
    ],
  });
  return {
    element: table.element,
    update(rows) {
      widest = widestThroughput(rows);
      table.update(rows);
    },
  };
}

/** Models compared, filtered by family (in the URL); each row links to its family's page. */
function modelTable() {
  let widest = 1;
  let rows = [];
  let family = readQuery().model_family ?? '';
  const select = h('select', { id: 'model-family', title: 'Show the models of one family' }, h('option', { value: '' }, 'all families'));
  const table = sortedTable({
    id: 'model-table',
    caption: 'By model',
    urlKey: 'model_sort',
    sort: { key: 'throughput_per_min', order: 'desc' },
    csv: { filename: 'performance-models' },
    empty: 'No tasks of this family yet.',
    columns: [
      { key: 'key', label: 'Model', title: 'The model the tasks benchmark', value: (row) => h('span', { class: 'model-name' }, row.key) },
      {
        key: 'family',
        label: 'Family',
        title: 'Its model family; opens the family\'s task-type page',
        value: (row) => (row.family ? h('a', { href: familyHref(row.family) }, row.family) : '–'),
      },
      ...groupColumns({ widest: () => widest }),
    ],
  });
  const element = h(
    'div',
    { class: 'model-analysis' },
    h('div', { class: 'filters' }, h('label', { for: 'model-family' }, 'Family'), select),
    table.element,
  );
  let optionsShown = '';
  select.addEventListener('change', () => {
    family = select.value;
    writeQuery({ model_family: family });
    draw();
  });

  function draw() {
    const families = [...new Set(rows.map((row) => row.family).filter(Boolean))].sort();
    if (family && !families.includes(family)) families.push(family);
    if (families.join(',') !== optionsShown) {
      optionsShown = families.join(',');
      replace(select, h('option', { value: '' }, 'all families'), families.map((name) => h('option', { value: name }, name)));
    }
    select.value = family;
    const shown = family ? rows.filter((row) => row.family === family) : rows;
    widest = widestThroughput(shown);
    table.update(shown, family ? `${format.count(shown.length)} of ${format.count(rows.length)} models` : '');
  }

  return {
    element,
    update(next) {
      rows = Array.isArray(next) ? next : [];
      draw();
    },
  };
}
