// The alerts page as a person sees it, in real headless Chromium against a real system with
// the alerter (test/system.mjs). Alerts are posted (POST /api/alerts fires at once), so they
// appear quickly and always the same way: the counts and the open list show them, one
// posted later appears without a reload, acknowledging, resolving and silencing from the
// page do what they say (and the API agrees), the history filters in the URL and exports
// CSV, a refusal shows the server's answer, and hostile text stays text.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, startSystem, waitFor, openPage } from './system.mjs';

const HOSTILE = '<img src=x onerror=alert(1)>';
let system;
let browser;
let serial = 0;

before(async () => {
  system = await startSystem({ workers: 16, tickMs: 200, alerter: true });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await system?.stop();
});

async function api(path, init) {
  const response = await fetch(`${system.url}${path}`, init);
  const body = await response.json();
  return { status: response.status, body };
}

/** Posts an alert (it fires at once); resolves to the open alert once the gateway lists it. */
async function postAlert({ level = 'warning', title, message = 'posted by the test', source = 'uitest', metrics = {} }) {
  const posted = await api('/api/alerts', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ level, title, message, source, metrics }),
  });
  assert.equal(posted.status, 202, JSON.stringify(posted.body));
  return waitFor(`the alert "${title}" to be open`, async () => {
    const { body } = await api('/api/alerts?limit=1');
    return body.firing.find((alert) => alert.labels?.title === title && alert.labels?.source === source);
  });
}

const unique = (what) => `${what} ${Date.now()}-${++serial}`;

async function openAlerts(query = '') {
  const opened = await openPage(browser, `${system.url}/alerts${query}`);
  const { page } = opened;
  await waitFor('the alerts page', async () => (await textOf(page.locator('main h1').first())) === 'Alerts');
  return opened;
}

/** A locator's text now, without waiting for it to exist (empty when it does not). */
const textOf = async (locator) => (await locator.allTextContents()).join('');
const row = (page, alert) => page.locator(`#open-alerts tbody tr[data-key="${alert.alert_id}"]`);
const number = async (page, selector) => Number((await textOf(page.locator(selector))).replaceAll(',', ''));

/** Chooses an open alert in the list and waits for it beside the list. */
async function choose(page, alert) {
  await waitFor('the alert in the open list', async () => (await row(page, alert).count()) === 1);
  await row(page, alert).locator('.alert-pick').click();
  await waitFor('the alert shown', async () => (await page.locator('#alert-detail').getAttribute('data-alert')) === alert.alert_id);
}

