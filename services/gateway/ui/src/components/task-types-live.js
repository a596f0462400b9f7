// The task metrics (GET /api/metrics/tasks's shape) for the task-types pages: live from the
// `tasks` WebSocket topic while it delivers, else read from the REST API at the refresh
// rate (before the first message, with live updates off, or while the socket is away).

import { getJson } from '../api.js';

/** A `tasks` message older than this no longer counts as live. */
const STALE_MS = 3000;

export function liveTasks(app) {
  let latest = null;
  let receivedAt = 0;
  const unfollow = app.socket.follow(['tasks']);
  const take = (tasks) => {
    if (!tasks || (latest && tasks.time < latest.time)) return;
    latest = tasks;
    receivedAt = Date.now();
  };
  take(app.socket.latest.get('tasks'));
  const off = app.socket.on('tasks', take);
  return {
    /** The newest task metrics, or null before any. */
    current: () => latest,
    /** Reads the REST API unless the socket delivered lately; rejects with its ApiError. */
    async poll() {
      if (latest && Date.now() - receivedAt < STALE_MS) return latest;
      const tasks = await getJson('/api/metrics/tasks');
      if (!latest || tasks.time >= latest.time) {
        latest = tasks;
        receivedAt = 0;
      }
      return latest;
    },
    stop() {
      off();
      unfollow();
    },
  };
}
