// How fast pages show their data, in headless Chromium (the `dashboard-bench` runs this
// against a running system): `node bench/pages.mjs --url http://127.0.0.1:PORT [--runs 5]`.
// For each page, from the start of navigation to the moment its data is on screen, three
// ways: cold (a fresh browser context each run: nothing cached, a new renderer), reload (the
// same tab loads the page again: assets revalidated from the cache) and in-app (a click on
// the navigation bar from another page, as people move around); and, as the baseline, a
// fresh context opening /api/status (plain JSON: no dashboard code). Prints one JSON line
// per page with the median and every run of each, in ms.

import { parseArgs } from 'node:util';
import { launchBrowser } from '../test/system.mjs';

const { values } = parseArgs({ options: { url: { type: 'string' }, runs: { type: 'string', default: '5' } } });
if (!values.url) throw new Error('--url http://host:port is needed');

/** Each page and the JavaScript condition that says its data is shown. */
const PAGES = [
  {
    name: 'overview',
    path: '/',
    shown: () => /^\d/.test(document.querySelector('#workers-total')?.textContent ?? '') && document.querySelectorAll('.worker-grid a.cell').length > 0,
  },
  { name: 'workers', path: '/workers', shown: () => document.querySelectorAll('#workers-table tbody tr[data-key]').length > 0 },
];

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const runs = Number(values.runs);
const shown = (tab, page) => tab.waitForFunction(page.shown, null, { timeout: 60_000, polling: 'raf' });

async function timed(count, once) {
  const times = [];
  for (let run = 0; run < count; run++) {
    const started = Date.now();
    await once();
    times.push(Date.now() - started);
  }
  return times;
}

const browser = await launchBrowser();
try {
  // The baseline: what a fresh context costs before any of the dashboard runs, a page of
  // plain JSON (the renderer's start and one request).
  const baseline = await timed(runs, async () => {
    const fresh = await browser.newContext();
    const freshTab = await fresh.newPage();
    await freshTab.goto(`${values.url}/api/status`, { waitUntil: 'commit' });
    await freshTab.waitForFunction(() => document.body?.textContent.includes('"workers"'), null, { polling: 'raf' });
    await fresh.close();
  });
  console.log(JSON.stringify({ baseline: { median_ms: median(baseline), runs_ms: baseline } }));
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const tab = await context.newPage();
  for (const page of PAGES) {
    const cold = await timed(runs, async () => {
      const fresh = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
      const freshTab = await fresh.newPage();
      await freshTab.goto(`${values.url}${page.path}`, { waitUntil: 'commit' });
      await shown(freshTab, page);
      await fresh.close();
    });
    await tab.goto(`${values.url}${page.path}`);
    await shown(tab, page);
    const reload = await timed(runs, async () => {
      await tab.reload({ waitUntil: 'commit' });
      await shown(tab, page);
    });
    // In-app: from another page of the pair, by its link in the navigation bar.
    const other = PAGES.find((candidate) => candidate !== page);
    const inApp = [];
    for (let run = 0; run < runs; run++) {
      await tab.click(`nav a[href="${other.path}"]`);
      await shown(tab, other);
      const started = Date.now();
      await tab.click(`nav a[href="${page.path}"]`);
      await shown(tab, page);
      inApp.push(Date.now() - started);
    }
    const result = (times) => ({ median_ms: median(times), runs_ms: times });
    console.log(JSON.stringify({ page: page.name, cold: result(cold), reload: result(reload), in_app: result(inApp) }));
  }
  await context.close();
} finally {
  await browser.close();
}
