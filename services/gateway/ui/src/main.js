// The app's entry point: builds the header, opens the one WebSocket the pages share and
// shows the page for the current path. Every page has its own URL (filters and sorting in
// its query string); moving between pages uses history.pushState, so the socket and the
// trend window stay. Pages load on first use.

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
import { onUnauthorized } from './api.js';
import { settings } from './config.js';
import { h } from './dom.js';
import { RollingWindow } from './history.js';
import { interceptLinks, navigationBar } from './nav.js';
import * as notFound from './pages/not-found.js';
import { loadSession, loginUrl, session } from './session.js';
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

/**
 * Path patterns to pages; the first match wins. Each page is a chunk of its own, loaded
 * when first shown: the browser parses only what the page it opens needs.
 */
const ROUTES = [
  { pattern: /^\/$/, chunk: 'overview', load: () => import('./pages/overview.js'), title: 'Overview' },
  { pattern: /^\/system$/, chunk: 'system', load: () => import('./pages/system.js'), title: 'System' },
  { pattern: /^\/workers$/, chunk: 'workers', load: () => import('./pages/workers.js'), title: 'Workers' },
  { pattern: /^\/workers\/([^/]+)$/, chunk: 'worker', load: () => import('./pages/worker.js'), title: 'Worker' },
  { pattern: /^\/tasks$/, chunk: 'tasks', load: () => import('./pages/tasks.js'), title: 'Tasks' },
  { pattern: /^\/tasks\/([^/]+)$/, chunk: 'task', load: () => import('./pages/task.js'), title: 'Task' },
  { pattern: /^\/task-types(?:\/([^/]+))?$/, chunk: 'task-types', load: () => import('./pages/task-types.js'), title: 'Task types' },
  { pattern: /^\/performance$/, chunk: 'performance', load: () => import('./pages/performance.js'), title: 'Performance' },
  { pattern: /^\/alerts$/, chunk: 'alerts', load: () => import('./pages/alerts.js'), title: 'Alerts' },
  { pattern: /^\/topology$/, chunk: 'topology', load: () => import('./pages/topology.js'), title: 'Topology' },
  { pattern: /^\/fault-tolerance$/, chunk: 'fault-tolerance', load: () => import('./pages/fault-tolerance.js'), title: 'Fault tolerance' },
  { pattern: /^\/login$/, chunk: 'login', load: () => import('./pages/login.js'), title: 'Sign in' },
];

/** Each page's chunks (written into the shell by build.mjs). */
const CHUNKS = JSON.parse(document.querySelector('meta[name="fleetwatch-chunks"]')?.content || '{}');

/** Asks for a page's chunk and everything it imports at once, rather than one after another. */
function preload(chunk) {
  for (const href of CHUNKS[chunk] ?? []) {
    if (document.head.querySelector(`link[rel="modulepreload"][href="${href}"]`)) continue;
    document.head.append(h('link', { rel: 'modulepreload', href }));
  }
}

async function start() {
  await loadSession();
  const signIn = () => {
    if (location.pathname !== '/login') location.assign(loginUrl());
  };
  // The gateway sends a page without a session to /login itself; this is for one that ends
  // while the page is open.
  onUnauthorized(signIn);
  if (session().auth_required && !session().user && location.pathname !== '/login') {
    signIn();
    return;
  }
  const root = document.getElementById('app');
  const navigation = navigationBar(app.socket, session());
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
    if (route) preload(route.chunk);
    const page = route ? await route.load() : notFound;
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
  if (location.pathname !== '/login') app.socket.start();
  show(location.pathname);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
