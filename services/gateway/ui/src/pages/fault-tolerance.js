// The Fault tolerance page (/fault-tolerance): where failures happen and how well the
// fleet recovers. Summary cards (outages, recoveries, mean time to recovery, how often
// recovery actions and retries work, workers away now), failure rates by hardware, model
// and hardware x family, each recovery action and how well it worked, how retries end and
// the most frequent errors, live from GET /api/fault-tolerance at the refresh rate; then
// trends over a chosen range (failures vs completions, MTTR, recovery actions, outages),
// and, over the same range from the archive, the failure patterns and the recovery actions
// taken, newest first. The text and least-runs filters, the pattern and every table's sort
// are in the URL.

import { getJson } from '../api.js';
import { failurePatterns, recoveryActions } from '../components/faults-range.js';
import { faultTables } from '../components/faults-tables.js';
import { stateBadge } from '../components/state-badge.js';
import { trendPanel } from '../components/trend-panel.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { refresher } from '../refresh.js';
import { readQuery, writeQuery } from '../url-state.js';

const MIN_RUNS = [0, 10, 100, 1000];
/** How often the archive's views over a following range are read again, ms. */
const RANGE_REFRESH_MS = 10_000;

export function mount(root, app) {
  const live = app.trends;
  const query = readQuery();
  let search = query.q ?? '';
  let minRuns = MIN_RUNS.includes(Number(query.min_runs)) ? Number(query.min_runs) : 0;
  let latest = null;

  const updated = h('p', { class: 'muted small', id: 'ft-updated', title: 'When the processor derived the figures below' }, 'waiting for the first figures…');
  const error = h('p', { class: 'error', role: 'alert', id: 'ft-error' });
  const searchInput = h('input', { type: 'search', id: 'ft-search', value: search, placeholder: 'hardware, model, action or error', 'aria-label': 'Filter the tables' });
  const runsSelect = h('select', { id: 'ft-min-runs', 'aria-label': 'Least runs' }, MIN_RUNS.map((runs) => h('option', { value: String(runs) }, runs === 0 ? 'any' : `${format.count(runs)}+`)));
  runsSelect.value = String(minRuns);
  const filterBar = h(
    'div',
    { class: 'filters panel ft-filters' },
    h('label', { title: 'Shows the rows whose hardware, model, family, action or error contains this text' }, 'Filter', searchInput),
    h('label', { title: 'Hides failure rates resting on fewer runs than this (a model that ran once and failed is 100%)' }, 'Least runs', runsSelect),
  );

  const cards = summaryCards();
  const tables = faultTables({ filters: () => ({ search, minRuns }) });
  const components = h('ul', { class: 'component-list ft-components', id: 'ft-components' });
  const trends = faultTrends(live, (next) => loadRange(next));
  const patterns = failurePatterns();
  const recoveries = recoveryActions();

  root.append(
    h(
      'div',
      { class: 'page fault-page' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Fault tolerance'), updated),
      error,
      filterBar,
      cards.element,
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'ft-rates-title' },
        h('h2', { id: 'ft-rates-title', title: 'Which hardware, models and pairings fail most, since the stream began' }, 'Failure rates'),
        h('div', { class: 'columns-3' }, tables.rates),
      ),
      h(
        'div',
        { class: 'columns-2' },
        h(
          'section',
          { class: 'panel', 'aria-label': 'Recovery' },
          tables.actions,
          tables.retries,
          h('h2', { class: 'ft-components-title', title: 'The health the coordinator and load balancer last reported' }, 'Components'),
          components,
        ),
        h('section', { class: 'panel', 'aria-label': 'Errors' }, tables.errors),
      ),
      trends.element,
      h('div', { class: 'columns-2' }, patterns.element, recoveries.element),
    ),
  );

  const draw = () => {
    if (!latest) return;
    cards.show(latest);
    tables.update(latest);
    showComponents(components, latest.components);
    setText(updated, `figures of ${format.time(latest.time)}`);
  };

  searchInput.addEventListener('input', () => {
    search = searchInput.value;
    writeQuery({ q: search.trim() });
    draw();
  });
  runsSelect.addEventListener('change', () => {
    minRuns = Number(runsSelect.value) || 0;
    writeQuery({ min_runs: minRuns || null });
    draw();
  });

  // The archive's views follow the trends' range; a following range is read again now and then.
  let range = trends.range();
  let rangeLoadedAt = 0;
  const loadRange = (next, { keepPage = false } = {}) => {
    range = next;
    rangeLoadedAt = Date.now();
    patterns.load(range);
    recoveries.load(range, { keepPage });
  };

  let polling = false;
  const poll = async () => {
    if (range.follows && Date.now() - rangeLoadedAt >= RANGE_REFRESH_MS) loadRange(trends.range(), { keepPage: true });
    if (polling) return;
    polling = true;
    try {
      latest = await getJson('/api/fault-tolerance');
      setText(error, '');
      draw();
    } catch (err) {
      setText(error, err.status === 503 ? 'No fault-tolerance figures yet: is the processor running?' : `The fault-tolerance figures could not be read: ${err.message}`);
    } finally {
      polling = false;
    }
  };

  let lastDraw = 0;
  const flush = () => {
    if (Date.now() - lastDraw >= 1000) {
      lastDraw = Date.now();
      trends.draw();
    }
  };
  loadRange(range);
  const refresh = refresher({ poll, flush });
  const unsubscribe = [app.socket.on('system', () => refresh.pushed())];
  trends.start();

  return () => {
    refresh.stop();
    for (const off of unsubscribe) off();
    trends.destroy();
    patterns.destroy();
    recoveries.destroy();
  };
}

