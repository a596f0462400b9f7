// The overview's performance trends: throughput and queue/processing time percentiles over
// the chosen range, live from the WebSocket and from the archive before that.

import * as format from '../format.js';
import { trendPanel } from './trend-panel.js';

/** `live` is the app's RollingWindow. */
export function trendsPanel(live) {
  return trendPanel({
    id: 'trends',
    title: 'Performance',
    live,
    charts: [
      {
        title: 'Throughput',
        description: 'tasks completed per minute (over the last 60 s at each point)',
        series: [{ key: 'throughput_per_min', label: 'tasks/min' }],
        format: (value) => format.number(value),
      },
      {
        title: 'Queue and processing time',
        description: 'p50 and p95 of the time tasks waited to start and the time they ran',
        series: [
          { key: 'queue_time_ms_p50', label: 'queue p50' },
          { key: 'queue_time_ms_p95', label: 'queue p95', dash: [4, 3] },
          { key: 'processing_time_ms_p50', label: 'processing p50' },
          { key: 'processing_time_ms_p95', label: 'processing p95', dash: [4, 3] },
        ],
        format: (value) => format.duration(value),
      },
    ],
  });
}
