// The pages not built yet: what each will show, and where its data can be read today.

import { h } from '../dom.js';
import { PAGES } from '../nav.js';

const PLANS = {
  '/system': {
    shows: 'coordinator and component health, resource pools, system metrics history, queue statistics and processing rates',
    api: ['/api/status', '/api/services', '/api/metrics/system'],
  },
  '/workers': {
    shows: 'every worker with its status, load, hardware, uptime and reliability, filtered and sorted',
    api: ['/api/metrics/workers?limit=100'],
  },
  '/tasks': {
    shows: 'running, completed and failed tasks, durations, task types and recent failures',
    api: ['/api/metrics/tasks'],
  },
  '/performance': {
    shows: 'throughput and latency trends, hardware and task-type comparisons, scheduling efficiency',
    api: ['/api/metrics/tasks', '/api/metrics/system'],
  },
  '/alerts': {
    shows: 'alerts firing and their history, by severity, rule and target',
    api: ['/api/alerts'],
  },
  '/topology': {
    shows: 'the fleet as a graph: workers by hardware kind, the tasks placed on them',
    api: ['/api/metrics/workers?limit=100', '/api/metrics/tasks'],
  },
  '/fault-tolerance': {
    shows: 'failure rates by hardware and model, recovery actions, outages and mean time to recovery',
    api: ['/api/metrics/tasks'],
  },
};

export function title(path) {
  return PAGES.find((page) => page.path === path)?.label ?? 'fleetwatch';
}

export function mount(root, _app, _params, path) {
  const plan = PLANS[path];
  root.append(
    h(
      'section',
      { class: 'panel narrow' },
      h('h1', {}, title(path)),
      h('p', {}, 'Coming soon: this page will show ', plan?.shows ?? 'more of the fleet', '.'),
      plan
        ? h(
            'p',
            {},
            'Its data is in the REST API today: ',
            plan.api.map((url, index) => [index ? ', ' : '', h('a', { href: url }, url)]),
            '.',
          )
        : null,
      h('p', {}, h('a', { href: '/' }, 'The overview'), ' shows the whole fleet live.'),
    ),
  );
}
