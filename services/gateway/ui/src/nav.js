// The navigation bar: a link to every page, the current one marked, the live connection's
// state (on every page, so a lost connection is seen wherever one is), and the controls
// every page shares (refresh rate, theme). Links are followed inside the app without a
// reload.

import { sendJson } from './api.js';
import { h, setText } from './dom.js';
import { RATES, currentRate, onRateChange, setRate } from './refresh.js';
import { currentTheme, onThemeChange, toggleTheme } from './theme.js';
import { STATE_LABELS } from './ws.js';

export const PAGES = [
  { path: '/', label: 'Overview' },
  { path: '/system', label: 'System' },
  { path: '/workers', label: 'Workers' },
  { path: '/tasks', label: 'Tasks' },
  { path: '/task-types', label: 'Task types' },
  { path: '/performance', label: 'Performance' },
  { path: '/alerts', label: 'Alerts' },
  { path: '/topology', label: 'Topology' },
  { path: '/fault-tolerance', label: 'Fault tolerance' },
];

/** Who is signed in, and the way out; nothing where nobody is asked. */
function signedIn(current) {
  if (!current?.auth_required || !current.user) return [];
  const out = h('button', { type: 'button', class: 'button', id: 'sign-out', title: 'End this session' }, 'Sign out');
  out.addEventListener('click', async () => {
    out.disabled = true;
    try {
      await sendJson('/api/logout', undefined);
    } finally {
      location.assign('/login');
    }
  });
  const who = h('span', { id: 'signed-in', class: 'muted small', title: `Signed in as ${current.user}, a ${current.role}` }, `${current.user} · ${current.role}`);
  return current.via === 'session' ? [who, out] : [who];
}

/** The header; `markCurrent(path)` highlights the page shown. */
export function navigationBar(socket, current = null) {
  // Signed out (the sign-in page), the pages and the live state would only be refused.
  const signedOut = Boolean(current?.auth_required && !current.user);
  const links = signedOut ? [] : PAGES.map((page) => h('a', { href: page.path }, page.label));

  const rateSelect = h(
    'select',
    { id: 'refresh-rate', title: 'How often the page redraws. Live: every update as it arrives.' },
    RATES.map((rate) => h('option', { value: rate.value }, rate.label)),
  );
  rateSelect.value = currentRate().value;
  rateSelect.addEventListener('change', () => setRate(rateSelect.value));
  onRateChange((rate) => {
    rateSelect.value = rate.value;
  });

  const themeButton = h('button', { type: 'button', id: 'theme-toggle', class: 'button' });
  const showTheme = (theme) => {
    const next = theme === 'dark' ? 'light' : 'dark';
    themeButton.textContent = theme === 'dark' ? '☀ Light' : '☾ Dark';
    themeButton.title = `Switch to the ${next} theme (remembered in this browser)`;
    themeButton.setAttribute('aria-label', `Switch to the ${next} theme`);
  };
  showTheme(currentTheme());
  onThemeChange(showTheme);
  themeButton.addEventListener('click', toggleTheme);

  const connection = h('span', { id: 'connection', class: 'connection', role: 'status', title: 'The live WebSocket connection' }, STATE_LABELS.connecting);
  socket.onState((state) => {
    connection.dataset.state = state;
    setText(connection, STATE_LABELS[state] ?? state);
  });

  const element = h(
    'header',
    { class: 'topbar' },
    h('a', { class: 'brand', href: '/', title: 'fleetwatch: the fleet at a glance' }, 'fleetwatch'),
    h('nav', { 'aria-label': 'Pages' }, links),
    h(
      'div',
      { class: 'controls' },
      ...(signedOut ? [] : [connection, h('label', { for: 'refresh-rate' }, 'Refresh'), rateSelect]),
      themeButton,
      ...signedIn(current),
    ),
  );

  return {
    element,
    markCurrent(path) {
      for (const link of links) {
        const target = link.getAttribute('href');
        const current = target === '/' ? path === '/' : path === target || path.startsWith(`${target}/`);
        if (current) link.setAttribute('aria-current', 'page');
        else link.removeAttribute('aria-current');
      }
    },
  };
}

/**
 * Follows clicks on same-origin links inside the app with `navigate(path)` instead of a page
 * load (a new tab, a modified click, a download or an /api link still goes to the browser).
 */
export function interceptLinks(root, navigate) {
  root.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest?.('a[href]');
    if (!link || link.target || link.hasAttribute('download')) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname === '/metrics') return;
    event.preventDefault();
    navigate(url.pathname + url.search + url.hash);
  });
}
