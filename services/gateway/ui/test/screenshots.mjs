// Screenshots of every page with live data, for the README (docs/screenshots/) and for a
// look as a user would: `npm run screenshots [-- --workers N --out DIR --pages a,b]`. It
// starts the whole system (test/system.mjs) with a demo fleet, lets it run for a minute
// so there is history and some alerts, then opens each page in headless Chromium.

import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launchBrowser, startSystem, waitFor } from './system.mjs';

const root = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '48' },
    out: { type: 'string', default: join(root, '../../../../docs/screenshots') },
    warmup: { type: 'string', default: '60' },
    pages: { type: 'string', default: '' },
    theme: { type: 'string', default: 'dark' },
  },
});

/** Each page, what shows it has data, and its file name. */
const PAGES = [
  { name: 'overview', path: '/', ready: '.worker-grid a.cell' },
  { name: 'system', path: '/system', ready: '#services tbody tr[data-key]' },
  { name: 'workers', path: '/workers', ready: 'main table tbody tr[data-key]' },
  { name: 'worker', path: '/workers/{worker}', ready: 'main h1' },
  { name: 'tasks', path: '/tasks', ready: 'main table tbody tr[data-key]' },
  { name: 'task', path: '/tasks/{task}', ready: 'main h1' },
  { name: 'task-types', path: '/task-types/vision', ready: '#tt-models tbody tr[data-key]' },
  { name: 'performance', path: '/performance', ready: '#hardware-table tbody tr[data-key]' },
  { name: 'alerts', path: '/alerts', ready: '#alerts-timeline[data-fired]' },
  { name: 'topology', path: '/topology', ready: 'main canvas' },
  { name: 'fault-tolerance', path: '/fault-tolerance', ready: '#ft-by-hardware tbody tr[data-key]' },
];

const chosen = values.pages ? PAGES.filter((page) => values.pages.split(',').includes(page.name)) : PAGES;
mkdirSync(values.out, { recursive: true });
const system = await startSystem({ workers: Number(values.workers), tickMs: 1000, alerter: true });
const browser = await launchBrowser();
try {
  await new Promise((resolve) => setTimeout(resolve, Number(values.warmup) * 1000));
  const workers = await (await fetch(`${system.url}/api/workers?sort=attention&limit=1`)).json();
  const finished = await (await fetch(`${system.url}/api/tasks?status=completed&limit=1`)).json();
  const ids = { worker: workers.items?.[0]?.worker_id ?? 'none', task: finished.items?.[0]?.task_id ?? 'none' };
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1 });
  await context.addInitScript((theme) => localStorage.setItem('fleetwatch.theme', theme), values.theme);
  const page = await context.newPage();
  for (const shot of chosen) {
    const path = shot.path.replace('{worker}', ids.worker).replace('{task}', ids.task);
    await page.goto(`${system.url}${path}`);
    await waitFor(`${shot.name} to show data`, async () => (await page.locator(shot.ready).count()) > 0);
    await page.waitForTimeout(2500);
    const file = join(values.out, `${shot.name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`${file}`);
  }
} finally {
  await browser.close();
  await system.stop();
}
