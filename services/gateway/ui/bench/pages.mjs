// How fast pages show their data, in headless Chromium (the `dashboard-bench` runs this
// against a running system): `node bench/pages.mjs --url http://127.0.0.1:PORT [--runs 5]`.
// For each page, from the start of navigation to the moment its data is on screen, in a
// fresh browser context each run (nothing cached); prints one JSON line per page with the
// median and every run, in ms.

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
const browser = await launchBrowser();
try {
  for (const page of PAGES) {
    const runs = [];
    for (let run = 0; run < Number(values.runs); run++) {
      const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
      const tab = await context.newPage();
      const started = Date.now();
      await tab.goto(`${values.url}${page.path}`, { waitUntil: 'commit' });
      await tab.waitForFunction(page.shown, null, { timeout: 60_000, polling: 'raf' });
      runs.push(Date.now() - started);
      await context.close();
    }
    console.log(JSON.stringify({ page: page.name, median_ms: median(runs), runs_ms: runs }));
  }
} finally {
  await browser.close();
}