describe('the alerts page', () => {
  test('shows the counts, the timeline, the distribution and the open alerts; hostile text stays text', async () => {
    const hostile = await postAlert({ level: 'critical', title: `Disk ${HOSTILE} ${Date.now()}`, message: HOSTILE, source: 'uitest', metrics: { disk_pct: 97.5 } });
    const info = await postAlert({ level: 'info', title: unique('Deploy done') });
    const { context, page, problems } = await openAlerts();
    try {
      await waitFor('the hostile alert listed', async () => (await row(page, hostile).count()) === 1);
      await waitFor('the info alert listed', async () => (await row(page, info).count()) === 1);
      // The counts are those of the open alerts.
      const { body } = await api('/api/alerts?limit=1');
      const firing = (severity) => body.firing.filter((alert) => alert.severity === severity && alert.state === 'firing').length;
      await waitFor('a critical count', async () => (await number(page, '#count-critical')) >= 1);
      assert.ok((await number(page, '#count-critical')) >= firing('critical') - 1, 'critical count near the API');
      assert.ok((await number(page, '#count-info')) >= 1);
      for (const card of ['critical', 'warning', 'info', 'pending', 'acknowledged', 'silenced']) {
        assert.ok(await page.locator(`.alert-counts .count-${card}`).getAttribute('title'), `${card} has a tooltip`);
      }
      // The row says what, where, since when.
      const shown = row(page, hostile);
      assert.equal(await shown.locator('.severity').textContent(), 'critical');
      assert.equal(await shown.locator('.alert-pick').textContent(), hostile.summary, 'the summary exactly as sent');
      assert.equal(await shown.locator('.alert-target').textContent(), hostile.target);
      assert.match(await shown.locator('.since').textContent(), /ago|just now/);
      // The timeline and the distribution from the statistics.
      await waitFor('the timeline to count the fired alerts', async () => Number(await page.locator('#alerts-timeline').getAttribute('data-fired')) >= 2);
      assert.equal(await page.locator('#alerts-timeline .chart canvas').count(), 1, 'a uPlot chart');
      assert.ok(await page.locator('#alerts-timeline figcaption').getAttribute('title'), 'the chart has a tooltip');
      await waitFor('custom in the rule table', async () => (await page.locator('#alerts-by-rule tbody tr[data-key="custom"]').count()) === 1);
      await waitFor('the source in the source table', async () => (await page.locator('#alerts-by-source tbody tr[data-key="uitest"]').count()) === 1);
      // Hostile text is text everywhere it shows: the list, the detail, the history.
      await choose(page, hostile);
      assert.equal(await page.locator('#detail-summary .summary-text').textContent(), hostile.summary);
      assert.match(await page.locator('#detail-labels').textContent(), /onerror=alert\(1\)/);
      assert.match(await page.locator('#detail-metrics').textContent(), /disk_pct\s*97\.5/);
      await waitFor('the hostile alert in the history', async () => (await page.locator('#alert-history .history-pick', { hasText: HOSTILE }).count()) > 0);
      assert.equal(await page.locator('main img').count(), 0, 'no element was made from fleet text');
      assert.equal(await page.evaluate(() => window.injected === true), false, 'no script ran');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('an alert posted after the page opened appears without a reload', async () => {
    const { context, page, problems } = await openAlerts();
    try {
      await waitFor('the counts', async () => /^\d/.test(await textOf(page.locator('#count-warning'))));
      await page.evaluate(() => {
        window.sameDocument = true;
      });
      const before = await number(page, '#count-warning');
      const alert = await postAlert({ level: 'warning', title: unique('Late arrival') });
      await waitFor('the new alert in the open list', async () => (await row(page, alert).count()) === 1);
      await waitFor('the warning count to go up', async () => (await number(page, '#count-warning')) > before);
      assert.equal(await page.evaluate(() => window.sameDocument), true, 'the page was not reloaded');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('acknowledging from the page shows who acknowledged it, and the API agrees', async () => {
    const alert = await postAlert({ level: 'warning', title: unique('Needs a look') });
    const { context, page, problems } = await openAlerts();
    try {
      await choose(page, alert);
      const who = `ana-${serial}`;
      await page.fill('#action-who', who);
      await page.fill('#action-comment', 'on it');
      await page.click('#action-ack');
      await waitFor('the acknowledgement on the page', async () => (await textOf(page.locator('#detail-acknowledged'))).startsWith(who));
      await waitFor('the acknowledgement in the list', async () => (await textOf(row(page, alert).locator('.acknowledged'))) === who);
      const { status, body } = await api(`/api/alerts/${encodeURIComponent(alert.alert_id)}`);
      assert.equal(status, 200);
      assert.equal(body.acknowledged?.by, who);
      assert.equal(body.acknowledged?.comment, 'on it');
      // "Who" is remembered in this browser.
      await page.reload();
      await waitFor('the page again', async () => (await page.locator('#action-who').count()) === 1);
      assert.equal(await page.inputValue('#action-who'), who);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('resolving from the page removes it from the open list; it appears in the history', async () => {
    const alert = await postAlert({ level: 'critical', title: unique('Resolve me') });
    const { context, page, problems } = await openAlerts();
    try {
      await choose(page, alert);
      await page.fill('#action-who', 'bo');
      await page.click('#action-resolve');
      await waitFor('the alert gone from the open list', async () => (await row(page, alert).count()) === 0);
      await waitFor('the detail to say resolved', async () => (await textOf(page.locator('#detail-state'))) === 'resolved');
      assert.equal(await page.locator('#detail-resolved-by').textContent().then((text) => text.startsWith('bo')), true);
      assert.equal(await page.locator('#action-resolve').isDisabled(), true, 'a resolved alert cannot be resolved again');
      await page.selectOption('#history-state', 'resolved');
      await waitFor('state=resolved in the URL', () => new URL(page.url()).searchParams.get('state') === 'resolved');
      const resolvedRow = page.locator('#alert-history tbody tr', { hasText: alert.labels.title });
      await waitFor('the resolution in the history', async () => (await resolvedRow.count()) === 1);
      assert.equal(await resolvedRow.locator('.state-resolved').textContent(), 'resolved');
      assert.match(await resolvedRow.textContent(), /bo/);
      const { body } = await api('/api/alerts?limit=1');
      assert.equal(body.firing.some((open) => open.alert_id === alert.alert_id), false, 'the API has it closed too');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('a silence made from the page is listed, silences the alert, and can be ended', async () => {
    const alert = await postAlert({ level: 'warning', title: unique('Noisy') });
    const { context, page, problems } = await openAlerts();
    try {
      await choose(page, alert);
      await page.fill('#action-who', 'cy');
      await page.selectOption('#silence-duration', '900');
      await page.click('#action-silence');
      await waitFor('word of the silence', async () => /^Silence \S+ made by cy/.test(await textOf(page.locator('#action-status'))));
      const silenceId = (await page.locator('#action-status').textContent()).split(' ')[1];
      const listed = page.locator(`#silences tbody tr[data-key="${silenceId}"]`);
      await waitFor('the silence listed', async () => (await listed.count()) === 1);
      assert.match(await listed.textContent(), new RegExp(`target = ${alert.target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.match(await listed.textContent(), /cy/);
      await waitFor('the alert marked silenced', async () => (await row(page, alert).locator('.silenced').count()) === 1);
      const { body } = await api('/api/silences');
      const made = body.silences.find((silence) => silence.silence_id === silenceId);
      assert.deepEqual(made.matchers, [
        { name: 'rule', op: '=', value: 'custom' },
        { name: 'target', op: '=', value: alert.target },
      ]);
      assert.ok(Math.abs(made.ends_at - made.starts_at - 900_000) < 1000, 'for the 15 minutes chosen');
      // The "who" given above is remembered for ending it.
      assert.equal(await page.inputValue('#silence-who'), 'cy');
      await listed.locator('.silence-end').click();
      await waitFor('the silence ended', async () => (await listed.count()) === 0 || /ended by cy/.test(await textOf(listed)));
      await waitFor('the alert no longer silenced', async () => (await row(page, alert).locator('.silenced').count()) === 0);
      const afterwards = (await api('/api/silences')).body.silences.find((silence) => silence.silence_id === silenceId);
      assert.ok(!afterwards || afterwards.deleted, 'the API has it ended');
      // Ending it again is refused: the server's reason shows as text.
      if (afterwards) {
        assert.equal(await listed.locator('.silence-end').count(), 0, 'no End button on an ended silence');
      }
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('filters change the URL and the rows, and survive a reload', async () => {
    const critical = await postAlert({ level: 'critical', title: unique('Filter critical') });
    const info = await postAlert({ level: 'info', title: unique('Filter info') });
    const { context, page, problems } = await openAlerts();
    try {
      const historyRow = (alert) => page.locator('#alert-history tbody tr', { hasText: alert.labels.title });
      await waitFor('both in the history', async () => (await historyRow(critical).count()) > 0 && (await historyRow(info).count()) > 0);
      await page.selectOption('#history-severity', 'critical');
      await waitFor('severity=critical in the URL', () => new URL(page.url()).searchParams.get('severity') === 'critical');
      await waitFor('the info alert filtered out', async () => (await historyRow(info).count()) === 0);
      assert.ok((await historyRow(critical).count()) > 0, 'the critical one stays');
      const severities = await page.locator('#alert-history tbody .severity').allTextContents();
      assert.ok(severities.length > 0 && severities.every((severity) => severity === 'critical'), severities.join());
      // The open list's own filter.
      await page.fill('#open-search', info.labels.title);
      await waitFor('q in the URL', () => new URL(page.url()).searchParams.get('q') === info.labels.title);
      await waitFor('only the info alert open', async () => (await page.locator('#open-alerts tbody tr[data-key]').count()) === 1 && (await row(page, info).count()) === 1);
      // Sorting is in the URL too.
      await page.locator('#open-alerts th button.sort[data-sort="started_at"]').click();
      await waitFor('sort in the URL', () => new URL(page.url()).searchParams.get('sort') === 'started_at');
      // A range choice is in the URL, and reaches the timeline.
      await page.locator('#alerts-timeline button[data-range="24h"]').click();
      await waitFor('range=24h in the URL', () => new URL(page.url()).searchParams.get('range') === '24h');
      const figure = page.locator('#alerts-timeline figure.chart');
      await waitFor('a 24-hour timeline', async () => Number(await figure.getAttribute('data-range-end')) - Number(await figure.getAttribute('data-range-start')) > 23 * 3_600_000);
      // A shared link shows the same view.
      await page.reload();
      await waitFor('the filters again', async () => (await page.inputValue('#history-severity')) === 'critical');
      assert.equal(await page.inputValue('#open-search'), info.labels.title);
      assert.equal(await page.getAttribute('#alerts-timeline button[data-range="24h"]', 'aria-pressed'), 'true');
      await waitFor('the filtered history again', async () => (await historyRow(critical).count()) > 0 && (await historyRow(info).count()) === 0);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('the history CSV downloads the whole filtered history; the open list\'s CSV its rows', async () => {
    const alert = await postAlert({ level: 'critical', title: unique('Export me') });
    const { context, page, problems } = await openAlerts('?severity=critical');
    try {
      await waitFor('the alert in the history', async () => (await page.locator('#alert-history tbody tr', { hasText: alert.labels.title }).count()) > 0);
      const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#alert-history-panel button.csv').click()]);
      assert.equal(download.suggestedFilename(), 'alerts.csv');
      const csv = await readFile(await download.path(), 'utf8');
      const lines = csv.trim().split('\n');
      assert.match(lines[0], /^seq,time,alert_id,rule,severity,state,target,summary/);
      assert.ok(lines.some((line) => line.includes(alert.alert_id)), 'the alert is in it');
      assert.ok(lines.slice(1).every((line) => line.split(',')[4] === 'critical'), 'only the severity filtered');

      await waitFor('the open alert listed', async () => (await row(page, alert).count()) === 1);
      const [openDownload] = await Promise.all([page.waitForEvent('download'), page.locator('.open-alerts button.csv').click()]);
      assert.equal(openDownload.suggestedFilename(), 'open-alerts.csv');
      const openCsv = await readFile(await openDownload.path(), 'utf8');
      assert.match(openCsv, /^severity,summary,target,rule,state,started_at,acknowledged,silenced/);
      assert.ok(openCsv.includes(alert.labels.title));
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('an alert that is not open shows the server\'s answer as text', async () => {
    const { context, page, problems } = await openAlerts('?alert=custom-nowhere-123');
    try {
      await waitFor('the server\'s answer', async () => /404/.test(await textOf(page.locator('#detail-error'))));
      assert.match(await page.locator('#detail-error').textContent(), /custom-nowhere-123/);
      // An alert resolved elsewhere while it is shown (the page paused, so it has not redrawn):
      // acknowledging it is refused, and the page shows the server's reason.
      const alert = await postAlert({ level: 'warning', title: unique('Resolved elsewhere') });
      await page.goto(`${system.url}/alerts?alert=${encodeURIComponent(alert.alert_id)}`);
      await waitFor('the alert shown', async () => (await page.locator('#alert-detail').getAttribute('data-open')) === 'true');
      await page.selectOption('#refresh-rate', 'paused');
      const resolved = await api(`/api/alerts/${encodeURIComponent(alert.alert_id)}/resolve`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ by: 'elsewhere' }),
      });
      assert.equal(resolved.status, 202);
      await waitFor('the gateway to close it', async () => !(await api('/api/alerts?limit=1')).body.firing.some((open) => open.alert_id === alert.alert_id));
      await page.fill('#action-who', 'late');
      await page.click('#action-ack');
      await waitFor('the refusal', async () => /404/.test(await textOf(page.locator('#action-error'))));
      assert.match(await page.locator('#action-error').textContent(), /resolved, or unknown/);
      // Live again: the page sees it closed, resolved by the other.
      await page.selectOption('#refresh-rate', 'live');
      await waitFor('the page to see it closed', async () => (await page.locator('#alert-detail').getAttribute('data-open')) === 'false');
      await waitFor('resolved by the other', async () => (await textOf(page.locator('#detail-resolved-by'))).startsWith('elsewhere'));
      assert.equal(await page.locator('#action-ack').isDisabled(), true);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
