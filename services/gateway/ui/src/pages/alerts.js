// The alerts page (/alerts), the guide's alerts view: counts of the open alerts by severity
// (with those pending, acknowledged and silenced), a timeline of the alerts fired over a
// range, where they came from (by rule and by source), the open alerts with one chosen
// beside them (related metrics, acknowledge, resolve, silence similar), the silences in
// force, and the history of every change.
//
// Live: the open alerts come over the WebSocket (`alerts_firing`, the `alerts` topic every
// page follows), each change (`alert`) reads the statistics, silences and history again at
// once; otherwise they are read at the refresh rate. In the URL: the range (`range`,
// `from`, `to`), the open list's filters and order (`open_severity`, `q`, `sort`, `order`),
// the distribution tables' order (`rule_sort`, `source_sort`), the history's filters
// (`state`, `severity`, `rule`) and the alert shown (`alert`).

import { getJson } from '../api.js';
import { SEVERITIES, onFamilyFound, refreshSince } from '../components/alerts-common.js';
import { alertDetail } from '../components/alerts-detail.js';
import { distributionTable } from '../components/alerts-distribution.js';
import { alertHistory } from '../components/alerts-history.js';
import { openAlerts } from '../components/alerts-open.js';
import { silencesPanel } from '../components/alerts-silences.js';
import { alertTimeline, bucketFor } from '../components/alerts-timeline.js';
import { h, setText } from '../dom.js';
import * as format from '../format.js';
import { currentRate, refresher } from '../refresh.js';
import { readQuery, writeQuery } from '../url-state.js';

const CARDS = [
  { key: 'critical', label: 'Critical', title: 'Critical alerts firing now' },
  { key: 'warning', label: 'Warning', title: 'Warning alerts firing now' },
  { key: 'info', label: 'Info', title: 'Info alerts firing now' },
  { key: 'pending', label: 'Pending', title: 'Open alerts whose condition holds, not yet for long enough to fire' },
  { key: 'acknowledged', label: 'Acknowledged', title: 'Open alerts someone acknowledged (they keep firing)' },
  { key: 'silenced', label: 'Silenced', title: 'Open alerts a silence matches now: they notify nobody, and still show' },
];
/** Changes seen on the WebSocket kept for alerts no longer open (the one shown may be one). */
const CHANGES_KEPT = 500;

function countCards() {
  const values = new Map();
  const notes = new Map();
  const element = h(
    'dl',
    { class: 'cards alert-counts', id: 'alert-counts', 'aria-label': 'Open alerts by severity' },
    CARDS.map((card) => {
      const value = h('span', { id: `count-${card.key}` }, '–');
      const note = h('span', { class: 'card-note', id: `count-${card.key}-note` });
      values.set(card.key, value);
      notes.set(card.key, note);
      return h('div', { class: `card count-${card.key}`, title: card.title }, h('dt', {}, card.label), h('dd', {}, value, note));
    }),
  );
  return {
    element,
    update(alerts) {
      const counts = Object.fromEntries(CARDS.map((card) => [card.key, 0]));
      const pendingBy = Object.fromEntries(SEVERITIES.map((severity) => [severity, 0]));
      for (const alert of alerts) {
        if (alert.state === 'pending') {
          counts.pending += 1;
          if (pendingBy[alert.severity] !== undefined) pendingBy[alert.severity] += 1;
        } else if (counts[alert.severity] !== undefined) {
          counts[alert.severity] += 1;
        }
        if (alert.acknowledged) counts.acknowledged += 1;
        if (alert.silenced_by?.length) counts.silenced += 1;
      }
      for (const card of CARDS) setText(values.get(card.key), format.count(counts[card.key]));
      for (const severity of SEVERITIES) setText(notes.get(severity), pendingBy[severity] ? `+${format.count(pendingBy[severity])} pending` : '');
      element.dataset.open = String(alerts.length);
    },
  };
}

