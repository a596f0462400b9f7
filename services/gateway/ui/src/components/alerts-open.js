// The open alerts (pending and firing): severity, summary, target (a link to the worker,
// task or family it names), rule, state, since when, who acknowledged it and the silences
// on it. Filtered by severity and text, sorted by any column (both in the URL), a CSV of
// the rows shown. Choosing a summary opens the alert beside the list.

import { h } from '../dom.js';
import * as format from '../format.js';
import { dataTable } from '../table.js';
import { readQuery, writeQuery } from '../url-state.js';
import { SEVERITIES, SEVERITY_RANK, onChange, refreshSince, severityBadge, since, targetCell, targetHref } from './alerts-common.js';

/** Rows drawn at once; a fleet of thousands can have more alerts open than a page reads. */
const MOST_SHOWN = 300;
const SORTS = ['severity', 'summary', 'target', 'rule', 'state', 'started_at', 'acknowledged', 'silenced'];

const sortValue = {
  severity: (alert) => SEVERITY_RANK[alert.severity] ?? 9,
  summary: (alert) => alert.summary ?? '',
  target: (alert) => alert.target ?? '',
  rule: (alert) => alert.rule ?? '',
  state: (alert) => alert.state ?? '',
  started_at: (alert) => alert.started_at ?? 0,
  acknowledged: (alert) => alert.acknowledged?.by ?? '',
  silenced: (alert) => alert.silenced_by?.length ?? 0,
};

