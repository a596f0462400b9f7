// Metrics over time, for the trend charts: a rolling window of the `system` messages this
// browser has seen on the WebSocket, and the archive's history (GET
// /api/metrics/system/history, /api/metrics/workers/{id}/history) for ranges that reach
// further back.

import { getJson } from './api.js';

/** The series the charts draw, named as `SystemMetrics::flatten` names them. */
export const TREND_METRICS = [
  'throughput_per_min',
  'queue_time_ms_p50',
  'queue_time_ms_p95',
  'processing_time_ms_p50',
  'processing_time_ms_p95',
];

const FROM_SYSTEM = {
  throughput_per_min: (system) => system.throughput_per_min,
  queue_time_ms_p50: (system) => system.queue_time_ms?.p50,
  queue_time_ms_p95: (system) => system.queue_time_ms?.p95,
  processing_time_ms_p50: (system) => system.processing_time_ms?.p50,
  processing_time_ms_p95: (system) => system.processing_time_ms?.p95,
};

/** A day at one tick a second; older points are dropped in chunks. */
const MAX_POINTS = 86_400;

/** The `system` messages seen so far, as columns (times in ms, one array per metric). */
export class RollingWindow {
  constructor() {
    this.time = [];
    this.values = Object.fromEntries(TREND_METRICS.map((name) => [name, []]));
  }

  push(system) {
    if (typeof system?.time !== 'number') return;
    const last = this.time.at(-1);
    if (last !== undefined && system.time <= last) return;
    this.time.push(system.time);
    for (const name of TREND_METRICS) this.values[name].push(FROM_SYSTEM[name](system) ?? null);
    if (this.time.length > MAX_POINTS + 1000) {
      const drop = this.time.length - MAX_POINTS;
      this.time.splice(0, drop);
      for (const name of TREND_METRICS) this.values[name].splice(0, drop);
    }
  }

  /** The time of the oldest point seen, ms, or null before any. */
  get since() {
    return this.time.length ? this.time[0] : null;
  }
}

/**
 * A history endpoint (`path`, default the system's) for [start, end] (ms) and `metrics`.
 * Resolves to `{ resolution, intervalMs, time, values: { name: [mean...] } }` (`last` of
 * each bucket for the metrics in `lastOf`, such as counters); rejects with the ApiError
 * (404 or 503 while the archive cannot answer).
 */
export async function loadHistory(start, end, metrics = TREND_METRICS, { signal, path = '/api/metrics/system/history', lastOf = [] } = {}) {
  const body = await getJson(
    path,
    { start_time: Math.floor(start), end_time: Math.ceil(end), metrics: metrics.join(',') },
    { signal },
  );
  const time = Array.isArray(body.time) ? body.time : [];
  const values = {};
  for (const name of metrics) {
    const series = body.metrics?.[name];
    const field = lastOf.includes(name) ? 'last' : 'mean';
    values[name] = Array.isArray(series?.[field]) ? series[field] : time.map(() => null);
  }
  return { resolution: body.resolution, intervalMs: body.interval_ms, time, values };
}

/**
 * Per-bucket rates from counters: for each metric of `counters`, the increase over the
 * bucket before, per minute (`null` where the counter went back, after a restart).
 */
export function perMinute(series, counters) {
  const values = { ...series.values };
  for (const name of counters) {
    const totals = series.values[name] ?? [];
    values[`${name}_per_min`] = totals.map((total, i) => {
      if (i === 0 || total === null || totals[i - 1] === null) return null;
      const rise = total - totals[i - 1];
      const minutes = (series.time[i] - series.time[i - 1]) / 60_000;
      return rise >= 0 && minutes > 0 ? rise / minutes : null;
    });
  }
  return { ...series, values };
}

/**
 * One set of columns for [start, end] (ms): the history's points older than the first one
 * seen live, then the live points; a gap between the two is left as a gap, not a line.
 */
export function mergeSeries(history, live, start, end, metrics = TREND_METRICS) {
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
