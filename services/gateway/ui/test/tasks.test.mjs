// The tasks page and a task's page, in real headless Chromium against a real system
// (test/system.mjs): live and finished lists filtered and sorted on the server with the
// view in the URL, the CSV of every finished task selected, the run-time distribution, a
// task's whole life and its dependencies, and a hostile error shown as text.

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

/** A duration as the page writes it ("850 ms", "4.3 s", "2 min 5 s") in ms. */
function milliseconds(text) {
  let total = 0;
  for (const [, number, unit] of text.matchAll(/([\d.,]+)\s*(ms|s|min|h|d)/g)) {
    total += Number(number.replace(',', '')) * { ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 }[unit];
  }
  return total;
}

const rows = (page) => page.locator('#tasks-table tbody tr[data-key]');
const column = (page, index) => page.locator(`#tasks-table tbody tr[data-key] td:nth-child(${index})`).allTextContents();

describe('the tasks page', () => {
  test('lists live tasks, then finished ones, filtered and sorted on the server with the view in the URL', async () => {
    const { context, page, problems } = await open('/tasks');
    try {
      await waitFor('live tasks', async () => (await rows(page).count()) > 0);
      assert.match(await page.locator('#tasks-source').textContent(), /Live tasks/);
      const statuses = await column(page, 2);
      assert.ok(statuses.every((status) => ['queued', 'assigned', 'running', 'retrying'].includes(status)), statuses.join());
      await waitFor('the counts', async () => /^\d/.test(await page.locator('[data-count="completed"] dd').textContent()));

      await page.selectOption('select[name="status"]', 'completed,failed');
      await waitFor('the status in the URL', () => new URL(page.url()).searchParams.get('status') === 'completed,failed');
      await waitFor('finished tasks from the archive', async () => /Finished tasks/.test(await page.locator('#tasks-source').textContent()) && (await rows(page).count()) > 0);
      assert.ok((await column(page, 2)).every((status) => status === 'completed' || status === 'failed'));

      await page.selectOption('select[name="family"]', 'text');
      await waitFor('the family in the URL', () => new URL(page.url()).searchParams.get('family') === 'text');
      await waitFor('text tasks only', async () => {
        const families = await column(page, 4);
        return families.length > 0 && families.every((family) => family === 'text');
      });
      await page.locator('#tasks-table button.sort[data-sort="processing_ms"]').click();
      await waitFor('the sort in the URL', () => new URL(page.url()).searchParams.get('sort') === 'processing_ms');
      assert.equal(new URL(page.url()).searchParams.get('order'), 'desc');
      await waitFor('the longest runs first', async () => {
        const ran = (await column(page, 10)).map(milliseconds);
        return ran.length > 1 && ran.every((ms, i) => i === 0 || ran[i - 1] >= ms);
      });

      const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#tasks-table').locator('xpath=ancestor::div[contains(@class,"data-table")]').locator('.csv').click()]);
      const csv = await readFile(await download.path(), 'utf8');
      const lines = csv.trim().split(/\r?\n/);
      assert.match(lines[0], /task_id/);
      assert.ok(lines.length > 1, csv);
      assert.ok(lines.slice(1).every((line) => line.includes(',text,')), 'only the filtered family');
      await waitFor('bars of the run-time distribution', async () => Number(await page.locator('.bar-chart').first().getAttribute('data-bars')) > 5);
      await waitFor('the percentiles of the runs', async () => /p95/.test(await page.locator('#distribution-note').textContent()));
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('shows a hostile error as text', async () => {
    const taskId = `hostile-${Date.now()}`;
    await ingest(system, [
      { type: 'task_queued', task_id: taskId, model: 'bert-base', family: 'text', priority: 1 },
      { type: 'task_failed', task_id: taskId, error: HOSTILE },
    ]);
    const { context, page, problems } = await open(`/tasks?status=failed&q=${taskId}`);
    try {
      const error = page.locator('#tasks-table .failure-error', { hasText: HOSTILE });
      await waitFor('the failure in the list', async () => (await error.count()) > 0);
      assert.equal(await error.first().textContent(), HOSTILE);
      assert.equal(await page.locator('main img').count(), 0);
      assert.equal(await page.evaluate(() => window.injected === true), false);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

describe('a task\'s page', () => {
  test('shows its whole life, and what it waits for and what waits for it', async () => {
    const first = `dep-a-${Date.now()}`;
    const second = `dep-b-${Date.now()}`;
    await ingest(system, [
      { type: 'task_queued', task_id: first, model: 'bert-base', family: 'text', priority: 5 },
      { type: 'task_queued', task_id: second, model: 'vit-large', family: 'vision', priority: 5, depends_on: [first] },
    ]);
    const { context, page, problems } = await open('/tasks');
    try {
      await waitFor('the task that waits, on the tasks page', async () => (await page.locator(`#tasks-blocked tbody tr[data-key="${second}"]`).count()) === 1);
      assert.match(await page.locator(`#tasks-blocked tbody tr[data-key="${second}"]`).textContent(), new RegExp(first));
      await page.goto(`${system.url}/tasks/${second}`);
      await waitFor('its status', async () => (await page.locator('#task-status').count()) === 1);
      await waitFor('what it waits for', async () => (await page.locator('#task-dependencies').textContent()).includes(`${first} (not finished)`));
      await page.locator(`#task-dependencies a[href="/tasks/${first}"]`).click();
      await waitFor('the dependency\'s page', () => new URL(page.url()).pathname === `/tasks/${first}`);
      await waitFor('what waits for it', async () => (await page.locator('#task-dependencies').textContent()).includes(`Waited for by ${second}`));

      await ingest(system, [
        { type: 'task_started', task_id: first, worker_id: 'cpu-000' },
        { type: 'task_completed', task_id: first, worker_id: 'cpu-000' },
      ]);
      await waitFor('its end', async () => (await page.locator('#task-status').textContent()) === 'completed');
      await waitFor('its life from the archive', async () => (await page.locator('#task-events tbody tr[data-key]').count()) === 3);
      const events = await page.locator('#task-events tbody tr[data-key] td:nth-child(3)').allTextContents();
      assert.deepEqual(events, ['queued', 'started', 'completed']);
      assert.equal(await page.locator('#task-runs tbody tr[data-key]').count(), 1);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
