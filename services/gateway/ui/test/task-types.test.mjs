// The task-types pages as a person sees them, in real headless Chromium against a real
// system (test/system.mjs): /task-types lists every family and leads into one; a family's
// page shows its counts, its models and where its tasks run, live; its model table sorts
// (in the URL) and downloads as CSV; its range is in the URL and reloads the range's
// figures; hostile text from the fleet (a model name, a path) shows as text.

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

async function open(path) {
  return openPage(browser, `${system.url}${path}`);
}

const text = (page, selector) => page.locator(selector).first().textContent();
const NUMBER = /^\d[\d,.]*$/;

describe('the task-types list', () => {
  test('lists every family with its figures and leads into one', async () => {
    const { context, page, problems } = await open('/task-types');
    try {
      assert.equal(await text(page, 'main h1'), 'Task types');
      await waitFor('the families', async () => (await page.locator('#task-types-table tbody tr[data-key]').count()) >= 3);
      const keys = await page.$$eval('#task-types-table tbody tr[data-key]', (rows) => rows.map((row) => row.dataset.key));
      assert.ok(keys.includes('vision'), `vision among ${keys}`);
      assert.ok((await page.locator('#family-cards .tt-family-card').count()) >= 3, 'a card per family');
      const cells = await page.$$eval('#task-types-table tbody tr[data-key="vision"] td', (tds) => tds.map((td) => td.textContent));
      assert.match(cells[2], NUMBER, 'running');
      assert.match(cells[4], NUMBER, 'completed');
      assert.ok((await page.locator('#task-types-table th[title]').count()) > 5, 'every heading says what it is');

      // Sorting is in the URL.
      await page.locator('#task-types-table button.sort[data-sort="completed"]').click();
      assert.equal(new URL(page.url()).searchParams.get('sort'), 'completed.desc');
      await waitFor('most completed first', async () => {
        const done = await page.$$eval('#task-types-table tbody tr[data-key]', (rows) => rows.map((row) => Number(row.children[4].textContent.replaceAll(',', ''))));
        return done.every((value, i) => i === 0 || value <= done[i - 1]);
      });

      const [download] = await Promise.all([page.waitForEvent('download'), page.locator('.task-types button.csv').click()]);
      assert.equal(download.suggestedFilename(), 'task-types.csv');
      assert.match((await readFile(await download.path(), 'utf8')).split('\r\n')[0], /^key,models,running,queued,completed,failed/);

      await page.locator('#family-cards a[href="/task-types/vision"]').click();
      await waitFor('the vision page', () => new URL(page.url()).pathname === '/task-types/vision');
      assert.equal(await text(page, 'main h1'), 'Task type: vision');
      assert.equal(await page.locator('nav a[aria-current="page"]').textContent(), 'Task types');
      await page.locator('main a[href="/task-types"]').click();
      await waitFor('the list again', async () => (await page.locator('#task-types-table').count()) === 1);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

describe('a family\'s page', () => {
  test('shows its counts, models, completion rates and assignment by worker type, live', async () => {
    const { context, page, problems } = await open('/task-types/vision');
    try {
      await page.evaluate(() => {
        window.sameDocument = true;
      });
      for (const id of ['#tt-active', '#tt-queued', '#tt-completed', '#tt-failed']) {
        await waitFor(`${id} to hold a number`, async () => NUMBER.test(await text(page, id)));
      }
      // A young fleet may not have run every model yet: wait for one the demo always runs.
      const modelKeys = () => page.$$eval('#tt-models tbody tr[data-key]', (rows) => rows.map((row) => row.dataset.key));
      await waitFor('vit-large among the model rows', async () => (await modelKeys()).includes('vit-large'));
      const models = await modelKeys();
      await waitFor('the distribution by model', async () => (await page.locator('#tt-distribution li[data-key]').count()) >= models.length);
      assert.match(await text(page, '#tt-distribution li[data-key] .num'), /%$/);
      await waitFor('a success rate per model', async () => (await page.locator('#tt-completion li[data-key]').count()) >= models.length);
      await waitFor('tasks placed by worker type', async () => (await page.locator('#tt-assignment li[data-key]').count()) > 0);
      assert.match(await page.locator('#tt-assignment li[data-key]').first().getAttribute('title'), /running, \d+ assigned/);
      await waitFor('the optimal worker match', async () => /%$/.test(await text(page, '#tt-best-fit')));
      await waitFor('the average queue time', async () => /\d/.test(await text(page, '#tt-queue-mean')));
      await waitFor('the throughput comparison drawn', async () => Number(await page.locator('#tt-range figure.bar-chart').first().getAttribute('data-bars')) > 0);
      for (const selector of ['.tt-counts [title]', '#tt-models th[title]', '#tt-distribution li[title]', '#tt-range figcaption[title]']) {
        assert.ok((await page.locator(selector).count()) > 0, `${selector} has tooltips`);
      }
      const first = await text(page, '#tt-updated');
      await waitFor('a later update', async () => (await text(page, '#tt-updated')) !== first);
      assert.equal(await page.evaluate(() => window.sameDocument), true, 'the page was not reloaded');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('sorts and downloads its model table, and keeps the range in the URL', async () => {
    const { context, page, problems } = await open('/task-types/vision');
    try {
      await waitFor('model rows', async () => (await page.locator('#tt-models tbody tr[data-key]').count()) > 0);
      await page.locator('#tt-models button.sort[data-sort="key"]').click();
      assert.equal(new URL(page.url()).searchParams.get('sort'), 'key.asc');
      const names = await page.$$eval('#tt-models tbody tr[data-key]', (rows) => rows.map((row) => row.dataset.key));
      assert.deepEqual(names, [...names].sort((a, b) => a.localeCompare(b)));

      const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#tt-models-panel button.csv').click()]);
      assert.equal(download.suggestedFilename(), 'task-type-vision-models.csv');
      const lines = (await readFile(await download.path(), 'utf8')).trim().split('\r\n');
      assert.match(lines[0], /^key,share,running,queued,completed,failed,throughput_per_min/);
      assert.equal(lines.length - 1, names.length, 'a line per model shown');

      const reloaded = page.waitForRequest((request) => {
        const url = new URL(request.url());
        return url.pathname === '/api/metrics/tasks/stats' && url.searchParams.get('family') === 'vision' &&
          Math.abs(Date.now() - 86_400_000 - Number(url.searchParams.get('start_time'))) < 60_000;
      });
      await page.locator('#tt-range button[data-range="24h"]').click();
      await reloaded;
      assert.equal(new URL(page.url()).searchParams.get('range'), '24h');
      await waitFor('the range loaded', async () => (await page.locator('#tt-range').getAttribute('data-loading')) === 'false');
      assert.match(await text(page, '#tt-range .range-caption'), /^Last 24 h/);

      await page.reload();
      await waitFor('the page after the reload', async () => (await page.locator('#tt-range button[data-range="24h"]').count()) === 1);
      assert.equal(await page.locator('#tt-range button[data-range="24h"]').getAttribute('aria-pressed'), 'true');
      assert.equal(await page.locator('#tt-models th:has(button[data-sort="key"])').getAttribute('aria-sort'), 'ascending');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('shows a hostile model name and a hostile path as text', async () => {
    const id = `tt-hostile-${Date.now()}`;
    await ingest(system, [{ type: 'task_queued', task_id: id, model: HOSTILE, family: 'vision', priority: 1 }]);
    const { context, page, problems } = await open('/task-types/vision');
    try {
      const row = page.locator('#tt-models tbody tr', { has: page.locator('.model-name', { hasText: HOSTILE }) });
      await waitFor('the hostile model in the table', async () => (await row.count()) === 1);
      assert.equal(await row.locator('.model-name').textContent(), HOSTILE);
      await waitFor('and in the distribution', async () => (await page.locator('#tt-distribution .tt-bar-label', { hasText: HOSTILE }).count()) === 1);
      assert.equal(await page.locator('main img').count(), 0, 'no element was made from it');

      await page.goto(`${system.url}/task-types/${encodeURIComponent(HOSTILE)}`);
      await waitFor('the heading', async () => (await text(page, '#tt-family')) === HOSTILE);
      await waitFor('word that the family is unknown', async () => /No task family/.test(await text(page, '#tt-throughput-note')));
      assert.equal(await page.locator('main img').count(), 0, 'no element was made from the path');
      assert.equal(await page.evaluate(() => window.injected === true), false, 'no script ran');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('says plainly when the task metrics cannot be read', async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (err) => problems.push(String(err)));
    try {
      // No live updates and no task metrics: what a page sees before the processor's first tick.
      await context.routeWebSocket(/\/ws\/metrics/, (ws) => ws.close());
      await context.route('**/api/metrics/tasks', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":"no task metrics yet"}' }));
      await page.goto(`${system.url}/task-types/vision`);
      await waitFor('the message', async () => /No task metrics yet/.test(await text(page, '#tt-error')));
      assert.equal(await text(page, 'main h1'), 'Task type: vision', 'the page stays');
      await page.goto(`${system.url}/task-types`);
      await waitFor('the message on the list', async () => /No task metrics yet/.test(await text(page, '#tt-error')));
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
