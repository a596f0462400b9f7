// One alert, chosen from the open list or the history: its value against its threshold,
// its labels and related metrics, what its target looks like now (a worker's load, a
// model's or hardware kind's tasks, a task's state), who acknowledged or resolved it, the
// silences on it; and the actions: acknowledge, resolve (who and a comment, "who"
// remembered in this browser) and "silence similar" (its rule and target, for a chosen
// time). What the server answers to a refused action is shown as it is.

import { getJson, sendJson } from '../api.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { canWrite } from '../session.js';
import { rememberWho, severityBadge, since, targetCell, whoInput } from './alerts-common.js';

const DURATIONS = [
  { secs: 15 * 60, label: '15 min' },
  { secs: 3600, label: '1 hour' },
  { secs: 4 * 3600, label: '4 hours' },
  { secs: 24 * 3600, label: '1 day' },
  { secs: 7 * 24 * 3600, label: '1 week' },
];

const STATE_MEANING = {
  pending: 'Its condition holds, not yet for long enough to fire',
  firing: 'Firing: published, and notifying people unless silenced',
  resolved: 'Resolved: its condition cleared, or someone resolved it',
};

function keyValueTable(className, entries, empty, show = (value) => String(value)) {
  if (entries.length === 0) return h('p', { class: 'muted small' }, empty);
  return h(
    'table',
    { class: `table ${className}` },
    h('tbody', {}, entries.map(([key, value]) => h('tr', {}, h('th', { scope: 'row', class: 'mono' }, key), h('td', { class: 'mono' }, show(value))))),
  );
}

/** What the alert's target looks like now: `[label, value, title]` rows, or null. */
async function targetNow(alert) {
  const target = alert.target ?? '';
  const labels = alert.labels ?? {};
  const workerId = labels.worker_id ?? (['worker_overloaded', 'worker_lost', 'worker_failure_trend'].includes(alert.rule) ? target : null);
  if (alert.rule === 'task_stalled' || labels.task_id === target) {
    const task = await getJson(`/api/tasks/${encodeURIComponent(labels.task_id ?? target)}`);
    const row = task.live ?? task.runs?.at(-1) ?? {};
    return {
      title: `Task ${task.task_id} now`,
      rows: [
        ['Status', task.status, 'Its status now'],
        ['Model', row.model ?? '–', 'What it runs'],
        ['Family', row.family ?? '–', 'The model family', row.family ? `/task-types/${encodeURIComponent(row.family)}` : null],
        ['Worker', row.worker_id ?? '–', 'Where it runs or ran', row.worker_id ? `/workers/${encodeURIComponent(row.worker_id)}` : null],
        ['Started', format.dateTime(row.started_at), 'When its current run started'],
      ],
    };
  }
  if (workerId) {
    const worker = await getJson(`/api/metrics/workers/${encodeURIComponent(workerId)}`);
    return {
      title: `Worker ${workerId} now`,
      rows: [
        ['Status', worker.status, 'idle, busy, overloaded or disconnected'],
        ['CPU', format.percent(worker.cpu_pct), 'From its last heartbeat'],
        ['GPU', worker.gpu_pct === null || worker.gpu_pct === undefined ? 'none' : format.percent(worker.gpu_pct), 'From its last heartbeat'],
        ['Memory', format.percent(worker.memory_pct), 'From its last heartbeat'],
        ['Running', format.count(worker.active_tasks), 'Tasks running on it now'],
        ['Waiting', format.count(worker.queued_tasks), 'Tasks waiting on it now'],
        ['Success rate', format.ratio(worker.success_rate), 'completed / (completed + failed)'],
        ['Last seen', format.ago(worker.last_seen), 'Its last heartbeat'],
      ],
    };
  }
  const group = target.startsWith('model:') ? 'by_model' : target.startsWith('hardware:') ? 'by_hardware' : null;
  if (group) {
    const key = target.slice(target.indexOf(':') + 1);
    const tasks = await getJson('/api/metrics/tasks');
    const row = (tasks[group] ?? []).find((candidate) => candidate.key === key);
    if (!row) return { title: `${target} now`, rows: [], empty: 'No task of it is known now.' };
    return {
      title: `Tasks of ${target} now`,
      rows: [
        ['Queued', format.count(row.queued), 'Waiting to start now'],
        ['Running', format.count(row.running), 'Running now'],
        ['Completed', format.count(row.completed), 'Since the stream began'],
        ['Failed', format.count(row.failed), 'Since the stream began'],
        ['Per minute', format.number(row.throughput_per_min), 'Completions in the last 60 s'],
        ['Success rate', format.ratio(row.success_rate), 'completed / (completed + failed)'],
      ],
    };
  }
  return null;
}

