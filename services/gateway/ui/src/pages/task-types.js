// The task-types pages. /task-types lists every model family with its figures (what runs
// and waits, what finished, throughput, success, queue time, scheduling efficiency and the
// worker types running it now), as a card each and as a table sorted by any column (in the
// URL) with CSV; each links to /task-types/<family>, the seed's "Task Type View"
// (components/task-types-family.js). Live from the `tasks` topic (the REST API when the
// socket is quiet) and GET /api/tasks?group_by=placement for where each family runs.

import { getJson } from '../api.js';
import { familyHref, groupColumns, problemText, widestThroughput } from '../components/performance-groups.js';
import { sortedTable } from '../table.js';
import { familyPage } from '../components/task-types-family.js';
import { liveTasks } from '../components/task-types-live.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { refresher } from '../refresh.js';

const REDRAW_MS = 1000;

export function mount(root, app, params) {
  const family = params?.[0];
  if (family !== undefined && family !== '') return familyPage(root, app, family);
  return listPage(root, app);
}

function listPage(root, app) {
  const live = liveTasks(app);
  const updated = h('p', { class: 'muted small', id: 'tt-updated', title: 'When the processor derived the figures shown' }, 'waiting for figures…');
  const error = h('p', { class: 'error', role: 'alert', id: 'tt-error' });
  const cards = h('div', { class: 'tt-family-cards', id: 'family-cards' });
  /** family -> [{ hardware, running, assigned }] placed now. */
  let placement = new Map();
  let widest = 1;
  const placedText = (row) =>
    (placement.get(row.key) ?? [])
      .map((place) => `${place.hardware} ${format.count(place.running + place.assigned)}`)
      .join(', ');
  const table = sortedTable({
    id: 'task-types-table',
    caption: 'Every model family',
    urlKey: 'sort',
    sort: { key: 'key', order: 'asc' },
    csv: { filename: 'task-types' },
    empty: 'No tasks yet.',
    columns: [
      { key: 'key', label: 'Family', title: 'The model family; opens its page', value: (row) => h('a', { href: familyHref(row.key) }, row.key) },
      { key: 'models', label: 'Models', title: 'Models of this family seen', num: true, value: (row) => format.count(row.models) },
      ...groupColumns({ widest: () => widest }),
      {
        key: 'placed',
        label: 'On workers now',
        title: 'Its tasks placed on workers now (running or assigned), by worker type',
        sortable: false,
        sort: placedText,
        value: (row) => placedText(row) || '–',
      },
    ],
  });

  root.append(
    h(
      'div',
      { class: 'page task-types' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Task types'), updated),
      h('p', { class: 'muted small' }, 'Every model family: what runs and waits now, what finished, and how well it is scheduled. Open one for its models and worker types.'),
      error,
      cards,
      h('section', { class: 'panel' }, table.element),
    ),
  );

  let lastDraw = 0;
  let drawnTime = -Infinity;
  function draw(tasks, force = false) {
    if (!tasks || (!force && (tasks.time <= drawnTime || Date.now() - lastDraw < REDRAW_MS))) return;
    drawnTime = tasks.time;
    lastDraw = Date.now();
    setText(updated, `updated ${format.time(tasks.time)}`);
    const models = new Map();
    for (const model of tasks.by_model ?? []) models.set(model.family, (models.get(model.family) ?? 0) + 1);
    const rows = (tasks.by_family ?? []).map((row) => ({ ...row, models: models.get(row.key) ?? 0 }));
    widest = widestThroughput(rows);
    table.update(rows);
    if (rows.length === 0) {
      replace(cards, h('p', { class: 'empty' }, 'No tasks have been seen yet.'));
      return;
    }
    replace(cards, [...rows].sort((a, b) => a.key.localeCompare(b.key)).map(familyCard));
  }

  function familyCard(row) {
    const count = (label, value, title) => h('span', { class: 'tt-count', title }, h('span', { class: 'group-label' }, label), h('span', { class: 'figure' }, format.count(value)));
    const placed = placedText(row);
    return h(
      'section',
      { class: 'panel tt-family-card', 'data-family': row.key },
      h('h2', {}, h('a', { href: familyHref(row.key), title: `Open the ${row.key} task type` }, row.key)),
      h(
        'div',
        { class: 'tt-card-counts' },
        count('Active', row.running, 'Running now'),
        count('Queued', row.queued, 'Waiting to start now'),
        count('Completed', row.completed, 'Completed since the stream began'),
        count('Failed', row.failed, 'Failed since the stream began'),
      ),
      h(
        'p',
        { class: 'small muted tt-card-rates' },
        h('span', { title: 'completed / (completed + failed)' }, `success ${format.ratio(row.success_rate)}`),
        ' · ',
        h('span', { title: 'Completions in the last 60 s' }, `${format.number(row.throughput_per_min)}/min`),
        ' · ',
        h('span', { title: 'Mean wait of the last 200 starts' }, `queue ${format.duration(row.queue_time_ms?.mean)}`),
        ' · ',
        h('span', { title: 'Share of the last 200 assignments to a best-fit worker' }, `best fit ${format.ratio(row.best_fit_ratio)}`),
      ),
      h('p', { class: 'small tt-card-placed', title: 'Its tasks on workers now (running or assigned), by worker type' }, placed ? `on ${placed}` : 'nothing on a worker now'),
    );
  }

  async function pollPlacement() {
    try {
      const placed = await getJson('/api/tasks', { status: 'assigned,running', group_by: 'placement', limit: 1000 });
      const next = new Map();
      for (const group of placed.groups ?? []) {
        const [name, hardware = 'unknown'] = String(group.key).split('/');
        if (!next.has(name)) next.set(name, []);
        next.get(name).push({ hardware, running: group.running ?? 0, assigned: group.assigned ?? 0 });
      }
      for (const list of next.values()) list.sort((a, b) => b.running + b.assigned - (a.running + a.assigned) || a.hardware.localeCompare(b.hardware));
      placement = next;
    } catch {
      // Where families run is a detail: the figures still show without it.
    }
  }

  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      const [tasks] = await Promise.all([live.poll().catch((err) => {
        setText(error, problemText(err));
        return null;
      }), pollPlacement()]);
      if (tasks) {
        setText(error, '');
        draw(tasks, true);
      }
    } finally {
      polling = false;
    }
  };
  const flush = () => draw(live.current());
  const refresh = refresher({ poll, flush });
  const off = app.socket.on('tasks', () => refresh.pushed());
  flush();

  return () => {
    refresh.stop();
    off();
    live.stop();
  };
}
