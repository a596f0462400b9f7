// What the System and Fault tolerance pages' trends need beyond the app's RollingWindow:
// every figure of the `system` messages (named as `SystemMetrics::flatten` names them), the
// rate of each counter over the trailing minute, a history loader that adds those rates,
// and the time range the pages' trend picker holds (read from the URL as range.js writes
// it), for the panels that follow the same range.

import { loadHistory } from '../history.js';
import { RANGES } from '../range.js';
import { readQuery } from '../url-state.js';

/** Each flattened metric and how to read it from a `system` message. */
const FROM_SYSTEM = {
  workers_total: (s) => s.workers?.total,
  workers_active: (s) => s.workers?.active,
  workers_idle: (s) => s.workers?.idle,
  workers_busy: (s) => s.workers?.busy,
  workers_overloaded: (s) => s.workers?.overloaded,
  workers_disconnected: (s) => s.workers?.disconnected,
  tasks_queued: (s) => s.tasks?.queued,
  tasks_assigned: (s) => s.tasks?.assigned,
  tasks_running: (s) => s.tasks?.running,
  tasks_completed: (s) => s.tasks?.completed,
  tasks_failed: (s) => s.tasks?.failed,
  tasks_cancelled: (s) => s.tasks?.cancelled,
  tasks_retried: (s) => s.tasks?.retried,
  throughput_per_min: (s) => s.throughput_per_min,
  queue_time_ms_p50: (s) => s.queue_time_ms?.p50,
  queue_time_ms_p95: (s) => s.queue_time_ms?.p95,
  queue_time_ms_p99: (s) => s.queue_time_ms?.p99,
  processing_time_ms_p50: (s) => s.processing_time_ms?.p50,
  processing_time_ms_p95: (s) => s.processing_time_ms?.p95,
  processing_time_ms_p99: (s) => s.processing_time_ms?.p99,
  scheduling_efficiency: (s) => s.scheduling_efficiency,
  utilisation_cpu: (s) => s.utilisation?.cpu,
  utilisation_gpu: (s) => s.utilisation?.gpu,
  utilisation_memory: (s) => s.utilisation?.memory,
  utilisation_network: (s) => s.utilisation?.network,
  faults_recovery_actions: (s) => s.faults?.recovery_actions,
  faults_recovery_actions_succeeded: (s) => s.faults?.recovery_actions_succeeded,
  faults_outages: (s) => s.faults?.outages,
  faults_recoveries: (s) => s.faults?.recoveries,
  faults_mean_time_to_recovery_ms: (s) => s.faults?.mean_time_to_recovery_ms,
  events_seq: (s) => s.events_seq,
};

/** The metrics that only count up: their rates are `<name>_per_min`. */
export const COUNTERS = [
  'tasks_completed',
  'tasks_failed',
  'tasks_retried',
  'faults_recovery_actions',
  'faults_recovery_actions_succeeded',
  'faults_outages',
  'faults_recoveries',
  'events_seq',
];

const RATE_WINDOW_MS = 60_000;
/** Less than this much data gives no rate (a rate over a second or two is noise). */
const MIN_RATE_SPAN_MS = 2_000;
/** Two hours at one tick a second. */
const MAX_POINTS = 7_200;

const rateKey = (counter) => `${counter}_per_min`;

/** Every key a live window or a loaded history carries. */
export const ALL_METRICS = [...Object.keys(FROM_SYSTEM), ...COUNTERS.map(rateKey)];

/**
 * The rise of `totals` over the trailing `windowMs` at each point, per minute: the points
 * of the minute before when the series is finer than a minute (a per-second rate of a
 * rare counter is all spikes), the point before when it is a minute or coarser (as
 * history.js perMinute does). Null where a counter went back (a restart) or is missing.
 */
function trailingRate(time, totals, windowMs = RATE_WINDOW_MS) {
  const out = new Array(time.length).fill(null);
  let j = 0;
  for (let i = 1; i < time.length; i++) {
    while (j + 1 < i && time[j + 1] <= time[i] - windowMs) j++;
    const span = time[i] - time[j];
    const [now, then] = [totals[i], totals[j]];
    if (span < MIN_RATE_SPAN_MS || now === null || now === undefined || then === null || then === undefined) continue;
    const rise = now - then;
    if (rise >= 0) out[i] = (rise / span) * 60_000;
  }
  return out;
}

/** `series` ({ time, values }) with `<counter>_per_min` added for each counter it holds. */
export function addRates(series, counters = COUNTERS) {
  const values = { ...series.values };
  for (const counter of counters) {
    if (!series.values[counter]) continue;
    values[rateKey(counter)] = trailingRate(series.time, series.values[counter]);
  }
  return { ...series, values };
}

