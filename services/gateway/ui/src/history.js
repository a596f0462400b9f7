// Metrics over time, for the trend charts: a rolling window of every figure of the `system`
// messages this browser has seen on the WebSocket (named as `SystemMetrics::flatten` names
// them, with each counter's rate over the trailing minute as `<counter>_per_min`), and the
// archive's history (GET /api/metrics/system/history, /api/metrics/workers/{id}/history)
// for ranges that reach further back.

import { getJson } from './api.js';

/** Each flattened system metric and how to read it from a `system` message. */
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
/** Two hours at a tick a second; older ranges come from the archive. */
const MAX_POINTS = 7_200;

const rateKey = (counter) => `${counter}_per_min`;

/** Every key the window and a loaded system history carry. */
export const SYSTEM_METRICS = [...Object.keys(FROM_SYSTEM), ...COUNTERS.map(rateKey)];

/**
 * The rise of `totals` over the trailing minute at each point, per minute: over the points
 * of the minute before when the series is finer than a minute (a per-second rate of a rare
 * counter is all spikes), over the point before when it is a minute or coarser. Null where
 * a counter went back (a restart) or is missing.
 */
function trailingRate(time, totals) {
  const out = new Array(time.length).fill(null);
  let j = 0;
  for (let i = 1; i < time.length; i++) {
    while (j + 1 < i && time[j + 1] <= time[i] - RATE_WINDOW_MS) j++;
    const span = time[i] - time[j];
    const [now, then] = [totals[i], totals[j]];
    if (span < MIN_RATE_SPAN_MS || now === null || now === undefined || then === null || then === undefined) continue;
    const rise = now - then;
    if (rise >= 0) out[i] = (rise / span) * 60_000;
  }
  return out;
}

/** The `system` messages seen so far, as columns (times in ms, one array per metric). */
export class RollingWindow {
  constructor() {
    this.time = [];
    this.values = Object.fromEntries(SYSTEM_METRICS.map((name) => [name, []]));
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
      for (const name of SYSTEM_METRICS) this.values[name].splice(0, drop);
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

/**
 * A history endpoint (`path`, default the system's) for [start, end] (ms) and `metrics`.
 * Resolves to `{ resolution, intervalMs, time, values: { name: [mean...] } }`: each
 * bucket's mean, or its last value for the counters. A `<counter>_per_min` of the system's
 * is loaded as its counter (from a minute before `start`, so the first points have a rate)
 * and derived. Rejects with the ApiError (404 or 503 while the archive cannot answer).
 */
export async function loadHistory(start, end, metrics, { signal, path = '/api/metrics/system/history' } = {}) {
  const rates = COUNTERS.filter((counter) => metrics.includes(rateKey(counter)));
  const asked = new Set(metrics.filter((name) => !rates.some((counter) => rateKey(counter) === name)));
  for (const counter of rates) asked.add(counter);
  const from = rates.length ? start - RATE_WINDOW_MS : start;
  const body = await getJson(path, { start_time: Math.floor(from), end_time: Math.ceil(end), metrics: [...asked].join(',') }, { signal });
  const time = Array.isArray(body.time) ? body.time : [];
  const values = {};
  for (const name of asked) {
    const series = body.metrics?.[name];
    const field = COUNTERS.includes(name) ? 'last' : 'mean';
    values[name] = Array.isArray(series?.[field]) ? series[field] : time.map(() => null);
  }
  for (const counter of rates) values[rateKey(counter)] = trailingRate(time, values[counter]);
  return { resolution: body.resolution, intervalMs: body.interval_ms, time, values };
}

/**
 * One set of columns for [start, end] (ms): the history's points older than the first one
 * seen live, then the live points; a gap between the two is left as a gap, not a line.
 */
export function mergeSeries(history, live, start, end, metrics) {
  const time = [];
  const values = Object.fromEntries(metrics.map((name) => [name, []]));
  const liveSince = live.since ?? Infinity;
  let lastTime = null;
  if (history) {
    for (let i = 0; i < history.time.length; i++) {
      const t = history.time[i];
      if (t < start || t > end || t >= liveSince) continue;
      time.push(t);
      for (const name of metrics) values[name].push(history.values[name]?.[i] ?? null);
      lastTime = t;
    }
  }
  const gapMs = Math.max(5000, (history?.intervalMs ?? 0) * 3);
  for (let i = 0; i < live.time.length; i++) {
    const t = live.time[i];
    if (t < start || t > end) continue;
    if (lastTime !== null && t - lastTime > gapMs) {
      time.push(lastTime + 1);
      for (const name of metrics) values[name].push(null);
    }
    time.push(t);
    for (const name of metrics) values[name].push(live.values[name]?.[i] ?? null);
    lastTime = t;
  }
  return { time, values };
}