function summaryCards() {
  const card = (id, label, title) => {
    const value = h('span', { id }, '–');
    const note = h('span', { class: 'card-note' });
    return { value, note, element: h('div', { class: 'card', title }, h('dt', {}, label), h('dd', {}, value, note)) };
  };
  const cards = {
    outages: card('ft-outages', 'Outages', 'Workers reported offline since the stream began'),
    recoveries: card('ft-recoveries-count', 'Recoveries', 'Of those outages, how many came back (a registration or heartbeat after it)'),
    mttr: card('ft-mttr', 'Mean time to recovery', 'Total outage time / recoveries'),
    recovery: card('ft-recovery-success', 'Recovery success', 'Share of recovery actions that worked'),
    retry: card('ft-retry-success', 'Retry success', 'Share of retried tasks that then completed (of those that ended)'),
    disconnected: card('ft-disconnected', 'Disconnected now', 'Workers with no heartbeat for 15 s, or reported offline'),
    failed: card('ft-tasks-failed', 'Tasks failed', 'Failures since the stream began (a retried task counts once per failure)'),
  };
  const element = h('dl', { class: 'cards ft-cards', 'aria-label': 'Fault tolerance summary' }, Object.values(cards).map((entry) => entry.element));
  return {
    element,
    show(faults) {
      setText(cards.outages.value, format.count(faults.outages));
      setText(cards.recoveries.value, format.count(faults.recoveries));
      setText(cards.recoveries.note, faults.outages > faults.recoveries ? `${format.count(faults.outages - faults.recoveries)} not back yet` : '');
      setText(cards.mttr.value, faults.recoveries > 0 ? format.duration(faults.mean_time_to_recovery_ms) : '–');
      setText(cards.mttr.note, faults.recoveries > 0 ? `over ${format.count(faults.recoveries)} recoveries` : 'no recovery yet');
      setText(cards.recovery.value, format.ratio(faults.recovery_success_rate));
      setText(cards.recovery.note, `${format.count(faults.recovery_actions_succeeded)} of ${format.count(faults.recovery_actions)} actions`);
      setText(cards.retry.value, format.ratio(faults.retry_success_rate));
      setText(cards.retry.note, `${format.count(faults.retries_recovered)} of ${format.count((faults.retries_recovered ?? 0) + (faults.retries_failed_again ?? 0))} retries`);
      setText(cards.disconnected.value, format.count(faults.disconnected_now));
      setText(cards.failed.value, format.count(faults.tasks_failed));
      setText(cards.failed.note, `${format.count(faults.tasks_retried)} retried`);
      cards.disconnected.element.classList.toggle('status-disconnected', faults.disconnected_now > 0);
    },
  };
}

function showComponents(list, components) {
  const entries = Object.entries(components ?? {});
  if (!entries.length) {
    replace(list, h('li', { class: 'muted' }, 'No coordinator is polled, and no component reports its health.'));
    return;
  }
  replace(
    list,
    entries.map(([name, state]) =>
      h(
        'li',
        { 'data-component': name },
        h('span', { class: 'component-name' }, name === 'load_balancer' ? 'Load balancer' : name === 'coordinator' ? 'Coordinator' : name),
        stateBadge(state.health, `${state.health} since ${format.dateTime(state.since)}`),
        h('span', { class: 'component-message' }, String(state.message ?? '')),
      ),
    ),
  );
}

/** Failures against completions, MTTR, recovery actions and outages over time. */
function faultTrends(live, onRange) {
  const charts = [
    {
      title: 'Failures and completions',
      description: 'tasks failed, completed and retried per minute (each counter\'s rise over the minute before)',
      series: [
        { key: 'tasks_failed_per_min', label: 'failed/min' },
        { key: 'tasks_completed_per_min', label: 'completed/min' },
        { key: 'tasks_retried_per_min', label: 'retried/min', dash: [4, 3] },
      ],
      format: (value) => format.number(value),
    },
    {
      title: 'Mean time to recovery',
      description: 'total outage time / recoveries, since the stream began, at each point',
      series: [{ key: 'faults_mean_time_to_recovery_ms', label: 'MTTR' }],
      format: (value) => format.duration(value),
    },
    {
      title: 'Recovery actions',
      description: 'recovery actions taken and those that worked, per minute',
      series: [
        { key: 'faults_recovery_actions_per_min', label: 'taken/min' },
        { key: 'faults_recovery_actions_succeeded_per_min', label: 'worked/min', dash: [4, 3] },
      ],
      format: (value) => format.number(value),
    },
    {
      title: 'Outages',
      description: 'workers disconnected, and outages and recoveries per minute',
      series: [
        { key: 'workers_disconnected', label: 'disconnected' },
        { key: 'faults_outages_per_min', label: 'outages/min' },
        { key: 'faults_recoveries_per_min', label: 'recoveries/min', dash: [4, 3] },
      ],
      format: (value) => format.number(value),
    },
  ];
  return trendPanel({ id: 'ft-trends', title: 'Over time', charts, live, onRange });
}
