// The app's entry point: applies the remembered theme, builds the header, opens the one
// WebSocket the pages share and shows the page for the current path. Every page has its own
// URL; moving between them uses history.pushState, so the socket and the trend window stay.

import './app.css';
import { h } from './dom.js';
import { RollingWindow } from './history.js';
import { interceptLinks, navigationBar } from './nav.js';
import * as comingSoon from './pages/coming-soon.js';
import * as notFound from './pages/not-found.js';
import * as overview from './pages/overview.js';
import * as worker from './pages/worker.js';
import { applyTheme } from './theme.js';
import { LiveSocket } from './ws.js';

applyTheme();

/** What every page is handed: the shared socket and what it has delivered so far. */
const app = {
  socket: new LiveSocket(),
  /** The `system` messages seen since the page loaded, for the trend charts. */
  trends: new RollingWindow(),
};
app.socket.on('system', (system) => app.trends.push(system));

/** Path patterns to pages; the first match wins. */
const ROUTES = [
  { pattern: /^\/$/, page: overview, title: 'Overview' },
  { pattern: /^\/workers\/([^/]+)$/, page: worker, title: 'Worker' },
  { pattern: /^\/(system|workers|tasks|performance|alerts|topology|fault-tolerance)$/, page: comingSoon },
];

function start() {
  const root = document.getElementById('app');
  const navigation = navigationBar();
  const main = h('main', { id: 'page', tabindex: '-1' });
  root.append(navigation.element, main);
  let unmount = null;

  const show = (path) => {
    unmount?.();
    unmount = null;
    main.replaceChildren();
    let route = null;
    let match = null;
    for (const candidate of ROUTES) {
      match = candidate.pattern.exec(path);
      if (match) {
        route = candidate;
        break;
      }
    }
    const page = route?.page ?? notFound;
    const params = match ? match.slice(1).map(decodeURIComponent) : [];
    navigation.markCurrent(path);
    document.title = `${route?.title ?? page.title?.(path) ?? 'Not found'} · fleetwatch`;
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
