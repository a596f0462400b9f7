// The workers page and a worker's page, in real headless Chromium against a real system
// (test/system.mjs): counts, filters and sorting in the URL and on the server, the CSV of
// every selected worker, the drill from a worker to the task it runs, live figures, and a
// hostile tag shown as text.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { ingest, launchBrowser, startSystem, waitFor, openPage } from './system.mjs';

const WORKERS = 20;
const HOSTILE = '<img src=x onerror=alert(1)>';
let system;
let browser;

before(async () => {
  system = await startSystem({ workers: WORKERS, tickMs: 200 });
  browser = await launchBrowser();
  // A worker of our own, with a hostile tag, that keeps sending heartbeats.
  await ingest(system, [
    {
      type: 'worker_registered',
      worker_id: 'zz-hostile',
      capabilities: { hardware: 'other', cpu_cores: 4, memory_gb: 8, slots: 1, tags: [HOSTILE] },
    },
    { type: 'heartbeat', worker_id: 'zz-hostile', cpu_pct: 12, memory_pct: 20, network_pct: 1, running_tasks: 0, queued_tasks: 0 },
  ]);
});

after(async () => {
  await browser?.close();
  await system?.stop();
});

async function open(path) {
  return openPage(browser, `${system.url}${path}`);
}

const rows = (page) => page.locator('#workers-table tbody tr[data-key]');
const cellsOf = async (page, column) => page.locator(`#workers-table tbody tr[data-key] td:nth-child(${column})`).allTextContents();

describe('the workers page', () => {
  test('counts, a filter in the URL, sorting on the server and the CSV of every selected worker', async () => {
    const { context, page, problems } = await open('/workers');
    try {
      await waitFor('the worker count', async () => (await page.locator('[data-count="total"] dd').textContent()) === String(WORKERS + 1));
      await waitFor('rows', async () => (await rows(page).count()) === WORKERS + 1);
      assert.ok((await page.locator('#workers-table th[title]').count()) >= 10, 'every column says what it is');

      await page.selectOption('select[name="hardware"]', 'cuda');
      await waitFor('the filter in the URL', () => new URL(page.url()).searchParams.get('hardware') === 'cuda');
      await waitFor('only CUDA workers', async () => {
        const hardware = await cellsOf(page, 3);
        return hardware.length > 0 && hardware.length < WORKERS && hardware.every((text) => text.startsWith('cuda'));
      });

      await page.locator('#workers-table button.sort[data-sort="cpu_pct"]').click();
      await waitFor('the sort in the URL', () => new URL(page.url()).searchParams.get('sort') === 'cpu_pct');
      const order = new URL(page.url()).searchParams.get('order');
      await waitFor('rows sorted by CPU', async () => {
        const cpus = (await cellsOf(page, 4)).map((text) => Number.parseFloat(text));
        return cpus.length > 1 && cpus.every((cpu, i) => i === 0 || (order === 'desc' ? cpus[i - 1] >= cpu : cpus[i - 1] <= cpu));
      });

      const [download] = await Promise.all([page.waitForEvent('download'), page.locator('.data-table .csv').click()]);
      const csv = await readFile(await download.path(), 'utf8');
      const lines = csv.trim().split(/\r?\n/);
      assert.match(lines[0], /^worker_id,status,hardware,/);
      assert.equal(lines.length - 1, await rows(page).count(), 'every CUDA worker');
      assert.ok(lines.slice(1).every((line) => line.split(',')[2] === 'cuda'), csv);

      // The link shares the view.
      const shared = page.url();
      const second = await context.newPage();
      await second.goto(shared);
      await waitFor('the shared view', async () => (await second.locator('select[name="hardware"]').inputValue()) === 'cuda');
      assert.equal(await second.locator('#workers-table th[aria-sort]').getAttribute('aria-sort'), order === 'desc' ? 'descending' : 'ascending');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('shows a hostile tag as text, in the menu and on the worker\'s page', async () => {
    const { context, page, problems } = await open('/workers?q=zz-hostile');
    try {
      await waitFor('the hostile worker', async () => (await rows(page).count()) === 1);
      const options = await page.locator('select[name="tag"] option').allTextContents();
      assert.ok(options.some((text) => text.startsWith(HOSTILE)), `the tag is offered as text: ${options}`);
      await page.locator('#workers-table a', { hasText: 'zz-hostile' }).click();
      await waitFor('the worker page', async () => (await page.locator('#worker-capabilities').textContent()).includes(HOSTILE));
      assert.equal(await page.locator('main img').count(), 0, 'no element was made from it');
      assert.equal(await page.evaluate(() => window.injected === true), false);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

describe('a worker\'s page', () => {
  test('shows its capabilities, live figures, trends and compatibility, and leads to the task it runs', async () => {
    const { context, page, problems } = await open('/workers?sort=active_tasks&order=desc');
    try {
      await waitFor('a busy worker first', async () => Number(await page.locator('#workers-table tbody tr[data-key] td:nth-child(8)').first().textContent()) > 0);
      const workerId = await page.locator('#workers-table tbody tr[data-key]').first().getAttribute('data-key');
      await page.locator(`#workers-table a[href="/workers/${workerId}"]`).click();
      await waitFor('the worker page', () => new URL(page.url()).pathname === `/workers/${workerId}`);
      await waitFor('its capabilities', async () => /Hardware/.test(await page.locator('#worker-capabilities').textContent()));
      await waitFor('its figures', async () => /^(idle|busy|overloaded)$/.test(await page.locator('#worker-status').textContent()));
      const seen = await page.locator('#worker-cpu_pct').textContent();
      await page.evaluate(() => {
        window.sameDocument = true;
      });
      await waitFor('a figure to change live', async () => (await page.locator('#worker-cpu_pct').textContent()) !== seen);
      assert.equal(await page.evaluate(() => window.sameDocument), true);
      // The compatibility table comes from its own request, which may land after the frame.
      await waitFor('a compatibility row for every family', async () => (await page.locator('#worker-compatibility tbody tr[data-key]').count()) === 5);
      assert.ok((await page.locator('.trends figure.chart').count()) >= 4, 'performance and resource trends');

      const task = page.locator('#worker-running tbody tr[data-key] a').first();
      await waitFor('a running task', async () => (await task.count()) === 1);
      const taskId = await task.textContent();
      await task.click();
      await waitFor('the task page', () => new URL(page.url()).pathname === `/tasks/${taskId}`);
      await waitFor('the task on its worker', async () => (await page.locator('#task-facts').textContent()).includes(workerId));
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
