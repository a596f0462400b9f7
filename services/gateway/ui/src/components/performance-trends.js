// The performance page's trends: throughput, queue and processing time percentiles,
// scheduling efficiency and utilisation over the chosen range (in the URL), from the
// archive's system history and then, live, from the app's window of `system` messages.

import * as format from '../format.js';
import { trendPanel } from './trend-panel.js';

/** The panel over `live`, the app's RollingWindow. */
export function performanceTrends(live) {
  return trendPanel({
    id: 'performance-trends',
    title: 'Trends',
    live,
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
        format: format.shortDuration,
      },
      {
        title: 'Processing time',
        description: 'p50, p95 and p99 of how long the last 1000 completions ran (finish − start)',
        series: [
          { key: 'processing_time_ms_p50', label: 'p50' },
          { key: 'processing_time_ms_p95', label: 'p95', dash: [4, 3] },
          { key: 'processing_time_ms_p99', label: 'p99', dash: [1, 3] },
        ],
        format: format.shortDuration,
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
}
