// The overview page as a person sees it, in real headless Chromium against a real system
// (test/system.mjs): figures fill in and change live, the theme and the time range switch,
// a worker cell leads to its page, and hostile text from the fleet stays text.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ingest, launchBrowser, startSystem, waitFor, openPage } from './system.mjs';

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

async function openOverview() {
  return openPage(browser, `${system.url}/`);
}

const text = (page, selector) => page.locator(selector).first().textContent();

describe('the overview', () => {
  test('fills in the status line, the grid, the tables, the bars and the charts', async () => {
    const { context, page, problems } = await openOverview();
    try {
      await waitFor('the worker total', async () => (await text(page, '#workers-total')) === String(WORKERS));
      await waitFor('a health verdict', async () => ['healthy', 'degraded', 'critical'].includes(await text(page, '#health')));
      await waitFor('the WebSocket to be live', async () => (await text(page, '#connection')) === 'live');
      for (const id of ['#workers-active', '#tasks-running', '#tasks-queued-count', '#tasks-completed', '#tasks-failed', '#throughput']) {
        await waitFor(`${id} to hold a number`, async () => /^\d[\d,.]*$/.test(await text(page, id)));
      }
      await waitFor('a cell per worker', async () => (await page.locator('.worker-grid a.cell').count()) === WORKERS);
      await waitFor('task families listed', async () => (await page.locator('#tasks-by-family tbody tr[data-key]').count()) > 0);
      await waitFor('task models listed', async () => (await page.locator('#tasks-by-model tbody tr[data-key]').count()) > 0);
      await waitFor('CPU utilisation shown', async () => /^\d[\d.]*%$/.test(await text(page, '#util-cpu-text')));
      assert.equal(await page.locator('.trends .chart canvas').count(), 2, 'two uPlot charts');
      // Every figure says what it is.
      for (const selector of ['.status-line [title]', '#tasks-by-family th[title]', '.meter-row[title]', '.worker-grid a.cell[title]']) {
        assert.ok((await page.locator(selector).count()) > 0, `${selector} has tooltips`);
      }
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('updates a value without a reload', async () => {
    const { context, page, problems } = await openOverview();
    try {
      await page.evaluate(() => {
        window.sameDocument = true;
      });
      const first = await waitFor('the first update', async () => {
        const value = await text(page, '#updated-at');
        return value.startsWith('updated ') ? value : undefined;
      });
      await waitFor('a later update', async () => (await text(page, '#updated-at')) !== first);
      assert.equal(await page.evaluate(() => window.sameDocument), true, 'the page was not reloaded');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('switches theme and remembers it across a reload', async () => {
    const { context, page } = await openOverview();
    try {
      const theme = () => page.evaluate(() => document.documentElement.dataset.theme);
      const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(await theme(), 'dark', 'dark by default');
      const darkBackground = await background();
      await page.getByRole('button', { name: /switch to the light theme/i }).click();
      assert.equal(await theme(), 'light');
      assert.notEqual(await background(), darkBackground, 'the colours changed');
      await page.reload();
      await waitFor('the page after the reload', async () => (await page.locator('#theme-toggle').count()) === 1);
      assert.equal(await theme(), 'light', 'remembered');
      await page.getByRole('button', { name: /switch to the dark theme/i }).click();
      assert.equal(await theme(), 'dark');
    } finally {
      await context.close();
    }
  });

  test('the range picker changes the charts\' range', async () => {
    const { context, page } = await openOverview();
    try {
      const chart = page.locator('.trends figure.chart').first();
      const span = async () => {
        const start = Number(await chart.getAttribute('data-range-start'));
        const end = Number(await chart.getAttribute('data-range-end'));
        return end - start;
      };
      await waitFor('a 15-minute range', async () => Math.abs((await span()) - 15 * 60_000) < 5000);
      await page.getByRole('button', { name: '7 days' }).click();
      await waitFor('a 7-day range', async () => Math.abs((await span()) - 7 * 86_400_000) < 5000);
      assert.equal(await page.getByRole('button', { name: '7 days' }).getAttribute('aria-pressed'), 'true');
      assert.match(await text(page, '.trends .range-caption'), /^Last 7 days/);
      // The history endpoint answers, or the page says plainly that it cannot yet.
      await waitFor('word on the history', async () => /History/.test(await text(page, '.trends .history-note')));

      await page.getByRole('button', { name: 'custom' }).click();
      await page.fill('.trends .range-start', '2026-01-01T10:00');
      await page.fill('.trends .range-end', '2026-01-01T12:00');
      await page.getByRole('button', { name: 'Apply' }).click();
      await waitFor('a 2-hour custom range', async () => (await span()) === 2 * 3_600_000);
      assert.match(new URL(page.url()).search, /range=custom&from=\d+&to=\d+/, 'the range is in the URL');
    } finally {
      await context.close();
    }
  });

  test('a worker cell links to the worker\'s page', async () => {
    const { context, page, problems } = await openOverview();
    try {
      const cell = page.locator('.worker-grid a.cell').first();
      await waitFor('a worker cell', async () => (await cell.count()) === 1);
      const href = await cell.getAttribute('href');
      const workerId = decodeURIComponent(href.replace('/workers/', ''));
      assert.match(await cell.getAttribute('title'), new RegExp(`^${workerId}: `), 'the tooltip names the worker');
      await cell.click();
      await waitFor('the worker page URL', () => new URL(page.url()).pathname === href);
      assert.equal(await text(page, '#worker-id'), workerId);
      await waitFor('the worker figures', async () => /^(idle|busy|overloaded|disconnected)$/.test(await text(page, '#worker-status')));
      assert.equal(await page.locator('nav a[aria-current="page"]').textContent(), 'Workers', 'a worker is under Workers');
      await page.goBack();
      await waitFor('the overview again', async () => (await page.locator('.worker-grid').count()) === 1);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('shows a hostile task error as text and runs no script', async () => {
    const { context, page, problems } = await openOverview();
    try {
      const hostile = '<img src=x onerror=alert(1)>';
      const taskId = `hostile-${Date.now()}`;
      await ingest(system, [
        { type: 'task_queued', task_id: taskId, model: 'bert-base', family: 'text', priority: 1 },
        { type: 'task_failed', task_id: taskId, error: hostile },
      ]);
      const shown = page.locator('#failure-list .failure-error', { hasText: hostile });
      await waitFor('the failure in the list', async () => (await shown.count()) > 0);
      assert.equal(await shown.first().textContent(), hostile, 'the characters as sent');
      assert.equal(await page.locator('#failure-list img').count(), 0, 'no element was made from it');
      assert.equal(await page.evaluate(() => window.injected === true), false, 'no script ran');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

describe('the live connection', () => {
  test('shows that it is reconnecting while the gateway is away, then goes on live', async () => {
    const { context, page, problems } = await openOverview();
    try {
      const connection = () => text(page, '#connection');
      await waitFor('the WebSocket to be live', async () => (await connection()) === 'live');
      await system.restartGateway(() => waitFor('word of the lost connection', async () => (await connection()) === 'reconnecting…'));
      await waitFor('the WebSocket to be live again', async () => (await connection()) === 'live');
      const before = await text(page, '#updated-at');
      await waitFor('updates after the reconnection', async () => (await text(page, '#updated-at')) !== before);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

describe('navigation', () => {
  test('every page has its own URL and a link in the bar', async () => {
    const { context, page, problems } = await openOverview();
    try {
      const pages = ['/system', '/workers', '/tasks', '/task-types', '/performance', '/alerts', '/topology', '/fault-tolerance', '/'];
      for (const path of pages) {
        await page.locator(`nav a[href="${path}"]`).click();
        await waitFor(`${path} to show`, async () => new URL(page.url()).pathname === path);
        assert.equal(await page.locator(`nav a[href="${path}"]`).getAttribute('aria-current'), 'page');
        await waitFor(`${path} to show its page`, async () => (await page.locator('main h1, main .overview').count()) > 0);
      }
      // A page's URL loads that page directly, served by the gateway.
      await page.goto(`${system.url}/alerts`);
      await waitFor('the alerts page', async () => (await page.locator('main h1').first().textContent()) === 'Alerts');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
