// Where tasks are now, from the processor's live task lists: the queue (the next tasks to
// start, highest priority first, with how long each has waited and what it waits for) and
// the assignments (task -> worker: the workers holding the most tasks, as bars).

import { getJson } from '../api.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { dataTable } from '../table.js';

const SHOWN = 8;

export function taskFlow() {
  const queueTable = dataTable({
    id: 'queue',
    caption: 'Queue',
    csv: { filename: 'queue' },
    empty: 'Nothing waits to start.',
    rowKey: (task) => task.task_id,
    columns: [
      { key: 'task_id', label: 'Task', title: 'The next tasks to start, highest priority first', value: (task) => h('a', { href: `/tasks/${encodeURIComponent(task.task_id)}`, class: 'mono' }, task.task_id) },
      { key: 'model', label: 'Model', title: 'What it benchmarks' },
      { key: 'priority', label: 'Prio', title: '0 (lowest) to 9', num: true },
      { key: 'waited', label: 'Waited', title: 'Since it was last queued', num: true, value: (task) => format.duration(Date.now() - task.queued_at), csv: (task) => Date.now() - task.queued_at },
      { key: 'waiting_on', label: 'Waits for', title: 'Tasks it depends on that have not finished', value: (task) => (task.waiting_on?.length ? `${task.waiting_on.length} task${task.waiting_on.length === 1 ? '' : 's'}` : ''), csv: (task) => (task.waiting_on ?? []).join(' ') },
    ],
  });
  const queueNote = h('p', { class: 'muted small' });
  const assignments = h('ul', { class: 'assignments', id: 'assignments' });
  const assignmentsNote = h('p', { class: 'muted small' });
  const error = h('p', { class: 'error small', role: 'alert' });
  const element = h(
    'div',
    { class: 'task-flow' },
    error,
    queueTable.element,
    queueNote,
    h('h2', { id: 'assignments-title', title: 'Tasks placed on each worker (assigned or running): task → worker' }, 'Assignments'),
    assignments,
    assignmentsNote,
  );

  async function poll() {
    try {
      const [queue, held] = await Promise.all([
        getJson('/api/tasks', { status: 'queued', sort: 'priority', order: 'desc', limit: SHOWN }),
        getJson('/api/tasks', { status: 'assigned,running', group_by: 'worker_id', limit: SHOWN }),
      ]);
      setText(error, '');
      queueTable.update(queue.items);
      setText(queueNote, queue.total > queue.items.length ? `${format.count(queue.total)} queued in all; the Tasks page lists them.` : '');
      const widest = Math.max(1, ...held.groups.map((group) => group.total));
      if (held.groups.length === 0) {
        replace(assignments, h('li', { class: 'muted' }, 'No task is placed on a worker.'));
      } else {
        replace(
          assignments,
          held.groups.map((group) =>
            h(
              'li',
              { title: `${group.key}: ${group.running} running, ${group.assigned} assigned, waiting to start` },
              h('a', { href: `/workers/${encodeURIComponent(group.key)}`, class: 'mono' }, group.key),
              h(
                'span',
                { class: 'queue-bar', 'aria-hidden': 'true' },
                h('span', { class: 'queue-running', style: `width:${((group.running / widest) * 100).toFixed(1)}%` }),
                h('span', { class: 'queue-queued', style: `width:${((group.assigned / widest) * 100).toFixed(1)}%` }),
              ),
              h('span', { class: 'num' }, `${group.running} + ${group.assigned}`),
            ),
          ),
        );
      }
      setText(assignmentsNote, held.truncated ? `The ${held.groups.length} busiest of ${format.count(held.total)} workers holding tasks.` : '');
    } catch (err) {
      setText(error, err.status === 503 ? 'The processor does not answer: no live task lists.' : err.message);
    }
  }

  return { element, poll };
}