export function mount(root, app) {
  let selected = readQuery().alert || null;
  /** The open alerts as GET /api/alerts last gave them (used while the WebSocket is not live). */
  let restFiring = null;
  /** alert_id -> its latest change seen on the WebSocket. */
  const changes = new Map();
  /** The shown alert as GET /api/alerts/{id} gave it, when it is not open: `{ id, alert, error, at, asking }`. */
  let fetched = null;
  let soonTimer = null;

  const cards = countCards();
  const updated = h('p', { class: 'muted small', id: 'alerts-updated', title: 'When the open alerts were last updated' });
  const timeline = alertTimeline({
    onRange: () => {
      history.resetPages();
      refresh.now();
    },
  });
  const history = alertHistory({ onSelect: (id) => select(id, true) });
  const byRule = distributionTable({
    id: 'alerts-by-rule',
    caption: 'By rule',
    keyLabel: 'Rule',
    keyTitle: 'The rule that raised them (custom: posted by a program). Choose one to see its history',
    urlKey: 'rule_sort',
    pick: (rule) => history.showRule(rule),
    pickTitle: 'Show the history of rule',
  });
  const bySource = distributionTable({
    id: 'alerts-by-source',
    caption: 'By source',
    keyLabel: 'Source',
    keyTitle: 'What raised them: a worker, a task, a model, a hardware kind, a service, a component, the fleet, or the program that posted them',
    urlKey: 'source_sort',
  });
  const open = openAlerts({ onSelect: (id) => select(id, false) });
  const detail = alertDetail({
    onAction: () => refresh.now(),
    onClose: () => select(null, false),
  });
  const silences = silencesPanel({ onChanged: () => refresh.now() });

  root.append(
    h(
      'div',
      { class: 'page alerts-page' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Alerts'), updated),
      cards.element,
      timeline.element,
      h('div', { class: 'columns-2' }, byRule.element, bySource.element),
      h('div', { class: 'alerts-work' }, open.element, detail.element),
      silences.element,
      history.element,
    ),
  );

  /** The open alerts: the WebSocket's while it is live, else the REST API's; null before either. */
  function firingNow() {
    const pushed = app.socket.latest.get('alerts_firing');
    if (pushed && app.socket.state === 'live') return Array.isArray(pushed.alerts) ? pushed.alerts : [];
    return restFiring ?? (Array.isArray(pushed?.alerts) ? pushed.alerts : null);
  }

  function select(id, scroll) {
    // A press and then a click choose the same alert: once is enough.
    if (id === selected && (id === null || detail.element.dataset.alert === id)) return;
    selected = id;
    fetched = null;
    writeQuery({ alert: id });
    open.select(id);
    flush();
    if (id && scroll) detail.element.scrollIntoView({ block: 'nearest' });
  }

  function newest(...candidates) {
    return candidates.filter(Boolean).sort((a, b) => (b.revision ?? 0) - (a.revision ?? 0))[0] ?? null;
  }

  function showSelected(alerts) {
    if (!selected) {
      detail.clear();
      return;
    }
    const live = alerts?.find((alert) => alert.alert_id === selected);
    if (live) {
      fetched = null;
      detail.show(live, true);
      return;
    }
    if (alerts === null) return;
    const id = selected;
    const best = newest(changes.get(id), fetched?.id === id ? fetched.alert : null);
    if (best) detail.show(best, false);
    else if (fetched?.id === id && fetched.error) detail.showError(id, fetched.error);
    // Asked once; asked again (at most each second) while what is known of a closed alert
    // is not its resolution yet: the archive may not hold that revision at first.
    const settled = best?.state === 'resolved' || fetched?.error;
    if (fetched?.id === id && (settled || fetched.asking || Date.now() - fetched.at < 1000)) return;
    fetched = { id, alert: fetched?.id === id ? fetched.alert : null, error: null, at: Date.now(), asking: true };
    getJson(`/api/alerts/${encodeURIComponent(id)}`).then(
      (alert) => {
        if (fetched?.id !== id) return;
        fetched.asking = false;
        fetched.alert = alert;
        // The gateway may know it as open before this page does: it can still be acted on.
        const answer = newest(changes.get(id), alert);
        if (selected === id && !firingNow()?.some((candidate) => candidate.alert_id === id)) detail.show(answer, answer.state !== 'resolved');
      },
      (err) => {
        if (fetched?.id !== id) return;
        fetched.asking = false;
        fetched.error = err;
        if (selected === id && !changes.has(id)) detail.showError(id, err);
      },
    );
  }

  function flush() {
    const alerts = firingNow();
    if (alerts) {
      cards.update(alerts);
      open.update(alerts);
      silences.setFiring(alerts);
      const pushed = app.socket.latest.get('alerts_firing');
      setText(updated, `${format.count(alerts.length)} open${pushed?.time ? ` · updated ${format.time(pushed.time)}` : ''}`);
    }
    showSelected(alerts);
    refreshSince(detail.element);
  }

  let polling = false;
  let again = false;
  let lastPoll = 0;
  const poll = async () => {
    if (polling) {
      again = true;
      return;
    }
    polling = true;
    lastPoll = Date.now();
    try {
      const range = timeline.picker.range();
      const [answer] = await Promise.all([
        history.load(range),
        getJson('/api/alerts/stats', { start_time: Math.floor(range.start), end_time: Math.ceil(range.end), interval: bucketFor(range.end - range.start) }).then(
          (stats) => {
            timeline.show(stats, range);
            byRule.update(stats.by_rule);
            bySource.update(stats.by_source);
            history.setRules((stats.by_rule ?? []).map((row) => row.key));
          },
          (err) => {
            timeline.showError(err, range);
            const why = err.status === 503 ? 'not available yet' : 'could not be read';
            byRule.update([], `The statistics ${why}.`);
            bySource.update([], `The statistics ${why}.`);
          },
        ),
        getJson('/api/silences').then(
          (answer) => silences.update(answer, firingNow()),
          (err) => silences.showError(err),
        ),
        selected ? detail.refresh() : null,
      ]);
      if (Array.isArray(answer?.firing)) restFiring = answer.firing;
      flush();
    } finally {
      polling = false;
      if (again) {
        again = false;
        poll();
      }
    }
  };

  /**
   * After a change arrives: everything read again shortly (several changes, one read; in a
   * storm of changes, at most one read a second).
   */
  const soon = () => {
    if (soonTimer !== null || currentRate().value === 'paused') return;
    const wait = Math.max(300, 1000 - (Date.now() - lastPoll));
    soonTimer = setTimeout(() => {
      soonTimer = null;
      // Paused since it was armed: a paused page redraws only when asked.
      if (currentRate().value !== 'paused') refresh.now();
    }, wait);
  };

  const refresh = refresher({ poll, flush });
  const unsubscribe = [
    app.socket.follow(['alerts']),
    app.socket.on('alerts_firing', () => refresh.pushed()),
    app.socket.on('alert', (change) => {
      if (typeof change?.alert_id !== 'string') return;
      const known = changes.get(change.alert_id);
      if (!known || (known.revision ?? 0) <= (change.revision ?? 0)) {
        changes.delete(change.alert_id);
        changes.set(change.alert_id, change);
        if (changes.size > CHANGES_KEPT) changes.delete(changes.keys().next().value);
      }
      if (change.alert_id === selected) refresh.pushed();
      soon();
    }),
    onFamilyFound(() => flush()),
  ];
  open.select(selected);
  flush();

  return () => {
    refresh.stop();
    clearTimeout(soonTimer);
    for (const off of unsubscribe) off();
    timeline.destroy();
    detail.destroy();
    silences.destroy();
  };
}
