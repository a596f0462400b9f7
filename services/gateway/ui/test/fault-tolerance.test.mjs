// The Fault tolerance page as a person sees it, in real headless Chromium against a real
// system (test/system.mjs, with the archiver). Failures and recovery actions of a model and
// an action no demo worker uses are posted through the collector's HTTP ingest, so their
// figures are known: the rates, the recovery figures, a hostile error text shown as text
// (live and over the range), the recovery actions newest first, sorting in the URL, the
// filters, the CSV, and no page error.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { ingest, launchBrowser, startSystem, waitFor, openPage as openShared } from './system.mjs';

const WORKERS = 12;
const HOSTILE = '<img src=x onerror=alert(1)>';
const STAMP = Date.now();
const MODEL = `ft-model-${STAMP}`;
const ACTION = `ft-probe-${STAMP}`;
let system;
let browser;
let worker;

before(async () => {
  system = await startSystem({ workers: WORKERS, tickMs: 200 });
  browser = await launchBrowser();
  worker = (await (await fetch(`${system.url}/api/workers?limit=1`)).json()).items[0].worker_id;
  const task = (n) => `ft-task-${STAMP}-${n}`;
  // One run of the model completes and two fail with the hostile text: 2 of 3 failed.
  await ingest(system, [
    { type: 'task_queued', task_id: task(1), model: MODEL, family: 'text', priority: 1 },
    { type: 'task_assigned', task_id: task(1), worker_id: worker, best_fit: true },
    { type: 'task_started', task_id: task(1), worker_id: worker },
    { type: 'task_completed', task_id: task(1), worker_id: worker },
    { type: 'task_queued', task_id: task(2), model: MODEL, family: 'text', priority: 1 },
    { type: 'task_failed', task_id: task(2), error: HOSTILE },
    { type: 'task_queued', task_id: task(3), model: MODEL, family: 'text', priority: 1 },
    { type: 'task_failed', task_id: task(3), error: HOSTILE },
  ]);
  // The action is taken three times and works twice; the last one's target is hostile text.
  await ingest(system, [
    { type: 'recovery_action', component: 'coordinator', action: ACTION, target: worker, succeeded: true, time: STAMP - 2000 },
    { type: 'recovery_action', component: 'coordinator', action: ACTION, target: worker, succeeded: true, time: STAMP - 1000 },
    { type: 'recovery_action', component: 'coordinator', action: ACTION, target: HOSTILE, succeeded: false, time: STAMP },
  ]);
});

after(async () => {
  await browser?.close();
  await system?.stop();
});

async function openPage(path = '/fault-tolerance') {
  return openShared(browser, `${system.url}${path}`);
}

const text = (page, selector) => page.locator(selector).first().textContent();
const cells = (row) => row.locator('td').allTextContents();