/**
 * The archive's system history for [start, end] with every metric of `metrics` (a
 * `_per_min` one is loaded as its counter, each bucket's last value, and derived); a
 * minute more is read before `start`, so the first points have their rate.
 */
export async function loadSystemHistory(start, end, metrics, signal) {
  const wanted = new Set();
  const counters = [];
  for (const name of metrics) {
    const counter = COUNTERS.find((candidate) => rateKey(candidate) === name);
    if (counter) {
      wanted.add(counter);
      counters.push(counter);
    } else {
      wanted.add(name);
    }
  }
  const loaded = await loadHistory(start - RATE_WINDOW_MS, end, [...wanted], { signal, lastOf: COUNTERS });
  return addRates(loaded, counters);
}

/**
 * The `system` messages seen since the first of these pages opened, every figure as a
 * column (what trendPanel's `live` reads: `since`, `time`, `values`), with the counters'
 * trailing rates.
 */
class LiveSystemWindow {
  constructor() {
    this.time = [];
    this.values = Object.fromEntries(ALL_METRICS.map((name) => [name, []]));
  }

  push(system) {
    if (typeof system?.time !== 'number') return;
    const last = this.time.at(-1);
    if (last !== undefined && system.time <= last) return;
    this.time.push(system.time);
    for (const [name, read] of Object.entries(FROM_SYSTEM)) {
      const value = Number(read(system));
      this.values[name].push(Number.isFinite(value) ? value : null);
    }
    const i = this.time.length - 1;
    for (const counter of COUNTERS) this.values[rateKey(counter)].push(this.rateAt(counter, i));
    if (this.time.length > MAX_POINTS + 600) {
      const drop = this.time.length - MAX_POINTS;
      this.time.splice(0, drop);
      for (const name of ALL_METRICS) this.values[name].splice(0, drop);
    }
  }

  /** The counter's rise over the minute before point `i`, per minute. */
  rateAt(counter, i) {
    const time = this.time;
    const target = time[i] - RATE_WINDOW_MS;
    // The latest point at or before a minute ago (or the first one).
    let lo = 0;
    let hi = i;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (time[mid] <= target) lo = mid;
      else hi = mid - 1;
    }
    const span = time[i] - time[lo];
    const now = this.values[counter][i];
    const then = this.values[counter][lo];
    if (span < MIN_RATE_SPAN_MS || now === null || then === null || now < then) return null;
    return ((now - then) / span) * 60_000;
  }

  /** The latest value of `name`, or null. */
  latest(name) {
    return this.values[name]?.at(-1) ?? null;
  }

  /** The time of the oldest point seen, ms, or null before any. */
  get since() {
    return this.time.length ? this.time[0] : null;
  }
}

const windows = new WeakMap();

/** The one window for `socket`, fed by its `system` messages for as long as the app runs. */
export function liveSystemWindow(socket) {
  let window = windows.get(socket);
  if (!window) {
    window = new LiveSystemWindow();
    window.push(socket.latest?.get('system'));
    socket.on('system', (system) => window.push(system));
    windows.set(socket, window);
  }
  return window;
}

/**
 * The range the trend picker holds now, from the URL as range.js keeps it:
 * `{ start, end, follows, key }` (`key` names it, to tell a change).
 */
export function chosenRange(fallback = '15m', now = Date.now()) {
  const query = readQuery();
  let selected = RANGES.find((range) => range.value === query.range) ?? RANGES.find((range) => range.value === fallback);
  if (selected.value === 'custom') {
    const start = Number(query.from);
    const end = Number(query.to);
    if (Number.isFinite(start) && Number.isFinite(end) && end > start) return { start, end, follows: false, key: `custom:${start}:${end}` };
    selected = RANGES[0];
  }
  return { start: now - selected.ms, end: now, follows: true, key: selected.value };
}

/**
 * Calls `onChange(range)` whenever the picker inside `panel` (a trendPanel's element)
 * changes the range; returns the function that stops it.
 */
export function followRange(panel, onChange, fallback = '15m') {
  let last = chosenRange(fallback).key;
  const check = () => {
    // The picker's own handlers ran first (they are on its buttons and form).
    const range = chosenRange(fallback);
    if (range.key === last) return;
    last = range.key;
    onChange(range);
  };
  panel.addEventListener('click', check);
  panel.addEventListener('submit', check);
  return () => {
    panel.removeEventListener('click', check);
    panel.removeEventListener('submit', check);
  };
}
