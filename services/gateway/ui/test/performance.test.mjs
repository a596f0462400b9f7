// The performance page as a person sees it, in real headless Chromium against a real system
// (test/system.mjs): the figures, tables and charts fill in and change live, sorting is kept
// in the URL, a table downloads as CSV, the trends' range reloads them, and recommendations
// (made deterministic through the collector's HTTP ingest) show as text, a hostile model
// name included.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { ingest, launchBrowser, startSystem, waitFor, openPage } from './system.mjs';

const HOSTILE = '<img src=x onerror=alert(1)>';
let system;
let browser;

before(async () => {
  system = await startSystem({ workers: 16, tickMs: 200 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await system?.stop();
});

async function open(path = '/performance') {
  return openPage(browser, `${system.url}${path}`);
}

const text = (page, selector) => page.locator(selector).first().textContent();
const NUMBER = /^\d[\d,.]*$/;

/**
 * A deterministic case for the recommendations: a webnn worker that fails every vision task
 * it runs while an `other` worker runs them all, and a model (with a hostile name) whose
 * tasks waited two and a half minutes to start.
 */
async function injectCase() {
  const now = Date.now();
  const events = [];
  const worker = (id, hardware) =>
    events.push(
      { type: 'worker_registered', worker_id: id, time: now - 5000, capabilities: { hardware, cpu_cores: 8, memory_gb: 16, slots: 64, tags: ['vision'] } },
      { type: 'heartbeat', worker_id: id, time: now - 4000, cpu_pct: 20, memory_pct: 20, network_pct: 1, running_tasks: 0, queued_tasks: 0 },
    );
  const run = (id, model, workerId, queuedAgoMs, ok) =>
    events.push(
      { type: 'task_queued', task_id: id, model, family: 'vision', priority: 1, time: now - queuedAgoMs },
      { type: 'task_assigned', task_id: id, worker_id: workerId, best_fit: ok, time: now - 1500 },
      { type: 'task_started', task_id: id, worker_id: workerId, time: now - 1000 },
      ok
        ? { type: 'task_completed', task_id: id, worker_id: workerId, time: now - 200 }
        : { type: 'task_failed', task_id: id, worker_id: workerId, error: 'out of memory', time: now - 200 },
    );
  worker('perf-webnn-1', 'webnn');
  worker('perf-other-1', 'other');
  for (let i = 0; i < 30; i++) run(`perf-fail-${now}-${i}`, 'vit-large', 'perf-webnn-1', 2000, false);
  for (let i = 0; i < 25; i++) run(`perf-ok-${now}-${i}`, 'vit-large', 'perf-other-1', 2000, true);
  for (let i = 0; i < 12; i++) run(`perf-slow-${now}-${i}`, HOSTILE, 'perf-other-1', 150_000, true);
  await ingest(system, events);
}

describe('the performance page', () => {
  test('shows the figures, the tables, the matrix, the efficiency and the trends', async () => {
    const { context, page, problems } = await open();
    try {
      assert.equal(await text(page, 'main h1'), 'Performance');
      await waitFor('the throughput', async () => NUMBER.test(await text(page, '#perf-throughput')));
      for (const id of ['#perf-queue-p50', '#perf-run-p50', '#perf-scheduling']) {
        await waitFor(`${id} to hold a figure`, async () => /\d/.test(await text(page, id)));
      }
      await waitFor('hardware rows', async () => (await page.locator('#hardware-table tbody tr[data-key]').count()) > 0);
      await waitFor('compatibility scores', async () => (await page.locator('#compatibility-table .score[data-family]').filter({ hasText: /^\d+$/ }).count()) > 0);
      const scored = page.locator('#compatibility-table .score[data-family]').filter({ hasText: /^\d+$/ }).first();
      assert.match(await scored.getAttribute('class'), /score-(high|mid|low)/, 'a coloured cell');
      assert.match(await scored.getAttribute('title'), / × .*: score \d/, 'the cell says what it is');
      await waitFor('family rows', async () => (await page.locator('#family-table tbody tr[data-key]').count()) > 0);
      assert.ok((await page.locator('#family-table a[href^="/task-types/"]').count()) > 0, 'families link to their page');
      await waitFor('model rows', async () => (await page.locator('#model-table tbody tr[data-key]').count()) > 0);
      assert.ok((await page.locator('#model-table tbody a[href^="/task-types/"]').count()) > 0, 'models link to their family');
      await waitFor('the efficiency cards', async () => NUMBER.test(await text(page, '#eff-connected')));
      assert.match(await text(page, '#eff-slot-utilisation'), /%$/);
      await waitFor('the recommendations, or word that there are none', async () => (await page.locator('#recommendations li.recommendation, #no-recommendations').count()) > 0);
      assert.equal(await page.locator('#performance-trends figure.chart').count(), 5, 'five trend charts');
      await waitFor('the charts drawn', async () => (await page.locator('#performance-trends canvas').count()) === 5);
      for (const selector of ['.perf-summary .card[title]', '#efficiency .card[title]', '#hardware-table th[title]', '#performance-trends figcaption[title]']) {
        assert.ok((await page.locator(selector).count()) > 0, `${selector} has tooltips`);
      }
      // A model row leads to its family's page.
      const link = page.locator('#model-table tbody a[href^="/task-types/"]').first();
      const href = await link.getAttribute('href');
      await link.click();
      await waitFor('the family page', () => new URL(page.url()).pathname === href);
      await waitFor('its heading', async () => /^Task type: /.test(await text(page, 'main h1')));
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('updates its figures without a reload', async () => {
    const { context, page, problems } = await open();
    try {
      await page.evaluate(() => {
        window.sameDocument = true;
      });
      const first = await waitFor('the first update', async () => {
        const value = await text(page, '#perf-updated');
        return value.startsWith('updated ') ? value : undefined;
      });
      await waitFor('a later update', async () => (await text(page, '#perf-updated')) !== first);
      const firstDone = await waitFor('a family row', async () => {
        const cells = page.locator('#family-table tbody tr[data-key]').first().locator('td');
        return (await cells.count()) > 3 ? cells.nth(3).textContent() : undefined;
      });
      await waitFor('a completion count to move', async () => (await page.locator('#family-table tbody tr[data-key]').first().locator('td').nth(3).textContent()) !== firstDone);
      assert.equal(await page.evaluate(() => window.sameDocument), true, 'the page was not reloaded');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('sorting a table reorders its rows and keeps the order in the URL', async () => {
    const { context, page, problems } = await open();
    try {
      await waitFor('family rows', async () => (await page.locator('#family-table tbody tr[data-key]').count()) > 1);
      const doneColumn = async () =>
        page.$$eval('#family-table tbody tr[data-key]', (rows) => rows.map((row) => Number(row.children[3].textContent.replaceAll(',', ''))));
      const sorted = (values, direction) => values.every((value, i) => i === 0 || direction * (value - values[i - 1]) >= 0);

      await page.locator('#family-table button.sort[data-sort="completed"]').click();
      assert.equal(new URL(page.url()).searchParams.get('family_sort'), 'completed.desc');
      await waitFor('most completed first', async () => sorted(await doneColumn(), -1));
      await page.locator('#family-table button.sort[data-sort="completed"]').click();
      assert.equal(new URL(page.url()).searchParams.get('family_sort'), 'completed.asc');
      await waitFor('fewest completed first', async () => sorted(await doneColumn(), 1));

      await page.locator('#hardware-table button.sort[data-sort="key"]').click();
      assert.equal(new URL(page.url()).searchParams.get('hw_sort'), 'key.asc');
      const hardware = await page.$$eval('#hardware-table tbody tr[data-key]', (rows) => rows.map((row) => row.dataset.key));
      assert.deepEqual(hardware, [...hardware].sort((a, b) => a.localeCompare(b)), 'hardware in name order');

      // The family filter of the model table is in the URL too.
      await waitFor('the family choice', async () => (await page.locator('#model-family option[value="vision"]').count()) === 1);
      await page.selectOption('#model-family', 'vision');
      assert.equal(new URL(page.url()).searchParams.get('model_family'), 'vision');
      await waitFor('only vision models', async () => {
        const families = await page.$$eval('#model-table tbody tr[data-key]', (rows) => rows.map((row) => row.children[1].textContent));
        return families.length > 0 && families.every((family) => family === 'vision');
      });

      // A shared link shows the same view.
      await page.reload();
      await waitFor('the rows after the reload', async () => (await page.locator('#family-table tbody tr[data-key]').count()) > 1);
      assert.equal(await page.locator('#family-table th:has(button[data-sort="completed"])').getAttribute('aria-sort'), 'ascending');
      assert.equal(await page.locator('#hardware-table th:has(button[data-sort="key"])').getAttribute('aria-sort'), 'ascending');
      assert.equal(await page.locator('#model-family').inputValue(), 'vision');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('downloads a table as CSV', async () => {
    const { context, page, problems } = await open();
    try {
      await waitFor('model rows', async () => (await page.locator('#model-table tbody tr[data-key]').count()) > 0);
      const shown = await page.locator('#model-table tbody tr[data-key]').count();
      const [download] = await Promise.all([page.waitForEvent('download'), page.locator('.model-analysis button.csv').click()]);
      assert.equal(download.suggestedFilename(), 'performance-models.csv');
      const csv = await readFile(await download.path(), 'utf8');
      const lines = csv.trim().split('\r\n');
      assert.match(lines[0], /^key,family,running,queued,completed,failed,throughput_per_min,success_rate,run_p50/);
      assert.ok(lines.length - 1 >= shown - 1 && lines.length > 1, 'a line per model');

      const [matrix] = await Promise.all([page.waitForEvent('download'), page.locator('.compatibility button.csv').click()]);
      assert.equal(matrix.suggestedFilename(), 'performance-compatibility.csv');
      assert.match((await readFile(await matrix.path(), 'utf8')).split('\r\n')[0], /^key,family:/);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('changing the trends\' range reloads them', async () => {
    const { context, page, problems } = await open();
    try {
      const chart = page.locator('#performance-trends figure.chart').first();
      const span = async () => Number(await chart.getAttribute('data-range-end')) - Number(await chart.getAttribute('data-range-start'));
      await waitFor('a 15-minute range', async () => Math.abs((await span()) - 15 * 60_000) < 5000);
      const reloaded = page.waitForRequest((request) => {
        const url = new URL(request.url());
        if (url.pathname !== '/api/metrics/system/history') return false;
        const start = Number(url.searchParams.get('start_time'));
        return Math.abs(Date.now() - 3_600_000 - start) < 60_000 && url.searchParams.get('metrics').includes('scheduling_efficiency');
      });
      await page.locator('#performance-trends button[data-range="1h"]').click();
      await reloaded;
      assert.equal(new URL(page.url()).searchParams.get('range'), '1h');
      await waitFor('a 1-hour range', async () => Math.abs((await span()) - 3_600_000) < 5000);
      assert.equal(await page.locator('#performance-trends button[data-range="1h"]').getAttribute('aria-pressed'), 'true');
      await waitFor('word on the history', async () => /History/.test(await text(page, '#performance-trends .history-note')));
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('shows recommendations as text, a hostile model name included', async () => {
    await injectCase();
    const { context, page, problems } = await open();
    try {
      const failing = page.locator('#recommendations li.recommendation[data-kind="hardware_fails_family"]', { hasText: 'webnn fails vision tasks' });
      await waitFor('the failing-hardware recommendation', async () => (await failing.count()) > 0);
      assert.match(await failing.first().locator('.recommendation-detail').textContent(), /30 of \d+ vision runs on webnn failed/);
      assert.equal(await failing.first().locator('.severity').textContent(), 'warning');
      assert.equal(await failing.first().locator('a.recommendation-link').getAttribute('href'), '/fault-tolerance');

      const outlier = page.locator('#recommendations li.recommendation[data-kind="queue_time_outlier"]', { hasText: HOSTILE });
      await waitFor('the queue-time recommendation naming the model', async () => (await outlier.count()) > 0);
      assert.ok((await outlier.first().locator('.recommendation-title').textContent()).startsWith(`Model "${HOSTILE}" waits `), 'the name as sent');
      assert.equal(await outlier.first().locator('a.recommendation-link').getAttribute('href'), '/task-types/vision');

      const row = page.locator('#model-table tbody tr', { has: page.locator('td .model-name', { hasText: HOSTILE }) });
      await waitFor('the hostile model in the table', async () => (await row.count()) === 1);
      assert.equal(await row.locator('.model-name').textContent(), HOSTILE);
      assert.equal(await page.locator('main img').count(), 0, 'no element was made from it');
      assert.equal(await page.evaluate(() => window.injected === true), false, 'no script ran');
      assert.match(await text(page, '#recommendation-count'), /^\d+$/);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('says plainly when the figures cannot be read', async () => {
    const { context, page, problems } = await open();
    try {
      await waitFor('the figures', async () => NUMBER.test(await text(page, '#eff-connected')));
      await context.route('**/api/performance', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":"no metrics yet"}' }));
      await waitFor('the message', async () => /No performance figures yet/.test(await text(page, '#perf-error')));
      assert.equal(await page.locator('main h1').textContent(), 'Performance', 'the page stays');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