export function alertDetail({ onAction, onClose }) {
  let alert = null;
  let open = false;
  let shownId = null;
  let contextRequest = 0;
  let sending = false;

  const closeButton = h('button', { type: 'button', class: 'button small', id: 'detail-close', title: 'Close this alert' }, 'Close');
  closeButton.addEventListener('click', () => onClose());
  const placeholder = h('p', { class: 'muted', id: 'detail-placeholder' }, 'Choose an alert in the list (or the history) to see its related metrics, acknowledge, resolve or silence it.');
  const loadError = h('p', { class: 'error', id: 'detail-error', role: 'alert' });
  const summary = h('p', { class: 'detail-summary', id: 'detail-summary' });
  const identity = h('p', { class: 'muted small detail-identity' });
  const figures = h('dl', { class: 'cards detail-figures', id: 'detail-figures' });
  const labels = h('div', { id: 'detail-labels' });
  const metrics = h('div', { id: 'detail-metrics' });
  const contextTitle = h('h3', {}, 'Its target now');
  const context = h('div', { id: 'detail-context' });

  const who = whoInput({ id: 'action-who', required: true });
  const comment = h('input', { type: 'text', id: 'action-comment', maxlength: '500', placeholder: 'why (optional)', title: 'A comment kept with the action' });
  const ackButton = h('button', { type: 'button', class: 'button', id: 'action-ack', title: 'Say someone is on it: it keeps firing and stays listed, marked with who and when' }, 'Acknowledge');
  const resolveButton = h('button', { type: 'button', class: 'button', id: 'action-resolve', title: 'Resolve it by hand: it leaves the open list; while its condition still holds it stays quiet' }, 'Resolve');
  const duration = h('select', { id: 'silence-duration', title: 'How long the silence lasts' }, DURATIONS.map((choice) => h('option', { value: choice.secs }, choice.label)));
  duration.value = '3600';
  const silenceButton = h('button', { type: 'button', class: 'button', id: 'action-silence' }, 'Silence similar');
  const silenceWhat = h('p', { class: 'muted small', id: 'silence-what' });
  const notOpen = h('p', { class: 'muted small', id: 'detail-not-open' });
  const actionStatus = h('p', { class: 'small action-status', id: 'action-status', role: 'status' });
  const actionError = h('p', { class: 'error small', id: 'action-error', role: 'alert' });
  const actions = h(
    'form',
    { class: 'alert-actions', id: 'alert-actions', 'aria-label': 'Act on this alert' },
    h('h3', {}, 'Act on it'),
    h('div', { class: 'filters' }, h('label', { for: 'action-who' }, 'Who', who.input), h('label', { for: 'action-comment' }, 'Comment', comment)),
    h('div', { class: 'action-buttons' }, ackButton, resolveButton),
    notOpen,
    h('div', { class: 'action-buttons' }, h('label', { for: 'silence-duration', class: 'muted' }, 'Silence for'), duration, silenceButton),
    silenceWhat,
    actionStatus,
    actionError,
  );
  actions.addEventListener('submit', (event) => event.preventDefault());

  const body = h(
    'div',
    { class: 'detail-body', hidden: true },
    summary,
    identity,
    figures,
    h('div', { class: 'detail-columns' }, h('div', {}, h('h3', {}, 'Labels'), labels), h('div', {}, h('h3', {}, 'Related metrics'), metrics)),
    h('div', { class: 'detail-context' }, contextTitle, context),
    actions,
  );
  const element = h(
    'section',
    { class: 'panel alert-detail', id: 'alert-detail', 'aria-labelledby': 'alert-detail-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'alert-detail-title' }, 'Alert'), closeButton),
    placeholder,
    loadError,
    body,
  );

  function figure(label, value, title) {
    return h('div', { class: 'card', title }, h('dt', {}, label), h('dd', {}, value));
  }

  function draw() {
    const a = alert;
    replace(summary, severityBadge(a.severity), ' ', h('span', { class: 'summary-text' }, a.summary || a.alert_id));
    replace(identity, h('span', { class: 'mono', title: 'The alert id: one occurrence, from pending to resolved' }, a.alert_id), ' · rule ', h('span', { class: 'mono' }, a.rule), ' · target ', targetCell(a));
    const acknowledged = a.acknowledged
      ? h('span', { id: 'detail-acknowledged' }, a.acknowledged.by, h('span', { class: 'card-note' }, `${format.dateTime(a.acknowledged.at)}${a.acknowledged.comment ? `: ${a.acknowledged.comment}` : ''}`))
      : h('span', { id: 'detail-acknowledged', class: 'muted' }, 'no');
    const resolvedBy = a.resolved_by
      ? h('span', { id: 'detail-resolved-by' }, a.resolved_by.by, h('span', { class: 'card-note' }, `${format.dateTime(a.resolved_by.at)}${a.resolved_by.comment ? `: ${a.resolved_by.comment}` : ''}`))
      : h('span', { id: 'detail-resolved-by', class: 'muted' }, a.state === 'resolved' ? 'its condition cleared' : '–');
    replace(
      figures,
      figure('Value', h('span', { id: 'detail-value' }, format.number(a.value)), 'What was observed (for a posted alert, 0: its figures are under related metrics)'),
      figure('Threshold', h('span', { id: 'detail-threshold' }, format.number(a.threshold)), 'The limit the value crossed'),
      figure('State', h('span', { id: 'detail-state', class: `state-text state-${a.state}` }, a.state), STATE_MEANING[a.state] ?? a.state),
      figure('Since', since(a.started_at), 'When its condition started to hold'),
      figure('Fired', a.fired_at ? since(a.fired_at) : h('span', { class: 'muted' }, 'not yet'), 'When it started to fire (was published)'),
      figure('Resolved', a.resolved_at ? since(a.resolved_at) : h('span', { class: 'muted' }, 'no'), 'When it was resolved'),
      figure('Acknowledged by', acknowledged, 'Who said they are on it, when, and why'),
      figure('Resolved by', resolvedBy, 'Who resolved it by hand'),
      figure('Silenced by', a.silenced_by?.length ? h('span', { id: 'detail-silenced', class: 'mono small' }, a.silenced_by.join(', ')) : h('span', { id: 'detail-silenced', class: 'muted' }, 'no'), 'The silences that match it now: it notifies nobody, and still shows'),
      figure('Revision', `${format.count(a.revision)}${a.change ? ` (${a.change})` : ''}`, 'Each published change has the next revision; the last change'),
    );
    replace(labels, keyValueTable('detail-labels', Object.entries(a.labels ?? {}), 'No labels.'));
    replace(metrics, keyValueTable('detail-metrics', Object.entries(a.metrics ?? {}), 'No related figures: its value and threshold say it.', (value) => (typeof value === 'number' ? format.number(value) : String(value))));
    const allowed = canWrite();
    ackButton.disabled = !open || sending || !allowed;
    resolveButton.disabled = !open || sending || !allowed;
    silenceButton.disabled = sending || !allowed;
    setText(
      notOpen,
      !allowed
        ? 'You are signed in as a viewer: only operators acknowledge, resolve and silence.'
        : open
          ? ''
          : 'It is not open any more: it cannot be acknowledged or resolved. Similar ones can still be silenced.',
    );
    silenceButton.title = `Silence every alert of rule ${a.rule} on ${a.target}, for the time chosen`;
    setText(silenceWhat, `Silences rule = ${a.rule} and target = ${a.target}.`);
  }

  async function loadContext() {
    if (!alert) return;
    const mine = ++contextRequest;
    const shownFor = alert.alert_id;
    try {
      const found = await targetNow(alert);
      if (mine !== contextRequest || alert?.alert_id !== shownFor) return;
      if (!found) {
        setText(contextTitle, 'Its target now');
        replace(context, h('p', { class: 'muted small' }, 'Nothing more is known about this target.'));
        return;
      }
      setText(contextTitle, found.title);
      if (found.rows.length === 0) {
        replace(context, h('p', { class: 'muted small' }, found.empty));
        return;
      }
      replace(
        context,
        h(
          'dl',
          { class: 'figures-list detail-now' },
          found.rows.map(([label, value, title, href]) => h('div', { title }, h('dt', {}, label), h('dd', {}, href ? h('a', { href }, value) : value))),
        ),
      );
    } catch (err) {
      if (mine !== contextRequest) return;
      replace(context, h('p', { class: 'muted small' }, err.status === 404 ? 'Its target is not known any more.' : `Its target could not be read: ${err.message}`));
    }
  }

  async function act(what) {
    if (!alert) return;
    const by = who.input.value.trim();
    setText(actionStatus, '');
    setText(actionError, '');
    if (!by) {
      setText(actionError, 'Say who you are first (the Who field).');
      who.input.focus();
      return;
    }
    rememberWho(by);
    const target = alert;
    sending = true;
    draw();
    try {
      if (what === 'silence') {
        const secs = Number(duration.value);
        const answer = await sendJson('/api/silences', {
          matchers: [
            { name: 'rule', op: '=', value: target.rule },
            { name: 'target', op: '=', value: target.target },
          ],
          duration_secs: secs,
          by,
          comment: comment.value.trim() || `Similar to ${target.alert_id}`,
        });
        setText(actionStatus, `Silence ${answer.silence_id} made by ${by}, until ${format.dateTime(Date.now() + secs * 1000)}: it is listed under Silences.`);
      } else {
        const path = `/api/alerts/${encodeURIComponent(target.alert_id)}/${what === 'ack' ? 'ack' : 'resolve'}`;
        await sendJson(path, { by, comment: comment.value.trim() });
        setText(actionStatus, what === 'ack' ? `Acknowledged by ${by}.` : `Resolved by ${by}.`);
      }
      comment.value = '';
      onAction?.(what);
    } catch (err) {
      setText(actionError, err.message);
    } finally {
      sending = false;
      if (alert) draw();
    }
  }
  ackButton.addEventListener('click', () => act('ack'));
  resolveButton.addEventListener('click', () => act('resolve'));
  silenceButton.addEventListener('click', () => act('silence'));

  return {
    element,
    /** Shows `next`; `isOpen`: it is among the open alerts (so it can be acknowledged or resolved). */
    show(next, isOpen) {
      const changed = next.alert_id !== shownId;
      alert = next;
      open = isOpen;
      placeholder.hidden = true;
      body.hidden = false;
      setText(loadError, '');
      if (changed) {
        shownId = next.alert_id;
        setText(actionStatus, '');
        setText(actionError, '');
        replace(context, h('p', { class: 'muted small' }, 'loading…'));
        loadContext();
      }
      draw();
      element.dataset.alert = next.alert_id;
      element.dataset.open = String(isOpen);
    },
    /** The alert could not be read (`err`: the server's answer). */
    showError(id, err) {
      alert = null;
      shownId = null;
      body.hidden = true;
      placeholder.hidden = true;
      element.dataset.alert = id;
      setText(loadError, err.status === 404 ? `Alert ${id} is neither open nor in the archive (${err.message}).` : `Alert ${id} could not be read: ${err.message}`);
    },
    clear() {
      alert = null;
      shownId = null;
      body.hidden = true;
      placeholder.hidden = false;
      setText(loadError, '');
      delete element.dataset.alert;
    },
    /** Reads its target's figures again (each poll). */
    refresh: loadContext,
    destroy: () => who.destroy(),
  };
}
