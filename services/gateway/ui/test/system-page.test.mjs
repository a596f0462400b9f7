// The System page as a person sees it, in real headless Chromium against a real system
// (test/system.mjs, with the archiver): every running service with its health, the
// components, the archive, the pools and the queue; figures that change without a reload;
// a trend range that reloads the charts; the services filter in the URL; the CSV.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, startSystem, waitFor, openPage } from './system.mjs';

const WORKERS = 12;
let system;
let browser;

before(async () => {
  system = await startSystem({ workers: WORKERS, tickMs: 200 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await system?.stop();
});

async function openSystem(path = '/system') {
  return openPage(browser, `${system.url}${path}`);
}

const text = (page, selector) => page.locator(selector).first().textContent();
/** The text of one cell of the services table, by the row's key and the column's index. */
// Columns: service, instance, state, last report, uptime, restarts, version, in, out, rate,
// dead, gauges.
const RESTARTS = 5;
const IN = 7;
const GAUGES = 11;
const cell = (page, service, index) => page.locator(`#services tbody tr[data-key^="${service}/"] td`).nth(index).textContent();

describe('the system page', () => {
  test('shows every running service with its health, the components, the archive, the pools and the queue', async () => {
    const { context, page, problems } = await openSystem();
    try {
      assert.equal(await text(page, 'main h1'), 'System');
      // The services that are running, as the gateway knows them.
      const running = await waitFor('every service to report', async () => {
        const list = await (await fetch(`${system.url}/api/services`)).json();
        const names = new Set(list.map((row) => row.service));
        return ['collector', 'processor', 'archiver', 'gateway'].every((name) => names.has(name)) ? list : undefined;
      });
      for (const report of running) {
        const row = page.locator(`#services tbody tr[data-key="${report.service}/${report.instance}"]`);
        await waitFor(`${report.service} in the table`, async () => (await row.count()) === 1);
        await waitFor(`${report.service} up`, async () => (await row.locator('.state-badge').textContent()) === 'up');
      }
      await waitFor('the processor\'s events folded', async () => /^\d[\d,]*$/.test(await cell(page, 'processor', IN)));
      assert.equal(await cell(page, 'processor', RESTARTS), '—', 'no supervisor here: no restart count');
      assert.match(await cell(page, 'archiver', GAUGES), /active/, 'the archiver says it is the active one');
      await waitFor('the summary', async () => /^\d+ of \d+ instances up$/.test(await text(page, '#services-summary')));

      await waitFor('the coordinator', async () => (await page.locator('#components li[data-component="coordinator"] .state-badge').count()) === 1);
      assert.match(await text(page, '#components li[data-component="coordinator"] .state-badge'), /^(healthy|degraded|down)$/);
      assert.equal(await page.locator('#components li[data-component="load_balancer"]').count(), 1);

      await waitFor('the active archiver', async () => /^[^–\s]+$/.test(await text(page, '#archive-active')) && (await text(page, '#archive-active')) !== 'none');
      await waitFor('lag per stream', async () => (await page.locator('#archive-streams tbody tr[data-key="FLEET_EVENTS"]').count()) === 1);

      const kinds = (await (await fetch(`${system.url}/api/workers?limit=1`)).json()).summary.by_hardware.map((row) => row.hardware);
      await waitFor('a pool per hardware kind', async () => (await page.locator('#pools tbody tr[data-key]').count()) === kinds.length);
      assert.match(await page.locator(`#pools tbody tr[data-key="${kinds[0]}"] .pool-use`).textContent(), /^\d+ \/ \d+ \(/, 'slots used / slots');

      for (const id of ['#sys-queued', '#sys-assigned', '#sys-running', '#sys-throughput']) {
        await waitFor(`${id} to hold a number`, async () => /^\d[\d,.]*$/.test(await text(page, id)));
      }
      await waitFor('queue time p95', async () => /\d/.test(await text(page, '#sys-queue-p95')));
      await waitFor('events folded per minute', async () => /^\d[\d,.]*$/.test(await text(page, '#sys-events-rate')));
      await waitFor('CPU utilisation', async () => /^\d[\d.]*%$/.test(await text(page, '#util-cpu-text')));
      assert.equal(await page.locator('#system-trends figure.chart').count(), 6, 'six trend charts');
      await waitFor('the charts drawn', async () => (await page.locator('#system-trends figure.chart canvas').count()) === 6);

      // Every figure and chart says what it is.
      for (const selector of ['#services th[title]', '.queue-cards .card[title]', '#pools th[title]', '#system-trends figcaption[title]']) {
        assert.ok((await page.locator(selector).count()) > 0, `${selector} has tooltips`);
      }
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('figures change without a reload', async () => {
    const { context, page, problems } = await openSystem();
    try {
      await page.evaluate(() => {
        window.sameDocument = true;
      });
      const first = await waitFor('the processor\'s events folded', async () => {
        const value = await cell(page, 'processor', IN);
        return /^\d[\d,]*$/.test(value) ? value : undefined;
      });
      await waitFor('more events folded', async () => (await cell(page, 'processor', IN)) !== first);
      const figures = await waitFor('the figures\' time', async () => {
        const value = await text(page, '#system-updated');
        return value.startsWith('figures of ') ? value : undefined;
      });
      await waitFor('later figures', async () => (await text(page, '#system-updated')) !== figures);
      assert.equal(await page.evaluate(() => window.sameDocument), true, 'the page was not reloaded');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('a range change reloads the trends, and the range is in the URL', async () => {
    const { context, page, problems } = await openSystem();
    try {
      const chart = page.locator('#system-trends figure.chart').first();
      const span = async () => Number(await chart.getAttribute('data-range-end')) - Number(await chart.getAttribute('data-range-start'));
      await waitFor('a 15-minute range', async () => Math.abs((await span()) - 15 * 60_000) < 5000);
      const asked = [];
      page.on('request', (request) => {
        if (request.url().includes('/api/metrics/system/history')) asked.push(new URL(request.url()));
      });
      await page.locator('#system-trends').getByRole('button', { name: '1 h' }).click();
      await waitFor('a 1-hour range', async () => Math.abs((await span()) - 3_600_000) < 5000);
      assert.equal(new URL(page.url()).searchParams.get('range'), '1h');
      // The hour (and the minute before it, for the first points' rates), up to where live data begins.
      await waitFor('the history asked for the hour', () => asked.some((url) => Math.abs(Date.now() - 3_660_000 - Number(url.searchParams.get('start_time'))) < 20_000));
      await waitFor('word on the history', async () => /History|archive/.test(await text(page, '#system-trends .history-note')));
      // Every chart follows the one range.
      const spans = await page.locator('#system-trends figure.chart').evaluateAll((figures) => figures.map((figure) => Number(figure.dataset.rangeEnd) - Number(figure.dataset.rangeStart)));
      assert.ok(spans.every((value) => Math.abs(value - 3_600_000) < 5000), `every chart shows the hour: ${spans}`);
      await page.reload();
      await waitFor('the hour after a reload', async () => Math.abs((await span()) - 3_600_000) < 5000);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('the filter and the sort are in the URL, and the services CSV downloads', async () => {
    const { context, page, problems } = await openSystem();
    try {
      const keys = () => page.locator('#services tbody tr[data-key]').evaluateAll((rows) => rows.map((row) => row.dataset.key.split('/')[0]));
      await waitFor('four services or more', async () => (await keys()).length >= 4);
      assert.deepEqual(await keys(), [...(await keys())].sort(), 'by service name at first');

      await page.fill('#service-search', 'proc');
      await waitFor('only the processor', async () => (await keys()).join() === 'processor');
      assert.equal(new URL(page.url()).searchParams.get('service'), 'proc');
      await page.fill('#service-search', '');
      await waitFor('every service again', async () => (await keys()).length >= 4);

      await page.locator('#services button.sort[data-sort="service"]').click();
      await waitFor('names in reverse', async () => {
        const now = await keys();
        return now.join() === [...now].sort().reverse().join();
      });
      assert.equal(new URL(page.url()).searchParams.get('sort'), 'service.desc');
      await page.reload();
      await waitFor('the sort kept over a reload', async () => (await page.locator('#services th[aria-sort="descending"] button[data-sort="service"]').count()) === 1);

      const [download] = await Promise.all([page.waitForEvent('download'), page.locator('.data-table', { has: page.locator('#services') }).getByRole('button', { name: 'CSV' }).click()]);
      assert.equal(download.suggestedFilename(), 'services.csv');
      const csv = await readFile(await download.path(), 'utf8');
      const [header, ...lines] = csv.trim().split(/\r\n/);
      assert.match(header, /^service,instance,state,age_ms,uptime,restarts,version,in,out,rate,dead,gauges,details$/);
      assert.ok(lines.some((line) => line.startsWith('processor,')), 'the processor is a row');
      assert.ok(lines.some((line) => /^archiver,.*archiver_messages_archived_total=\d+/.test(line)), 'the archiver\'s counters are in it');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
