// Marks for the trend charts: where alerts fired and recovery actions ran in a range, from
// the archive (GET /api/alerts?state=firing and /api/events?type=recovery_action). A
// missing archive means no marks, never a broken chart.

import { getJson } from './api.js';

const MOST = 500;

/** `[{ time, label, kind }]` for [start, end] (ms). */
export async function loadMarkers(start, end, { signal } = {}) {
  const range = { start_time: Math.floor(start), end_time: Math.ceil(end), limit: MOST };
  const [alerts, recoveries] = await Promise.all([
    getJson('/api/alerts', { ...range, state: 'firing' }, { signal }).catch(() => null),
    getJson('/api/events', { ...range, type: 'recovery_action' }, { signal }).catch(() => null),
  ]);
  const markers = [];
  for (const row of alerts?.items ?? []) {
    // Each occurrence once: the change that fired it (acknowledgements re-send `firing`).
    const change = row.alert?.change;
    if (change && change !== 'fired') continue;
    markers.push({ time: row.time, label: `alert: ${row.summary}`, kind: row.severity ?? 'info' });
  }
  for (const row of recoveries?.items ?? []) {
    const detail = row.detail ?? {};
    const outcome = detail.succeeded ? 'worked' : 'failed';
    const target = detail.target ? ` on ${detail.target}` : '';
    markers.push({ time: row.time, label: `recovery: ${detail.action ?? 'action'}${target} ${outcome}`, kind: detail.succeeded ? 'recovery' : 'failed' });
  }
  return markers;
}
