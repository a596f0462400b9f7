// The app's entry point: builds the header, opens the one WebSocket the pages share and
// shows the page for the current path. Every page has its own URL (filters and sorting in
// its query string); moving between pages uses history.pushState, so the socket and the
// trend window stay. The topology page, which brings a graph library, loads on first use.

import './app.css';
// Every page's own styles, bundled into app.css (a page loaded later, such as the topology,
// would otherwise need its stylesheet loaded by hand).
import './pages/alerts.css';
import './pages/fault-tolerance.css';
import './pages/performance.css';
import './pages/system.css';
import './pages/task-types.css';
import './pages/tasks.css';
import './pages/topology.css';
import './pages/workers.css';
import { settings } from './config.js';
import { h } from './dom.js';
import { RollingWindow } from './history.js';
import { interceptLinks, navigationBar } from './nav.js';
import * as alerts from './pages/alerts.js';
import * as faultTolerance from './pages/fault-tolerance.js';
import * as notFound from './pages/not-found.js';
import * as overview from './pages/overview.js';
import * as performance from './pages/performance.js';
import * as system from './pages/system.js';
import * as task from './pages/task.js';
import * as taskTypes from './pages/task-types.js';
import * as tasks from './pages/tasks.js';
import * as worker from './pages/worker.js';
import * as workers from './pages/workers.js';
import { applyTheme } from './theme.js';
import { LiveSocket } from './ws.js';

applyTheme();

/** What every page is handed: the shared socket, what it has delivered, the settings. */
const app = {
  socket: new LiveSocket(),
  /** The `system` messages seen since the app loaded, for the trend charts. */
  trends: new RollingWindow(),
  settings: settings(),
};
app.socket.on('system', (data) => app.trends.push(data));

const topology = { load: () => import('./pages/topology.js') };

/** Path patterns to pages; the first match wins. */
const ROUTES = [
  { pattern: /^\/$/, page: overview, title: 'Overview' },
  { pattern: /^\/system$/, page: system, title: 'System' },
  { pattern: /^\/workers$/, page: workers, title: 'Workers' },
  { pattern: /^\/workers\/([^/]+)$/, page: worker, title: 'Worker' },
  { pattern: /^\/tasks$/, page: tasks, title: 'Tasks' },
  { pattern: /^\/tasks\/([^/]+)$/, page: task, title: 'Task' },
  { pattern: /^\/task-types(?:\/([^/]+))?$/, page: taskTypes, title: 'Task types' },
  { pattern: /^\/performance$/, page: performance, title: 'Performance' },
  { pattern: /^\/alerts$/, page: alerts, title: 'Alerts' },
  { pattern: /^\/topology$/, page: topology, title: 'Topology' },
  { pattern: /^\/fault-tolerance$/, page: faultTolerance, title: 'Fault tolerance' },
];

function start() {
  const root = document.getElementById('app');
  const navigation = navigationBar(app.socket);
  const main = h('main', { id: 'page', tabindex: '-1' });
  root.append(navigation.element, main);
  let unmount = null;
  let shown = 0;

  const show = async (path) => {
    unmount?.();
    unmount = null;
    main.replaceChildren();
    const mine = ++shown;
    let route = null;
    let match = null;
    for (const candidate of ROUTES) {
      match = candidate.pattern.exec(path);
      if (match) {
        route = candidate;
        break;
      }
    }
    const params = match ? match.slice(1).map((part) => (part === undefined ? undefined : decodeURIComponent(part))) : [];
    navigation.markCurrent(path);
    document.title = `${route?.title ?? 'Not found'} · fleetwatch`;
    const page = route?.page.load ? await route.page.load() : (route?.page ?? notFound);
    if (mine !== shown) return;
    unmount = page.mount(main, app, params, path) ?? null;
  };

  const navigate = (path) => {
    if (path === location.pathname + location.search + location.hash) return;
    history.pushState(null, '', path);
    show(location.pathname);
    window.scrollTo(0, 0);
    main.focus({ preventScroll: true });
  };

  interceptLinks(document, navigate);
  addEventListener('popstate', () => show(location.pathname));
  app.socket.start();
  show(location.pathname);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
