// A task's page (/tasks/<id>): where it stands (live, from the processor, while it has not
// finished), each time it ended (a failure that was retried, then its last end), its whole
// life event by event from the archive, what it waits for and what waits for it.

import { getJson } from '../api.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { refresher } from '../refresh.js';
import { dataTable } from '../table.js';

export function title() {
  return 'Task';
}

const link = (kind, id) => h('a', { href: `/${kind}/${encodeURIComponent(id)}`, class: 'mono' }, id);

/** What an event's detail says, as text. */
function describe(event) {
  const detail = event.detail ?? {};
  switch (event.type) {
    case 'task_queued':
      return `${detail.model ?? ''} (${detail.family ?? ''}), priority ${detail.priority ?? '–'}${detail.depends_on?.length ? `, waits for ${detail.depends_on.join(', ')}` : ''}`;
    case 'task_assigned':
      return detail.best_fit ? 'to a best-fit worker' : 'to a worker that is not a best fit';
    case 'task_failed':
      return detail.error ?? '';
    case 'task_retried':
      return `attempt ${detail.attempt ?? '?'}`;
    case 'task_cancelled':
      return detail.reason ?? '';
    default:
      return '';
  }
}

export function mount(root, _app, [taskId]) {
  let firstTime = 0;
  const headline = h('p', { class: 'muted', id: 'task-headline' }, 'loading…');
  const error = h('p', { class: 'error', role: 'alert' });
  const note = h('p', { class: 'muted small' });
  const facts = h('dl', { class: 'capabilities', id: 'task-facts' });
  const dependencies = h('div', { id: 'task-dependencies' });
  const runs = dataTable({
    id: 'task-runs',
    caption: 'Runs that ended',
    csv: { filename: `${taskId}-runs` },
    empty: 'It has not ended yet.',
    rowKey: (run) => String(run.finished_at),
    columns: [
      { key: 'finished_at', label: 'Ended', title: 'When', value: (run) => format.dateTime(run.finished_at) },
      { key: 'status', label: 'End', title: 'completed or failed', value: (run) => h('span', { class: `task-status task-${run.status}` }, run.status) },
      { key: 'worker_id', label: 'Worker', title: 'Where it ran', value: (run) => (run.worker_id ? link('workers', run.worker_id) : '–') },
      { key: 'queue_ms', label: 'Waited', num: true, title: 'Start minus last queued', value: (run) => format.duration(run.queue_ms) },
      { key: 'processing_ms', label: 'Ran', num: true, title: 'End minus start', value: (run) => format.duration(run.processing_ms) },
      { key: 'total_ms', label: 'Total', num: true, title: 'End minus first queued', value: (run) => format.duration(run.total_ms) },
      { key: 'error', label: 'Error', title: 'Why it failed, as the worker said', value: (run) => (run.error ? h('span', { class: 'failure-error' }, run.error) : '') },
    ],
  });
  const events = dataTable({
    id: 'task-events',
    caption: 'Its life',
    csv: { filename: `${taskId}-events` },
    empty: 'The archive keeps no events of it (task detail may be off).',
    rowKey: (event) => String(event.seq),
    columns: [
      { key: 'time', label: 'When', title: 'Event time', value: (event) => format.dateTime(event.time), csv: (event) => event.time },
      { key: 'since', label: '+', num: true, title: 'Since it was first queued', value: (event) => format.duration(event.time - firstTime), csv: (event) => event.time - firstTime },
      { key: 'type', label: 'Event', title: 'What happened', value: (event) => event.type.replace('task_', '') },
      { key: 'worker_id', label: 'Worker', title: 'The worker it names', value: (event) => (event.worker_id ? link('workers', event.worker_id) : '') },
      { key: 'detail', label: 'Detail', title: 'What the event says', value: (event) => describe(event), csv: (event) => JSON.stringify(event.detail ?? null) },
      { key: 'source', label: 'Source', title: 'Who reported it' },
    ],
  });

  root.append(
    h(
      'div',
      { class: 'page task-detail' },
      h('p', { class: 'small' }, h('a', { href: '/tasks' }, '← Tasks')),
      h('div', { class: 'page-head' }, h('h1', {}, 'Task ', h('span', { id: 'task-id', class: 'mono' }, taskId)), headline),
      error,
      note,
      h('div', { class: 'columns-2' }, h('section', { class: 'panel' }, h('h2', {}, 'Where it stands'), facts), h('section', { class: 'panel' }, h('h2', {}, 'Dependencies'), dependencies)),
      h('section', { class: 'panel' }, runs.element),
      h('section', { class: 'panel' }, events.element),
    ),
  );
  document.title = `${taskId} · fleetwatch`;

  let done = false;
  const poll = async () => {
    if (done) return;
    let task;
    try {
      task = await getJson(`/api/tasks/${encodeURIComponent(taskId)}`);
    } catch (err) {
      setText(headline, '');
      setText(error, err.status === 404 ? `No task ${taskId} is known: not live, and not in the archive.` : err.message);
      return;
    }
    setText(error, '');
    const current = task.live ?? task.runs.at(-1);
    setText(headline, `${task.status} · ${current?.model ?? ''}${current?.family ? ` (${current.family})` : ''}`);
    setText(note, task.history_unavailable ? `The archive does not answer (${task.history_unavailable}): only where it stands now is shown.` : '');
    const fact = (label, value) => h('div', {}, h('dt', {}, label), h('dd', {}, value ?? '–'));
    const live = task.live;
    replace(
      facts,
      fact('Status', h('span', { class: `task-status task-${task.status}`, id: 'task-status' }, task.status)),
      fact('Model', current?.model),
      fact('Family', current?.family ? h('a', { href: `/task-types/${encodeURIComponent(current.family)}` }, current.family) : '–'),
      fact('Priority', current ? String(current.priority) : '–'),
      fact('Worker', current?.worker_id ? link('workers', current.worker_id) : 'none yet'),
      fact('Hardware', current?.hardware),
      live ? fact('Queued', `${format.dateTime(live.created_at)} (${format.ago(live.created_at)})`) : null,
      live?.started_at ? fact('Running for', format.duration(Date.now() - live.started_at)) : null,
      !live && current ? fact('Ended', format.dateTime(current.finished_at)) : null,
      fact('Retries', String(current?.attempts ?? 0)),
      current?.error ? fact('Error', h('span', { class: 'failure-error' }, current.error)) : null,
    );
    const waiting = new Set(live?.waiting_on ?? []);
    replace(
      dependencies,
      task.depends_on.length
        ? h('p', {}, 'Waits for ', task.depends_on.map((id) => [link('tasks', id), waiting.has(id) ? ' (not finished)' : ' (finished)', ' ']))
        : h('p', { class: 'muted' }, 'It depends on no other task.'),
      task.dependents.length
        ? h('p', {}, 'Waited for by ', task.dependents.map((id) => [link('tasks', id), ' ']))
        : h('p', { class: 'muted' }, 'No live task waits for it.'),
    );
    runs.update(task.runs);
    firstTime = task.events[0]?.time ?? 0;
    events.update(task.events, task.events.length ? `${task.events.length} events` : '');
    // A finished task changes no more.
    done = !live && task.runs.length > 0;
  };
  const refresh = refresher({ poll });
  return () => refresh.stop();
}
