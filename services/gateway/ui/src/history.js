// System metrics over time, for the trend charts: a rolling window of the `system` messages
// this browser has seen on the WebSocket, and the archive's history
// (GET /api/metrics/system/history) for ranges that reach further back.

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
 * GET /api/metrics/system/history for [start, end] (ms) and `metrics`. Resolves to
 * `{ resolution, interval_ms, time, values: { name: [mean...] } }`; rejects with the
 * ApiError (status 404 or 503 while the archive cannot answer).
 */
export async function loadHistory(start, end, metrics = TREND_METRICS, { signal } = {}) {
  const body = await getJson(
    '/api/metrics/system/history',
    { start_time: Math.floor(start), end_time: Math.ceil(end), metrics: metrics.join(',') },
    { signal },
  );
  const time = Array.isArray(body.time) ? body.time : [];
  const values = {};
  for (const name of metrics) {
    const series = body.metrics?.[name];
    values[name] = Array.isArray(series?.mean) ? series.mean : time.map(() => null);
  }
  return { resolution: body.resolution, intervalMs: body.interval_ms, time, values };
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
