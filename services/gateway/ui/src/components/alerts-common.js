// What the alerts page's parts share: severities and rules as schemas/alerts.md names them,
// a severity badge, the link an alert's target leads to (a worker, a task, a model's
// family, a service), and who acts on alerts, remembered in this browser.

import { getJson } from '../api.js';
import { h } from '../dom.js';
import * as format from '../format.js';
import { signedInName } from '../session.js';

export const SEVERITIES = ['critical', 'warning', 'info'];
export const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };
export const SEVERITY_MEANING = {
  critical: 'Needs someone now',
  warning: 'Needs a look soon',
  info: 'Worth knowing',
};

/** Every built-in rule (schemas/alerts.md), and `custom` for posted alerts. */
export const RULES = [
  'worker_overloaded',
  'worker_lost',
  'worker_failure_trend',
  'task_stalled',
  'queue_time_high',
  'queue_too_long',
  'failure_burst',
  'low_success_rate',
  'low_scheduling_efficiency',
  'coordinator_unreachable',
  'archive_lag',
  'dead_letters_rising',
  'service_silent',
  'throughput_anomaly',
  'queue_time_anomaly',
  'latency_anomaly',
  'custom',
];

const WORKER_RULES = new Set(['worker_overloaded', 'worker_lost', 'worker_failure_trend']);

export function severityBadge(severity) {
  const known = SEVERITY_RANK[severity] !== undefined;
  return h(
    'span',
    { class: `severity severity-${known ? severity : 'info'}`, title: `${severity}: ${SEVERITY_MEANING[severity] ?? 'severity as sent'}` },
    severity ?? '–',
  );
}

/** "3 min ago" with the date and time as its tooltip. */
export function since(ms) {
  return h('span', { class: 'since', 'data-ms': ms, title: `${format.dateTime(ms)} (${format.time(ms)})` }, format.ago(ms));
}

/** Moves every "… ago" under `root` on to now, without redrawing the rows. */
export function refreshSince(root) {
  const now = Date.now();
  for (const span of root.querySelectorAll('span.since[data-ms]')) {
    const text = format.ago(Number(span.dataset.ms), now);
    if (span.textContent !== text) span.textContent = text;
  }
}

/**
 * Redraws only what changed: `draw()` runs when `value` differs from the last one given
 * (so a row someone is about to click is not replaced by an identical one).
 */
export function onChange() {
  let last = null;
  return (value, draw) => {
    const key = JSON.stringify(value);
    if (key === last) return false;
    last = key;
    draw();
    return true;
  };
}

// A model's family, looked up once per model (a model:<m> target links to its family's page).
const families = new Map();
const familyListeners = new Set();

/** Calls `listener()` when a model's family becomes known (the page redraws its links). */
export function onFamilyFound(listener) {
  familyListeners.add(listener);
  return () => familyListeners.delete(listener);
}

function familyOf(model) {
  if (families.has(model)) return families.get(model);
  families.set(model, undefined);
  (async () => {
    const live = await getJson('/api/tasks', { model, group_by: 'family' }).catch(() => null);
    let family = live?.groups?.find((group) => group.key && group.key !== 'unknown')?.key ?? null;
    if (!family) {
      const finished = await getJson('/api/tasks', { model, status: 'completed,failed', limit: 1 }).catch(() => null);
      family = finished?.items?.[0]?.family ?? null;
    }
    families.set(model, family);
    if (family) for (const listener of familyListeners) listener();
  })();
  return undefined;
}

/**
 * Where an alert's target leads: `{ href, kind }` or null. A worker (its page), a task (its
 * page), a model (its family's page, once known), a service or component (the system page).
 */
export function targetHref(alert) {
  const target = typeof alert?.target === 'string' ? alert.target : '';
  const labels = alert?.labels ?? {};
  if (!target) return null;
  if (labels.worker_id === target || (WORKER_RULES.has(alert.rule) && !target.includes(':'))) {
    return { href: `/workers/${encodeURIComponent(target)}`, kind: 'worker' };
  }
  if (labels.task_id === target || (alert.rule === 'task_stalled' && !target.includes(':'))) {
    return { href: `/tasks/${encodeURIComponent(target)}`, kind: 'task' };
  }
  if (target.startsWith('model:')) {
    const family = familyOf(target.slice('model:'.length));
    return family ? { href: `/task-types/${encodeURIComponent(family)}`, kind: 'family', family } : null;
  }
  if (target.startsWith('service:') || target.startsWith('component:')) return { href: '/system', kind: 'system' };
  return null;
}

const KIND_TITLE = {
  worker: 'Open this worker\'s page',
  task: 'Open this task\'s page',
  family: 'Open the page of this model\'s family',
  system: 'Open the system page (services and components)',
};

/** The target as text, a link where it leads somewhere; a stalled task's worker too. */
export function targetCell(alert) {
  const found = targetHref(alert);
  const target = alert?.target ?? '–';
  const main = found
    ? h('a', { href: found.href, class: 'alert-target', title: `${KIND_TITLE[found.kind]}${found.family ? ` (${found.family})` : ''}` }, target)
    : h('span', { class: 'alert-target' }, target);
  const worker = alert?.labels?.worker_id;
  if (worker && worker !== target) {
    return h('span', {}, main, h('span', { class: 'muted small' }, ' on '), h('a', { href: `/workers/${encodeURIComponent(worker)}`, title: KIND_TITLE.worker }, worker));
  }
  return main;
}

// Who acts on alerts: whatever the person typed last, in this browser.
const WHO_KEY = 'fleetwatch.alerts.by';
const whoListeners = new Set();

export function rememberedWho() {
  try {
    return localStorage.getItem(WHO_KEY) ?? '';
  } catch {
    return '';
  }
}

export function rememberWho(who) {
  try {
    localStorage.setItem(WHO_KEY, who);
  } catch {
    // Storage disabled: it is still used for this action.
  }
  for (const listener of whoListeners) listener(who);
}

/** An input for "who", kept in step with every other one on the page. */
export function whoInput(attributes = {}) {
  const input = h('input', {
    type: 'text',
    autocomplete: 'name',
    maxlength: '80',
    placeholder: 'your name',
    title: 'Who you are: recorded with the action (remembered in this browser)',
    ...attributes,
  });
  const signedIn = signedInName();
  if (signedIn) {
    // The gateway records who signed in, whatever is typed: show that, and nothing to edit.
    input.value = signedIn;
    input.readOnly = true;
    input.title = `Signed in as ${signedIn}: recorded with the action`;
    return { input, destroy: () => {} };
  }
  input.value = rememberedWho();
  input.addEventListener('input', () => rememberWho(input.value.trim()));
  const follow = (who) => {
    if (document.activeElement !== input && input.value.trim() !== who) input.value = who;
  };
  whoListeners.add(follow);
  return { input, destroy: () => whoListeners.delete(follow) };
}