export function openAlerts({ onSelect }) {
  const query = readQuery();
  let sort = SORTS.includes(query.sort) ? { key: query.sort, order: query.order === 'desc' ? 'desc' : 'asc' } : { key: 'severity', order: 'asc' };
  let severity = SEVERITIES.includes(query.open_severity) ? query.open_severity : '';
  let search = query.q ?? '';
  let alerts = [];
  let selected = null;
  const redraw = onChange();

  const severitySelect = h(
    'select',
    { id: 'open-severity', title: 'Show the open alerts of one severity' },
    h('option', { value: '' }, 'all'),
    SEVERITIES.map((name) => h('option', { value: name }, name)),
  );
  severitySelect.value = severity;
  const searchInput = h('input', { type: 'search', id: 'open-search', placeholder: 'summary, target, rule…', title: 'Show the open alerts whose summary, target or rule contains this text' });
  searchInput.value = search;
  const filters = h(
    'div',
    { class: 'filters' },
    h('label', { for: 'open-severity' }, 'Severity', severitySelect),
    h('label', { for: 'open-search' }, 'Find', searchInput),
  );
  severitySelect.addEventListener('change', () => {
    severity = severitySelect.value;
    writeQuery({ open_severity: severity });
    draw();
  });
  searchInput.addEventListener('input', () => {
    search = searchInput.value;
    writeQuery({ q: search.trim() });
    draw();
  });

  const table = dataTable({
    id: 'open-alerts',
    caption: 'Open alerts',
    columns: [
      { key: 'severity', label: 'Severity', title: 'critical, warning or info', value: (alert) => severityBadge(alert.severity), csv: (alert) => alert.severity },
      {
        key: 'summary',
        label: 'Summary',
        title: 'What is wrong. Choose one to see its related metrics and act on it.',
        value: (alert) =>
          h(
            'button',
            {
              type: 'button',
              class: 'link-button alert-pick',
              'data-alert': alert.alert_id,
              title: `Show ${alert.alert_id}: value ${format.number(alert.value)}, threshold ${format.number(alert.threshold)}`,
              // On press as well as on click: the list may be redrawn by a live update
              // between the press and the release, which would lose the click.
              onmousedown: (event) => {
                if (event.button === 0) onSelect(alert.alert_id);
              },
              onclick: () => onSelect(alert.alert_id),
            },
            alert.summary || alert.alert_id,
          ),
        csv: (alert) => alert.summary,
      },
      { key: 'target', label: 'Target', title: 'What it is about: a worker, a task, a model, a service…', value: targetCell, csv: (alert) => alert.target },
      { key: 'rule', label: 'Rule', title: 'The rule that raised it (custom: posted by a program)', value: (alert) => h('span', { class: 'mono' }, alert.rule), csv: (alert) => alert.rule },
      {
        key: 'state',
        label: 'State',
        title: 'pending: the condition holds, not yet for long enough; firing: published',
        value: (alert) => h('span', { class: `badge state-${alert.state}` }, alert.state),
        csv: (alert) => alert.state,
      },
      { key: 'started_at', label: 'Since', title: 'When its condition started to hold', value: (alert) => since(alert.started_at), csv: (alert) => alert.started_at },
      {
        key: 'acknowledged',
        label: 'Acknowledged',
        title: 'Who acknowledged it, and when',
        value: (alert) =>
          alert.acknowledged
            ? h('span', { class: 'acknowledged', title: `${format.dateTime(alert.acknowledged.at)}${alert.acknowledged.comment ? `: ${alert.acknowledged.comment}` : ''}` }, alert.acknowledged.by)
            : h('span', { class: 'muted' }, 'no'),
        csv: (alert) => alert.acknowledged?.by ?? '',
      },
      {
        key: 'silenced',
        label: 'Silenced',
        title: 'Whether a silence matches it now (it notifies nobody, and still shows)',
        value: (alert) =>
          alert.silenced_by?.length
            ? h('span', { class: 'badge silenced', title: `By silence ${alert.silenced_by.join(', ')}` }, alert.silenced_by.length === 1 ? 'silenced' : `${alert.silenced_by.length} silences`)
            : h('span', { class: 'muted' }, 'no'),
        csv: (alert) => (alert.silenced_by ?? []).join(' '),
      },
    ],
    sort,
    onSort: (key, order) => {
      sort = { key, order };
      writeQuery({ sort: key, order });
      draw();
    },
    csv: { filename: 'open-alerts' },
    empty: 'No alert is open.',
    rowKey: (alert) => alert.alert_id,
  });

  function matches(alert) {
    if (severity && alert.severity !== severity) return false;
    const needle = search.trim().toLowerCase();
    if (!needle) return true;
    return [alert.summary, alert.target, alert.rule, alert.alert_id].some((text) => typeof text === 'string' && text.toLowerCase().includes(needle));
  }

  function draw() {
    const direction = sort.order === 'asc' ? 1 : -1;
    const value = sortValue[sort.key] ?? sortValue.severity;
    const shown = alerts.filter(matches).sort((a, b) => {
      const left = value(a);
      const right = value(b);
      const order = typeof left === 'string' ? left.localeCompare(right) : left - right;
      return direction * order || (b.started_at ?? 0) - (a.started_at ?? 0) || String(a.alert_id).localeCompare(String(b.alert_id));
    });
    const drawn = shown.slice(0, MOST_SHOWN);
    let note = '';
    if (drawn.length < shown.length) note = `${format.count(drawn.length)} of ${format.count(shown.length)} shown: narrow them with the filters`;
    else if (shown.length < alerts.length) note = `${format.count(shown.length)} of ${format.count(alerts.length)} match`;
    // A model's family found since the last draw changes its link.
    const links = drawn.map((alert) => targetHref(alert)?.href ?? '');
    if (!redraw([drawn, note, links, sort], () => table.update(drawn, note))) refreshSince(table.element);
    markSelected();
  }

  function markSelected() {
    for (const row of table.element.querySelectorAll('tbody tr[data-key]')) {
      if (row.dataset.key === selected) row.setAttribute('aria-selected', 'true');
      else row.removeAttribute('aria-selected');
    }
  }

  table.element.insertBefore(filters, table.element.children[1]);
  return {
    element: h('section', { class: 'panel open-alerts', 'aria-label': 'Open alerts' }, table.element),
    update(next) {
      alerts = Array.isArray(next) ? next : [];
      draw();
    },
    select(id) {
      selected = id;
      markSelected();
    },
  };
}
