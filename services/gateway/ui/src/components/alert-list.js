// Alerts and notifications: the alerts firing now (severity, summary, target, since when),
// and the most recent task failures with their error text. Every string from the fleet is
// set as text: an error message is shown exactly as it was sent.

import { h, replace } from '../dom.js';
import * as format from '../format.js';

const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };
const FAILURES_SHOWN = 20;
/** Open alerts listed here; the Alerts page has them all (a big fleet has hundreds). */
const ALERTS_SHOWN = 20;

export function alertPanel() {
  const count = h('span', { id: 'alerts-firing', title: 'Alerts firing now' }, '0');
  const firingList = h('ul', { class: 'alert-list', id: 'alert-list', 'aria-live': 'polite' });
  const failureList = h('ul', { class: 'failure-list', id: 'failure-list' });
  const failureNote = h('span', { class: 'muted small' }, '');
  const element = h(
    'section',
    { class: 'panel alerts', 'aria-labelledby': 'alerts-title' },
    h(
      'div',
      { class: 'alerts-columns' },
      h(
        'div',
        {},
        h('h2', { id: 'alerts-title' }, 'Alerts firing (', count, ')'),
        firingList,
      ),
      h(
        'div',
        {},
        h('h2', { id: 'failures-title' }, 'Recent task failures ', failureNote),
        failureList,
      ),
    ),
  );

  function updateFiring(firing) {
    const alerts = Array.isArray(firing?.alerts) ? [...firing.alerts] : [];
    alerts.sort(
      (a, b) => (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) || b.started_at - a.started_at,
    );
    count.textContent = format.count(alerts.length);
    if (alerts.length === 0) {
      replace(firingList, h('li', { class: 'muted' }, 'No alerts firing.'));
      return;
    }
    const more = alerts.length - ALERTS_SHOWN;
    replace(
      firingList,
      alerts.slice(0, ALERTS_SHOWN).map((alert) =>
        h(
          'li',
          {
            class: `alert severity-${alert.severity}`,
            title: `${alert.rule} on ${alert.target}: value ${format.number(alert.value)}, threshold ${format.number(alert.threshold)}, since ${format.dateTime(alert.started_at)}`,
          },
          h('span', { class: `severity severity-${alert.severity}` }, alert.severity),
          h('span', { class: 'alert-summary' }, alert.summary),
          h('span', { class: 'muted small alert-since' }, format.ago(alert.started_at)),
        ),
      ),
      more > 0 ? h('li', { class: 'muted' }, h('a', { href: '/alerts' }, `${format.count(more)} more on the Alerts page`)) : null,
    );
  }

  function updateFailures(recentFailures) {
    const failures = Array.isArray(recentFailures?.items) ? recentFailures.items.slice(0, FAILURES_SHOWN) : [];
    failureNote.textContent = recentFailures?.total ? `(latest ${failures.length} of ${format.count(recentFailures.total)})` : '';
    if (failures.length === 0) {
      replace(failureList, h('li', { class: 'muted' }, 'No failures recently.'));
      return;
    }
    replace(
      failureList,
      failures.map((task) =>
        h(
          'li',
          {
            class: 'failure',
            title: `task ${task.task_id}: queued ${format.duration(task.queue_ms)}, ran ${format.duration(task.processing_ms)}`,
          },
          h('span', { class: 'muted small' }, format.time(task.finished_at)),
          ' ',
          h('span', { class: 'failure-model' }, task.model),
          task.worker_id ? [' on ', h('a', { href: `/workers/${encodeURIComponent(task.worker_id)}` }, task.worker_id)] : null,
          ': ',
          h('span', { class: 'failure-error' }, task.error ?? 'no error given'),
        ),
      ),
    );
  }

  updateFiring(null);
  updateFailures(null);
  return { element, updateFiring, updateFailures };
}