describe('the fault tolerance page', () => {
  test('shows the rates, the recovery figures and the errors, fleet text as text', async () => {
    const { context, page, problems } = await openPage();
    try {
      assert.equal(await text(page, 'main h1'), 'Fault tolerance');
      const model = page.locator(`#ft-by-model tbody tr[data-key="${MODEL}"]`);
      await waitFor('the model\'s failure rate', async () => (await model.count()) === 1);
      assert.deepEqual(await cells(model), [MODEL, '66.7%', '2', '3'], 'model, rate, failed, runs');
      await waitFor('rates by hardware', async () => (await page.locator('#ft-by-hardware tbody tr[data-key]').count()) > 0);
      await waitFor('rates by hardware and family', async () => (await page.locator('#ft-by-pair tbody tr[data-key]').count()) > 0);

      const action = page.locator(`#ft-actions tbody tr[data-key="${ACTION}"]`);
      await waitFor('the recovery action', async () => (await action.count()) === 1);
      assert.deepEqual(await cells(action), [ACTION, '3', '2', '66.7%'], 'action, taken, worked, success');
      for (const id of ['#ft-outages', '#ft-recoveries-count', '#ft-disconnected', '#ft-tasks-failed']) {
        await waitFor(`${id} to hold a count`, async () => /^\d[\d,]*$/.test(await text(page, id)));
      }
      await waitFor('the recovery success', async () => /^\d[\d.]*%$/.test(await text(page, '#ft-recovery-success')));
      await waitFor('the retry success', async () => /^(\d[\d.]*%|–)$/.test(await text(page, '#ft-retry-success')));
      assert.match(await text(page, '#ft-retry-text'), /retr/);
      await waitFor('the components', async () => (await page.locator('#ft-components li[data-component="coordinator"]').count()) === 1);

      // The hostile error, live: its characters as sent, no element made of it, no script run.
      const live = page.locator('#ft-top-errors tbody tr', { hasText: HOSTILE });
      await waitFor('the hostile error among the top errors', async () => (await live.count()) === 1);
      assert.deepEqual(await cells(live), [HOSTILE, '2']);
      // Over the range, from the archive.
      const archived = page.locator('#ft-range-errors tbody tr', { hasText: HOSTILE });
      await waitFor('the hostile error over the range', async () => (await archived.count()) === 1, 30_000);
      assert.equal((await cells(archived))[0], HOSTILE);
      assert.equal((await cells(archived))[1], '2');
      // The recovery actions, newest first: the three posted in reverse order, the hostile target as text.
      const ours = page.locator('#ft-recoveries tbody tr', { hasText: ACTION });
      await waitFor('the posted recovery actions', async () => (await ours.count()) === 3, 30_000);
      const listed = await Promise.all([0, 1, 2].map(async (i) => (await cells(ours.nth(i))).slice(1)));
      assert.deepEqual(listed, [
        ['coordinator', ACTION, HOSTILE, 'failed'],
        ['coordinator', ACTION, worker, 'worked'],
        ['coordinator', ACTION, worker, 'worked'],
      ]);
      const times = await page.locator('#ft-recoveries tbody tr td:first-child span').evaluateAll((spans) => spans.map((span) => Date.parse(span.title)));
      assert.ok(times.every((time, i) => i === 0 || time <= times[i - 1]), 'newest first');
      assert.match(await text(page, '.pager-label'), /^1–\d+ of \d+$/);

      assert.equal(await page.locator('main img').count(), 0, 'no element was made from fleet text');
      assert.equal(await page.evaluate(() => window.injected === true), false, 'no script ran');
      assert.equal(await page.locator('#ft-trends figure.chart').count(), 4, 'four trend charts');
      for (const selector of ['.ft-cards .card[title]', '#ft-by-model th[title]', '#ft-trends figcaption[title]']) {
        assert.ok((await page.locator(selector).count()) > 0, `${selector} has tooltips`);
      }
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('sorting a table by a column reorders its rows and puts the sort in the URL', async () => {
    const { context, page, problems } = await openPage();
    try {
      const rows = page.locator('#ft-by-model tbody tr[data-key]');
      await waitFor('models listed', async () => (await rows.count()) >= 3);
      const column = (index) => rows.evaluateAll((list, i) => list.map((row) => Number(row.children[i].textContent.replace(/[,%]/g, ''))), index);
      const sorted = (values, direction) => values.every((value, i) => i === 0 || direction * (value - values[i - 1]) >= 0);
      assert.ok(sorted(await column(1), -1), 'by failure rate, highest first, at first');

      await page.locator('#ft-by-model button.sort[data-sort="runs"]').click();
      await waitFor('by runs, most first', async () => sorted(await column(3), -1));
      assert.equal(new URL(page.url()).searchParams.get('model_sort'), 'runs.desc');
      assert.equal(await page.locator('#ft-by-model th[aria-sort="descending"] button').getAttribute('data-sort'), 'runs');
      await page.locator('#ft-by-model button.sort[data-sort="runs"]').click();
      await waitFor('by runs, fewest first', async () => sorted(await column(3), 1));
      assert.equal(new URL(page.url()).searchParams.get('model_sort'), 'runs.asc');
      await page.reload();
      await waitFor('the sort kept over a reload', async () => (await rows.count()) >= 3 && sorted(await column(3), 1));
      assert.equal(await page.locator('#ft-by-model th[aria-sort="ascending"] button').getAttribute('data-sort'), 'runs');
      // The other tables keep their own sort.
      assert.equal(await page.locator('#ft-by-hardware th[aria-sort="descending"] button').getAttribute('data-sort'), 'rate');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('the filters are in the URL and narrow the rows', async () => {
    const { context, page, problems } = await openPage();
    try {
      const rows = page.locator('#ft-by-model tbody tr[data-key]');
      await waitFor('models listed', async () => (await rows.count()) >= 2);
      await page.fill('#ft-search', 'ft-model');
      await waitFor('only the posted model', async () => (await rows.evaluateAll((list) => list.map((row) => row.dataset.key))).join() === MODEL);
      assert.equal(new URL(page.url()).searchParams.get('q'), 'ft-model');
      assert.equal(await page.locator(`#ft-actions tbody tr[data-key]`).count(), 0, 'no action matches the text');
      await page.selectOption('#ft-min-runs', '10');
      await waitFor('too few runs to show', async () => (await rows.count()) === 0);
      assert.equal(new URL(page.url()).searchParams.get('min_runs'), '10');
      await page.reload();
      await waitFor('the filters kept over a reload', async () => (await page.inputValue('#ft-search')) === 'ft-model' && (await page.inputValue('#ft-min-runs')) === '10');

      // The range's failures by model instead of by error text.
      await page.goto(`${system.url}/fault-tolerance`);
      await page.selectOption('#ft-pattern', 'model');
      assert.equal(new URL(page.url()).searchParams.get('pattern'), 'model');
      await waitFor('the model among the range\'s failures', async () => (await page.locator(`#ft-range-errors tbody tr[data-key="${MODEL}"]`).count()) === 1, 30_000);
      assert.deepEqual((await cells(page.locator(`#ft-range-errors tbody tr[data-key="${MODEL}"]`))).slice(0, 4), [MODEL, '2', '1', '66.7%']);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('the errors CSV downloads, live and over the range', async () => {
    const { context, page, problems } = await openPage();
    try {
      await waitFor('the hostile error among the top errors', async () => (await page.locator('#ft-top-errors tbody tr', { hasText: HOSTILE }).count()) === 1);
      const csvButton = (table) => page.locator('.data-table', { has: page.locator(table) }).getByRole('button', { name: 'CSV' });
      const [live] = await Promise.all([page.waitForEvent('download'), csvButton('#ft-top-errors').click()]);
      assert.equal(live.suggestedFilename(), 'top-errors.csv');
      const liveCsv = await readFile(await live.path(), 'utf8');
      assert.equal(liveCsv.split('\r\n')[0], 'error,count');
      assert.ok(liveCsv.includes(`${HOSTILE},2\r\n`), 'the error as sent, with its count');

      await waitFor('the hostile error over the range', async () => (await page.locator('#ft-range-errors tbody tr', { hasText: HOSTILE }).count()) === 1, 30_000);
      const [ranged] = await Promise.all([page.waitForEvent('download'), csvButton('#ft-range-errors').click()]);
      const rangedCsv = await readFile(await ranged.path(), 'utf8');
      assert.match(rangedCsv.split(/\r?\n/)[0], /key/, 'the archive\'s header');
      assert.ok(rangedCsv.includes(HOSTILE), 'every row of the range, from the archive');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
