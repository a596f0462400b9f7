// The services' health, from each instance's latest health report (GET /api/services):
// whether it still reports (up, or stale past 10 s), how old its last report is, how long
// it has run, its key counters (what came in, what went out and at what rate, what was
// dead-lettered) and gauges (the archive's lag), and every counter and gauge on demand.
// Filtered by text and state, sorted by any column, both in the URL; CSV of the rows shown.

import { h, setText } from '../dom.js';
import * as format from '../format.js';
import { readQuery, writeQuery } from '../url-state.js';
import { stateBadge } from './state-badge.js';
import { sortedTable } from '../table.js';

/** Per service: the counters that say what it took in and what it put out. */
const FLOW = {
  collector: {
    in: ['collector_ingest_messages_total', 'collector_control_requests_total'],
    out: ['collector_events_published_total'],
    inLabel: 'ingest messages and alert control requests received',
    outLabel: 'events stored in the events stream',
  },
  processor: {
    in: ['processor_events_applied_total'],
    out: ['processor_ticks_total'],
    inLabel: 'events folded into the fleet state',
    outLabel: 'metrics ticks published',
  },
  archiver: {
    in: ['archiver_heartbeats_seen_total'],
    out: ['archiver_messages_archived_total'],
    inLabel: 'heartbeats read from the events stream',
    outLabel: 'messages committed to the archive',
  },
  alerter: {
    in: [],
    out: ['alerter_alerts_published_total', 'alerter_notifications_sent_total'],
    inLabel: '',
    outLabel: 'alert changes published and notifications sent',
  },
};

/** Counters of messages a service gave up on (as the collector's service_report sums them). */
const isDeadLetter = (name) => /_(deadletters|deadlettered|undecodable)_total$/.test(name) || name === 'archiver_messages_skipped_total';

