// The topology page as a person sees it, in real headless Chromium against a real system
// (test/system.mjs): the map is drawn (cytoscape's canvas) with a row per group in the table,
// a group opens from the map and stays open in the URL across a reload, a worker on the map
// leads to its page, the tables export CSV, figures change live, filters and sorting live
// in the URL, the theme switch redraws the map, and hostile text from the fleet stays text.
// The gateway is told to draw at most 3 workers of a group, so a "+N more" node shows.

import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ingest, launchBrowser, startSystem, waitFor, openPage } from './system.mjs';

const WORKERS = 20;
const SHOWN = 3;
const configFile = join(tmpdir(), `fleetwatch-topology-test-${process.pid}.toml`);
let system;
let browser;

before(async () => {
  writeFileSync(configFile, `[gateway]\nmax_workers_shown = ${SHOWN}\n`);
  system = await startSystem({ workers: WORKERS, tickMs: 200, gatewayArgs: ['--config', configFile] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await system?.stop();
  rmSync(configFile, { force: true });
});

const api = async (path) => (await fetch(`${system.url}${path}`)).json();
const allGroups = (topology) => topology.kinds.flatMap((kind) => kind.groups.map((group) => ({ ...group, hardware: kind.hardware })));

async function open(path = '/topology') {
  const opened = await openPage(browser, `${system.url}${path}`);
  const { page } = opened;
  await waitFor('the map\'s canvas', async () => (await page.locator('#topology-graph canvas').count()) > 0);
  return opened;
}

/** Where a map node (by cytoscape id) is on the screen, once drawn. */
async function nodeOnScreen(page, id) {
  return waitFor(`${id} on the map`, () =>
    page.evaluate((nodeId) => {
      const holder = document.querySelector('#topology-graph');
      const cy = holder?._cyreg?.cy;
      const node = cy?.getElementById(nodeId);
      if (!node || node.empty()) return null;
      const box = holder.getBoundingClientRect();
      const at = node.renderedPosition();
      if (at.x < 0 || at.y < 0 || at.x > box.width || at.y > box.height) return null;
      return { x: box.left + at.x, y: box.top + at.y };
    }, id),
  );
}

/** The ids of the groups opened, as the URL says. */
function openedInUrl(page) {
  const value = new URL(page.url()).searchParams.get('open') ?? '';
  return value ? value.split(',').map((part) => part.replace(/%2C/gi, ',').replace(/%25/g, '%')) : [];
}

const tableKeys = (page, id) => page.locator(`#${id} tbody tr[data-key]`).evaluateAll((rows) => rows.map((row) => row.dataset.key));

/** The largest group (the one with more workers than the map draws, if any). */
async function largestGroup() {
  return waitFor('a group of more than one worker', async () => {
    const groups = allGroups(await api('/api/topology')).sort((a, b) => b.workers - a.workers);
    return groups[0]?.workers > 1 ? groups[0] : undefined;
  });
}

describe('the topology page', () => {
  test('draws the map and lists every group of /api/topology', async () => {
    const { context, page, problems } = await open();
    try {
      assert.equal(await page.locator('main h1').textContent(), 'Topology');
      await waitFor('a row per group', async () => {
        const expected = allGroups(await api('/api/topology')).map((group) => group.id).sort();
        const shown = (await tableKeys(page, 'topology-groups')).sort();
        return expected.length > 0 && JSON.stringify(shown) === JSON.stringify(expected);
      });
      await waitFor('the worker count', async () => (await page.locator('#topology-figure-workers').textContent()) === String(WORKERS));
      const topology = await api('/api/topology');
      const groupNodes = await page.evaluate(() => document.querySelector('#topology-graph')._cyreg.cy.nodes('.group').map((node) => node.data('groupId')).sort());
      assert.deepEqual(groupNodes, allGroups(topology).map((group) => group.id).sort(), 'a node per group on the map');
      const kinds = await page.evaluate(() => document.querySelector('#topology-graph')._cyreg.cy.nodes('.kind').length);
      assert.equal(kinds, topology.kinds.length, 'a box per hardware kind');
      await waitFor('where families run', async () => (await page.locator('#topology-placements tbody tr[data-key]').count()) > 0);
      await waitFor('the edges family → hardware', () => page.evaluate(() => document.querySelector('#topology-graph')._cyreg.cy.edges().length > 0));
      await waitFor('the capability distribution', async () => (await page.locator('#topology-cap-cpu-cores tbody tr[data-key]').count()) > 0);
      const cores = await page.locator('#topology-cap-cpu-cores tbody tr[data-key] td:nth-child(2)').allTextContents();
      assert.equal(cores.reduce((sum, value) => sum + Number(value.replaceAll(',', '')), 0), WORKERS, 'every worker counted once by cores');
      // A row's figures match the API (the sizes do not change in a steady demo fleet).
      const first = allGroups(topology)[0];
      const row = page.locator(`#topology-groups tbody tr[data-key="${first.id}"]`);
      assert.equal(await row.locator('td').nth(2).textContent(), String(first.workers));
      // Every figure says what it is.
      for (const selector of ['#topology-groups th[title]', '#topology-cards .card[title]', '#topology-map-title[title]', '.topology-legend li[title]']) {
        assert.ok((await page.locator(selector).count()) > 0, `${selector} has tooltips`);
      }
      // Hovering a group on the map shows its figures.
      const at = await nodeOnScreen(page, `g:${first.id}`);
      await page.mouse.move(at.x, at.y);
      await waitFor('the tooltip', async () => (await page.locator('.topology-tip:not([hidden])').count()) === 1);
      assert.match(await page.locator('.topology-tip').textContent(), new RegExp(`^Group ${first.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\d+ worker`));
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('opens a group from the map into its workers, keeps it in the URL and across a reload', async () => {
    const { context, page, problems } = await open();
    try {
      const group = await largestGroup();
      const at = await nodeOnScreen(page, `g:${group.id}`);
      await page.mouse.click(at.x, at.y);
      await waitFor('the group in the URL', () => openedInUrl(page).includes(group.id));
      const drawn = Math.min(SHOWN, group.workers);
      const workerNodes = () => page.evaluate((id) => document.querySelector('#topology-graph')._cyreg.cy.getElementById(`g:${id}`).children('.worker').length, group.id);
      await waitFor('its workers on the map', async () => (await workerNodes()) === drawn);
      await waitFor('its workers in the table', async () => (await page.locator('#topology-workers tbody tr[data-key]').count()) === drawn);
      if (group.workers > SHOWN) {
        const more = await page.evaluate((id) => document.querySelector('#topology-graph')._cyreg.cy.getElementById(`m:${id}`).data('label'), group.id);
        assert.match(more, /^\+\d+ more$/, 'a "+N more" node');
        assert.match(await page.locator('#topology-more').textContent(), /more not shown/);
      }
      assert.equal(await page.locator(`#topology-groups button[data-group="${group.id}"]`).getAttribute('aria-pressed'), 'true');

      await page.reload();
      await waitFor('the map after the reload', async () => (await page.locator('#topology-graph canvas').count()) > 0);
      await waitFor('its workers on the map again', async () => (await workerNodes()) === drawn);
      assert.deepEqual(openedInUrl(page), [group.id]);

      // A second group opens from its table button; both are in the URL; closing takes it out.
      const other = allGroups(await api('/api/topology')).find((candidate) => candidate.id !== group.id);
      await page.locator(`#topology-groups button[data-group="${other.id}"]`).click();
      await waitFor('both groups in the URL', () => openedInUrl(page).length === 2 && openedInUrl(page).includes(other.id));
      await waitFor('the second group\'s workers', () =>
        page.evaluate((id) => document.querySelector('#topology-graph')._cyreg.cy.getElementById(`g:${id}`).children().length > 0, other.id),
      );
      await page.locator(`#topology-groups button[data-group="${other.id}"]`).click();
      await waitFor('only the first group in the URL', () => JSON.stringify(openedInUrl(page)) === JSON.stringify([group.id]));
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('a worker on the map leads to its page, "+N more" to the Workers page', async () => {
    const group = await largestGroup();
    const { context, page, problems } = await open(`/topology?open=${encodeURIComponent(group.id)}`);
    try {
      const workerId = await waitFor('a worker node', () =>
        page.evaluate((id) => document.querySelector('#topology-graph')._cyreg.cy.getElementById(`g:${id}`).children('.worker').first().data('workerId'), group.id),
      );
      const at = await nodeOnScreen(page, `w:${workerId}`);
      await page.mouse.click(at.x, at.y);
      await waitFor('the worker page URL', () => new URL(page.url()).pathname === `/workers/${encodeURIComponent(workerId)}`);
      await waitFor('the worker page', async () => (await page.locator('#worker-id').count()) === 1);
      assert.equal(await page.locator('#worker-id').textContent(), workerId);
      await page.goBack();
      await waitFor('the topology again', async () => (await page.locator('#topology-graph canvas').count()) > 0);
      if (group.workers > SHOWN) {
        const more = await nodeOnScreen(page, `m:${group.id}`);
        await page.mouse.click(more.x, more.y);
        await waitFor('the Workers page', () => new URL(page.url()).pathname === '/workers');
        assert.equal(new URL(page.url()).searchParams.get('hardware'), group.hardware, 'filtered to the group\'s kind');
      }
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('the groups table sorts in the URL, filters in the URL, and downloads as CSV', async () => {
    const { context, page, problems } = await open();
    try {
      await waitFor('the groups', async () => (await tableKeys(page, 'topology-groups')).length > 1);
      await page.locator('#topology-groups button.sort[data-sort="cpu_pct"]').click();
      await waitFor('the sort in the URL', () => /sort=cpu_pct&order=desc/.test(new URL(page.url()).search));
      const cpuColumn = async () => (await page.locator('#topology-groups tbody tr td:nth-child(12)').allTextContents()).map((text) => Number.parseFloat(text));
      await waitFor('rows by CPU, highest first', async () => {
        const values = await cpuColumn();
        return values.every((value, index) => index === 0 || value <= values[index - 1] + 0.05);
      });

      const download = page.waitForEvent('download');
      await page.locator('#topology-groups').locator('xpath=ancestor::div[contains(@class,"data-table")]').locator('button.csv').click();
      const file = await download;
      assert.equal(file.suggestedFilename(), 'topology-groups.csv');
      const lines = readFileSync(await file.path(), 'utf8').trim().split(/\r\n/);
      assert.equal(lines[0], 'hardware,group,workers,idle,busy,overloaded,disconnected,slots,running,queued,use,cpu_pct');
      assert.equal(lines.length - 1, (await tableKeys(page, 'topology-groups')).length, 'a line per row');

      const kind = (await api('/api/topology')).kinds.find((candidate) => candidate.groups.length > 0).hardware;
      await page.selectOption('#topology-kind', kind);
      await waitFor('the kind in the URL', () => new URL(page.url()).searchParams.get('kind') === kind);
      await waitFor('only that kind\'s groups', async () => {
        const keys = await tableKeys(page, 'topology-groups');
        return keys.length > 0 && keys.every((key) => key.startsWith(`${kind}/`));
      });
      await page.reload();
      await waitFor('the filter kept', async () => (await page.locator('#topology-kind').inputValue()) === kind);
      await waitFor('only that kind\'s groups again', async () => {
        const keys = await tableKeys(page, 'topology-groups');
        return keys.length > 0 && keys.every((key) => key.startsWith(`${kind}/`));
      });
      assert.ok(/sort=cpu_pct/.test(new URL(page.url()).search), 'the sort kept too');
      assert.equal(await page.locator('#topology-groups th[aria-sort="descending"] button').getAttribute('data-sort'), 'cpu_pct');
      const kinds = await page.evaluate(() => document.querySelector('#topology-graph')._cyreg.cy.nodes('.kind').map((node) => node.id()));
      assert.deepEqual(kinds, [`k:${kind}`], 'the map shows that kind only');
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
      const first = await waitFor('the first figures', async () => {
        const value = await page.locator('#topology-updated').textContent();
        return value.startsWith('as of ') ? value : undefined;
      });
      await waitFor('later figures', async () => (await page.locator('#topology-updated').textContent()) !== first);
      assert.equal(await page.evaluate(() => window.sameDocument), true, 'the page was not reloaded');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('the theme switch redraws the map in the new colours', async () => {
    const { context, page, problems } = await open();
    try {
      const graph = page.locator('#topology-graph');
      await waitFor('groups on the map', async () => Number(await graph.getAttribute('data-nodes')) > 0);
      assert.equal(await graph.getAttribute('data-theme'), 'dark');
      const groupColour = () => page.evaluate(() => document.querySelector('#topology-graph')._cyreg.cy.nodes('.group').first().style('background-color'));
      const dark = await groupColour();
      const darkShot = await graph.screenshot();
      await page.locator('#theme-toggle').click();
      await waitFor('the map redrawn light', async () => (await graph.getAttribute('data-theme')) === 'light');
      assert.notEqual(await groupColour(), dark, 'the nodes took the light theme\'s colours');
      await waitFor('a different picture', async () => !(await graph.screenshot()).equals(darkShot));
      await page.locator('#theme-toggle').click();
      await waitFor('the map redrawn dark', async () => (await graph.getAttribute('data-theme')) === 'dark');
      assert.equal(await groupColour(), dark);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('shows hostile tags from the fleet as text and runs no script', async () => {
    const hostile = '<img src=x onerror=alert(1)>';
    const capabilities = (tags) => ({ hardware: 'other', cpu_cores: 4, memory_gb: 8, slots: 1, tags });
    const stamp = Date.now();
    await ingest(system, [
      { type: 'worker_registered', worker_id: `plain-${stamp}`, capabilities: capabilities(['lab']) },
      { type: 'worker_registered', worker_id: `hostile-${stamp}`, capabilities: capabilities(['lab', hostile]) },
    ]);
    const { context, page, problems } = await open();
    try {
      const id = `other/${hostile}`;
      await waitFor('the hostile group listed', async () => (await tableKeys(page, 'topology-groups')).includes(id));
      const row = page.locator('#topology-groups tbody tr').filter({ has: page.locator(`button[data-group="${id}"]`) });
      assert.equal(await row.locator('td').nth(1).textContent(), hostile, 'the characters as sent');
      await row.locator('button.topology-toggle').click();
      await waitFor('its worker listed', async () => (await tableKeys(page, 'topology-workers')).includes(`hostile-${stamp}`));
      assert.equal(await page.locator('main img').count(), 0, 'no element was made from it');
      assert.equal(await page.evaluate(() => window.injected === true), false, 'no script ran');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
