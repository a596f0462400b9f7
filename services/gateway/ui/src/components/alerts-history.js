// The alerts' history: every archived change (fired, acknowledged, silenced, resolved…) in
// the page's range, filtered by state, severity and rule (in the URL), paged on the server
// (GET /api/alerts, newest first), with the CSV of the whole filtered history
// (?format=csv). Choosing a summary opens that alert.

import { apiUrl, getJson } from '../api.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { dataTable, pager } from '../table.js';
import { readQuery, writeQuery } from '../url-state.js';
import { RULES, SEVERITIES, onChange, severityBadge, targetCell } from './alerts-common.js';

const LIMIT = 50;
const STATES = ['firing', 'resolved'];

function pick(value, allowed) {
  return allowed.includes(value) ? value : '';
}

function byWhom(row) {
  const alert = row.alert ?? {};
  if (alert.change === 'acknowledged') return alert.acknowledged?.by ?? '';
  if (alert.change === 'resolved' || row.state === 'resolved') return alert.resolved_by?.by ?? (row.state === 'resolved' ? 'condition cleared' : '');
  return '';
}

export function alertHistory({ onSelect }) {
  const query = readQuery();
  const filters = {
    state: pick(query.state, STATES),
    severity: pick(query.severity, SEVERITIES),
    rule: /^[A-Za-z0-9_-]{1,100}$/.test(query.rule ?? '') ? query.rule : '',
  };
  let range = null;
  let request = 0;
  let extraRules = [];
  const redraw = onChange();

  const select = (id, name, title, options) => {
    const element = h('select', { id, title }, h('option', { value: '' }, 'any'), options.map((option) => h('option', { value: option }, option)));
    element.value = filters[name];
    element.addEventListener('change', () => setFilter(name, element.value));
    return element;
  };
  const stateSelect = select('history-state', 'state', 'firing: the changes of open alerts (fired, acknowledged, silenced…); resolved: their ends', STATES);
  const severitySelect = select('history-severity', 'severity', 'Only this severity', SEVERITIES);
  const ruleSelect = select('history-rule', 'rule', 'Only this rule', RULES);
  const clear = h('button', { type: 'button', class: 'button small', id: 'history-clear', title: 'Show every change in the range' }, 'Clear filters');
  clear.addEventListener('click', () => {
    for (const name of Object.keys(filters)) filters[name] = '';
    stateSelect.value = '';
    severitySelect.value = '';
    ruleSelect.value = '';
    changed();
  });
  const controls = h(
    'div',
    { class: 'filters', id: 'history-filters' },
    h('label', { for: 'history-state' }, 'State', stateSelect),
    h('label', { for: 'history-severity' }, 'Severity', severitySelect),
    h('label', { for: 'history-rule' }, 'Rule', ruleSelect),
    clear,
    h('span', { class: 'muted small' }, 'Over the range chosen in the timeline, newest first.'),
  );
  const note = h('p', { class: 'muted small history-note', id: 'history-status', role: 'status' });
  const pages = pager({ onPage: () => load() });

  const table = dataTable({
    id: 'alert-history',
    caption: 'History',
    columns: [
      {
        key: 'time',
        label: 'Time',
        title: 'When the change happened (event time)',
        value: (row) => h('span', { class: 'nowrap', title: format.dateTime(row.time) }, range && range.end - range.start > 86_400_000 ? format.dateTime(row.time) : format.time(row.time)),
      },
      { key: 'severity', label: 'Severity', title: 'critical, warning or info', value: (row) => severityBadge(row.severity) },
      { key: 'state', label: 'State', title: 'firing or resolved after this change', value: (row) => h('span', { class: `badge state-${row.state}` }, row.state) },
      { key: 'change', label: 'Change', title: 'What this revision changed: fired, acknowledged, silenced, unsilenced, updated, resolved', value: (row) => row.alert?.change ?? '–', csv: (row) => row.alert?.change ?? '' },
      { key: 'rule', label: 'Rule', title: 'The rule that raised it', value: (row) => h('span', { class: 'mono' }, row.rule) },
      { key: 'target', label: 'Target', title: 'What it is about', value: (row) => targetCell({ ...(row.alert ?? {}), rule: row.rule, target: row.target }) },
      {
        key: 'summary',
        label: 'Summary',
        title: 'Choose one to see the alert',
        value: (row) =>
          h(
            'button',
            {
              type: 'button',
              class: 'link-button history-pick',
              'data-alert': row.alert_id,
              title: `Show ${row.alert_id}`,
              // On press too: a live update may redraw the rows before the release.
              onmousedown: (event) => {
                if (event.button === 0) onSelect(row.alert_id);
              },
              onclick: () => onSelect(row.alert_id),
            },
            row.summary || row.alert_id,
          ),
      },
      { key: 'value', label: 'Value', num: true, title: 'The observed value', value: (row) => format.number(row.value) },
      { key: 'threshold', label: 'Threshold', num: true, title: 'The limit it crossed', value: (row) => format.number(row.threshold) },
      { key: 'by', label: 'By', title: 'Who acknowledged or resolved it, in this change', value: (row) => byWhom(row) || h('span', { class: 'muted' }, '–'), csv: byWhom },
    ],
    csv: {
      filename: 'alert-history',
      href: () => apiUrl('/api/alerts', { format: 'csv', ...filters, start_time: range ? Math.floor(range.start) : undefined, end_time: range ? Math.ceil(range.end) : undefined, order: 'desc' }),
    },
    empty: 'No alert changed in this range with these filters.',
    rowKey: (row) => String(row.seq ?? `${row.alert_id}-${row.time}`),
  });
  table.element.insertBefore(controls, table.element.children[1]);

  function setFilter(name, value) {
    filters[name] = value;
    changed();
  }

  function changed() {
    writeQuery({ state: filters.state, severity: filters.severity, rule: filters.rule });
    pages.reset();
    load();
  }

  /** Rules seen in the range (custom rules included) join the built-in ones in the filter. */
  function setRules(keys) {
    const extra = (keys ?? []).filter((key) => typeof key === 'string' && !RULES.includes(key)).sort();
    if (filters.rule && !RULES.includes(filters.rule) && !extra.includes(filters.rule)) extra.push(filters.rule);
    if (extra.join() === extraRules.join()) return;
    extraRules = extra;
    replace(ruleSelect, h('option', { value: '' }, 'any'), [...RULES, ...extra].map((rule) => h('option', { value: rule }, rule)));
    ruleSelect.value = filters.rule;
  }

  /** Reads the page shown (over `nextRange` when given); resolves to the answer, or null. */
  async function load(nextRange) {
    if (nextRange) range = nextRange;
    if (!range) return null;
    const mine = ++request;
    try {
      const answer = await getJson('/api/alerts', {
        ...filters,
        start_time: Math.floor(range.start),
        end_time: Math.ceil(range.end),
        order: 'desc',
        limit: LIMIT,
        cursor: pages.cursor(),
      });
      if (mine !== request) return answer;
      const items = Array.isArray(answer.items) ? answer.items : [];
      redraw([items, range.end - range.start > 86_400_000], () => table.update(items));
      pages.show({ count: items.length, total: Number(answer.total) || 0, limit: LIMIT, nextCursor: answer.next_cursor });
      setText(note, answer.history_unavailable ? `The history is not available now (${answer.history_unavailable}); the open alerts still are.` : '');
      return answer;
    } catch (err) {
      if (mine !== request) return null;
      setText(note, `The history could not be read: ${err.message}`);
      return null;
    }
  }

  setRules([]);
  return {
    element: h('section', { class: 'panel alert-history', id: 'alert-history-panel', 'aria-label': 'Alert history' }, table.element, note, pages.element),
    load,
    setRules,
    /** Back to the first page (the range changed). */
    resetPages: () => pages.reset(),
    /** Filters the history by one rule (from the distribution table). */
    showRule(rule) {
      setRules([...extraRules, rule]);
      filters.rule = rule;
      ruleSelect.value = rule;
      changed();
    },
  };
}
