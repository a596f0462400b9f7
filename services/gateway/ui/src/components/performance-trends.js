// The performance page's trends: throughput, queue and processing time percentiles,
// scheduling efficiency and utilisation over the chosen range (in the URL), from the
// archive's system history and then, live, from the `system` messages this page receives
// (the app's own window keeps only the overview's five series).

import * as format from '../format.js';
import { loadHistory } from '../history.js';
import { trendPanel } from './trend-panel.js';

/** Each series, named as `SystemMetrics::flatten` names them, and how to read it live. */
const FROM_SYSTEM = {
  throughput_per_min: (system) => system.throughput_per_min,
  queue_time_ms_p50: (system) => system.queue_time_ms?.p50,
  queue_time_ms_p95: (system) => system.queue_time_ms?.p95,
  queue_time_ms_p99: (system) => system.queue_time_ms?.p99,
  processing_time_ms_p50: (system) => system.processing_time_ms?.p50,
  processing_time_ms_p95: (system) => system.processing_time_ms?.p95,
  processing_time_ms_p99: (system) => system.processing_time_ms?.p99,
  scheduling_efficiency: (system) => system.scheduling_efficiency,
  utilisation_cpu: (system) => system.utilisation?.cpu,
  utilisation_gpu: (system) => system.utilisation?.gpu,
  utilisation_memory: (system) => system.utilisation?.memory,
  utilisation_network: (system) => system.utilisation?.network,
};
export const PERFORMANCE_METRICS = Object.keys(FROM_SYSTEM);

/** A duration for an axis and a legend, short: "850 ms", "12.5 s", "2.5 min", "1.2 h". */
function shortDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${format.number(ms / 1000)} s`;
  if (ms < 3_600_000) return `${format.number(ms / 60_000)} min`;
  return `${format.number(ms / 3_600_000)} h`;
}

/** A day at a tick a second. */
const MAX_POINTS = 86_400;

/** The `system` messages seen while the page is open, as columns (the RollingWindow's shape). */
class PageWindow {
  constructor() {
    this.time = [];
    this.values = Object.fromEntries(PERFORMANCE_METRICS.map((name) => [name, []]));
  }

  push(system) {
    if (typeof system?.time !== 'number') return;
    const last = this.time.at(-1);
    if (last !== undefined && system.time <= last) return;
    this.time.push(system.time);
    for (const name of PERFORMANCE_METRICS) {
      const value = FROM_SYSTEM[name](system);
      this.values[name].push(Number.isFinite(value) ? value : null);
    }
    if (this.time.length > MAX_POINTS + 1000) {
      const drop = this.time.length - MAX_POINTS;
      this.time.splice(0, drop);
      for (const name of PERFORMANCE_METRICS) this.values[name].splice(0, drop);
    }
  }

  get since() {
    return this.time.length ? this.time[0] : null;
  }
}

/** The panel; `push(system)` adds a live point, `draw()` redraws, `destroy()` ends it. */
export function performanceTrends() {
  const live = new PageWindow();
  const panel = trendPanel({
    id: 'performance-trends',
    title: 'Trends',
    live,
    metrics: PERFORMANCE_METRICS,
    load: (start, end, signal) => loadHistory(start, end, PERFORMANCE_METRICS, { signal }),
    charts: [
      {
        title: 'Throughput',
        description: 'Tasks completed per minute (over the 60 s before each point)',
        series: [{ key: 'throughput_per_min', label: 'tasks/min' }],
        format: (value) => format.number(value),
      },
      {
        title: 'Queue time',
        description: 'p50, p95 and p99 of how long the last 1000 starts waited (start − last queued)',
        series: [
          { key: 'queue_time_ms_p50', label: 'p50' },
          { key: 'queue_time_ms_p95', label: 'p95', dash: [4, 3] },
          { key: 'queue_time_ms_p99', label: 'p99', dash: [1, 3] },
        ],
        format: shortDuration,
      },
      {
        title: 'Processing time',
        description: 'p50, p95 and p99 of how long the last 1000 completions ran (finish − start)',
        series: [
          { key: 'processing_time_ms_p50', label: 'p50' },
          { key: 'processing_time_ms_p95', label: 'p95', dash: [4, 3] },
          { key: 'processing_time_ms_p99', label: 'p99', dash: [1, 3] },
        ],
        format: shortDuration,
      },
      {
        title: 'Scheduling efficiency',
        description: 'Share of the last 1000 assignments that went to a best-fit worker',
        series: [{ key: 'scheduling_efficiency', label: 'best fit' }],
        format: (value) => format.ratio(value),
      },
      {
        title: 'Utilisation',
        description: 'Mean CPU, GPU, memory and network use over connected workers (GPU: those that have one)',
        series: [
          { key: 'utilisation_cpu', label: 'CPU' },
          { key: 'utilisation_gpu', label: 'GPU' },
          { key: 'utilisation_memory', label: 'memory' },
          { key: 'utilisation_network', label: 'network' },
        ],
        format: (value) => format.percent(value),
      },
    ],
  });
  return {
    element: panel.element,
    start: panel.start,
    draw: panel.draw,
    destroy: panel.destroy,
    push: (system) => live.push(system),
  };
}