function sum(counters, names) {
  let total = null;
  for (const name of names) {
    const value = Number(counters?.[name]);
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

const gaugeName = (gauge) => {
  const labels = Object.entries(gauge.labels ?? {}).map(([key, value]) => `${key}=${value}`);
  return labels.length ? `${gauge.name}{${labels.join(',')}}` : gauge.name;
};

/** The gauges worth a glance: the archive's worst lag, whether an archiver is active. */
function keyGauges(row) {
  const gauges = Array.isArray(row.gauges) ? row.gauges : [];
  const parts = [];
  const active = gauges.find((gauge) => gauge.name === 'archiver_active');
  if (active) parts.push(active.value > 0 ? 'active' : 'standby');
  const lags = gauges.filter((gauge) => gauge.name === 'archiver_lag_seconds');
  if (lags.length) {
    const worst = lags.reduce((a, b) => (b.value > a.value ? b : a));
    parts.push(`lag ${format.duration(worst.value * 1000)} (${worst.labels?.stream ?? 'worst stream'})`);
  }
  const open = gauges.find((gauge) => gauge.name === 'alerter_alerts_open');
  if (open) parts.push(`${format.count(open.value)} alerts open`);
  if (!parts.length && gauges.length) parts.push(`${gauges.length} gauge${gauges.length === 1 ? '' : 's'}`);
  return parts.join(', ');
}

function worstLag(row) {
  const lags = (row.gauges ?? []).filter((gauge) => gauge.name === 'archiver_lag_seconds').map((gauge) => gauge.value);
  return lags.length ? Math.max(...lags) : null;
}

/** Every counter and gauge of a report, folded away. */
function details(row) {
  const counters = Object.entries(row.counters ?? {});
  const gauges = Array.isArray(row.gauges) ? row.gauges : [];
  if (!counters.length && !gauges.length) return h('span', { class: 'muted' }, 'none');
  return h(
    'details',
    { class: 'service-details' },
    h('summary', { title: 'Every counter and gauge of its last report' }, `${counters.length} counters, ${gauges.length} gauges`),
    h(
      'dl',
      {},
      counters.map(([name, value]) => h('div', {}, h('dt', { class: 'mono' }, name), h('dd', {}, format.count(value)))),
      gauges.map((gauge) => h('div', {}, h('dt', { class: 'mono' }, gaugeName(gauge)), h('dd', {}, format.number(gauge.value)))),
    ),
  );
}

const detailsCsv = (row) =>
  [
    ...Object.entries(row.counters ?? {}).map(([name, value]) => `${name}=${value}`),
    ...(row.gauges ?? []).map((gauge) => `${gaugeName(gauge)}=${gauge.value}`),
  ].join('; ');

const STATES = [
  { value: '', label: 'all' },
  { value: 'up', label: 'up' },
  { value: 'stale', label: 'stale' },
];

export function servicesPanel() {
  const query = readQuery();
  let search = query.service ?? '';
  let state = STATES.some((option) => option.value === query.state) ? query.state : '';
  let reports = [];
  /** instance key -> { time, out } of the report before, for the rates. */
  const previous = new Map();
  const rates = new Map();

  const table = sortedTable({
    id: 'services',
    caption: 'Services',
    urlKey: 'sort',
    sort: { key: 'service', order: 'asc' },
    csv: { filename: 'services' },
    empty: 'No service has reported its health yet.',
    rowKey: (row) => `${row.service}/${row.instance}`,
    columns: [
      { key: 'service', label: 'Service', title: 'The service that sent the report', value: (row) => h('strong', {}, String(row.service)) },
      { key: 'instance', label: 'Instance', title: 'Host and process id of the instance', value: (row) => h('span', { class: 'mono' }, String(row.instance)) },
      {
        key: 'state',
        label: 'State',
        title: 'up: reported within the last 10 s; stale: its reports stopped',
        sortValue: (row) => (row.up ? 'up' : 'stale'),
        value: (row) => stateBadge(row.up ? 'up' : 'stale', row.up ? 'Reported within the last 10 s' : 'No report for over 10 s: stopped or cut off'),
        csv: (row) => (row.up ? 'up' : 'stale'),
      },
      {
        key: 'age_ms',
        label: 'Last report',
        title: 'How long ago its last health report came (every 2 s while it runs)',
        num: true,
        value: (row) => h('span', { title: format.dateTime(row.time) }, format.ago(Date.now() - row.age_ms)),
      },
      {
        key: 'uptime',
        label: 'Uptime',
        title: 'Since the instance started, as of its last report',
        num: true,
        sortValue: (row) => row.time - row.started_at,
        value: (row) => h('span', { title: `started ${format.dateTime(row.started_at)}` }, format.duration(row.time - row.started_at)),
        csv: (row) => row.time - row.started_at,
      },
      {
        key: 'restarts',
        label: 'Restarts',
        title: 'Times its supervisor (just up) started it again after it died; a dash when nothing supervises it',
        num: true,
        value: (row) => (row.restarts === undefined || row.restarts === null ? '—' : String(row.restarts)),
      },
      { key: 'version', label: 'Version', title: 'The build it runs' },
      {
        key: 'in',
        label: 'In',
        title: 'What it took in since it started (collector: ingest messages; processor: events folded; archiver: heartbeats read)',
        num: true,
        sortValue: (row) => sum(row.counters, FLOW[row.service]?.in ?? []),
        value: (row) => h('span', { title: FLOW[row.service]?.inLabel || 'no such counter' }, format.count(sum(row.counters, FLOW[row.service]?.in ?? []))),
        csv: (row) => sum(row.counters, FLOW[row.service]?.in ?? []),
      },
      {
        key: 'out',
        label: 'Out',
        title: 'What it put out since it started (collector: events stored; processor: ticks; archiver: messages archived; alerter: alert changes and notifications)',
        num: true,
        sortValue: (row) => sum(row.counters, FLOW[row.service]?.out ?? []),
        value: (row) => h('span', { title: FLOW[row.service]?.outLabel || 'no such counter' }, format.count(sum(row.counters, FLOW[row.service]?.out ?? []))),
        csv: (row) => sum(row.counters, FLOW[row.service]?.out ?? []),
      },
      {
        key: 'rate',
        label: 'Out/s',
        title: 'How fast "Out" rose between its last two reports, per second',
        num: true,
        sortValue: (row) => rates.get(`${row.service}/${row.instance}`) ?? null,
        value: (row) => format.number(rates.get(`${row.service}/${row.instance}`)),
        csv: (row) => rates.get(`${row.service}/${row.instance}`) ?? null,
      },
      {
        key: 'dead',
        label: 'Dead letters',
        title: 'Messages it dead-lettered, could not decode or skipped since it started',
        num: true,
        sortValue: (row) => sum(row.counters, Object.keys(row.counters ?? {}).filter(isDeadLetter)),
        value: (row) => {
          const dead = sum(row.counters, Object.keys(row.counters ?? {}).filter(isDeadLetter));
          return h('span', { class: dead > 0 ? 'dead-letters' : null }, format.count(dead));
        },
        csv: (row) => sum(row.counters, Object.keys(row.counters ?? {}).filter(isDeadLetter)),
      },
      {
        key: 'gauges',
        label: 'Gauges',
        title: 'Values that go up and down: the archiver\'s lag behind its streams (the worst), whether it is the active one',
        sortValue: worstLag,
        value: (row) => keyGauges(row) || '–',
        csv: (row) => keyGauges(row),
      },
      { key: 'details', label: 'All figures', title: 'Every counter and gauge of the last report', sortable: false, value: details, csv: detailsCsv },
    ],
  });

  const searchInput = h('input', { type: 'search', id: 'service-search', value: search, placeholder: 'service or instance', 'aria-label': 'Filter by service or instance' });
  const stateSelect = h('select', { id: 'service-state', 'aria-label': 'Show services by state' }, STATES.map((option) => h('option', { value: option.value }, option.label)));
  stateSelect.value = state;
  const summary = h('span', { class: 'muted small', id: 'services-summary', title: 'Instances reporting now / every instance seen' });
  const error = h('p', { class: 'error small', role: 'alert' });
  const element = h(
    'section',
    { class: 'panel services', 'aria-label': 'Services' },
    h(
      'div',
      { class: 'filters' },
      h('label', { title: 'Shows the instances whose service or instance contains this text' }, 'Filter', searchInput),
      h('label', { title: 'up: reporting; stale: no report for over 10 s' }, 'State', stateSelect),
      summary,
    ),
    error,
    table.element,
  );

  searchInput.addEventListener('input', () => {
    search = searchInput.value;
    writeQuery({ service: search.trim() });
    draw();
  });
  stateSelect.addEventListener('change', () => {
    state = stateSelect.value;
    writeQuery({ state });
    draw();
  });

  function draw() {
    const needle = search.trim().toLowerCase();
    const shown = reports.filter((row) => {
      if (state === 'up' && !row.up) return false;
      if (state === 'stale' && row.up) return false;
      return !needle || `${row.service} ${row.instance}`.toLowerCase().includes(needle);
    });
    const up = reports.filter((row) => row.up).length;
    setText(summary, `${up} of ${reports.length} instance${reports.length === 1 ? '' : 's'} up`);
    table.update(shown, shown.length === reports.length ? '' : `${shown.length} of ${reports.length} shown`);
  }

  function update(list) {
    setText(error, '');
    reports = Array.isArray(list) ? list : [];
    for (const row of reports) {
      const key = `${row.service}/${row.instance}`;
      const out = sum(row.counters, FLOW[row.service]?.out ?? []);
      const before = previous.get(key);
      if (before && row.time > before.time && out !== null && before.out !== null && out >= before.out) {
        rates.set(key, ((out - before.out) / (row.time - before.time)) * 1000);
      }
      if (!before || row.time > before.time) previous.set(key, { time: row.time, out });
    }
    draw();
  }

  return {
    element,
    update,
    showError(err) {
      setText(error, `The services' health could not be read: ${err.message}`);
    },
  };
}
