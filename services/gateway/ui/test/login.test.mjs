// Signing in, as a person meets it in real headless Chromium, against a gateway with users
// (an operator and a viewer) and a token the harness reads with: a page opened without a
// session goes to /login and back after it, a wrong password is said so, the operator acts on
// an alert as themselves, the viewer sees the actions and cannot use them, and signing out
// ends the session.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, openPage, passwordHash, startSystem, waitFor } from './system.mjs';

const TOKEN = 'ui-test-operator-token';
const bearer = { authorization: `Bearer ${TOKEN}` };
let system;
let browser;

before(async () => {
  const users = `[{name="ada", role="operator", password_hash="${passwordHash('lovelace')}"}, {name="vic", role="viewer", password_hash="${passwordHash('viewing')}"}]`;
  const tokens = `[{name="uitest", role="operator", sha256="${createHash('sha256').update(TOKEN).digest('hex')}"}]`;
  system = await startSystem({
    workers: 8,
    alerter: true,
    archiver: false,
    gatewayEnv: { FLEETWATCH_GATEWAY__AUTH__USERS: users, FLEETWATCH_GATEWAY__AUTH__TOKENS: tokens },
    apiHeaders: bearer,
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await system?.stop();
});

const textOf = async (locator) => (await locator.allTextContents()).join('');

async function postAlert(title) {
  const posted = await fetch(`${system.url}/api/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer },
    body: JSON.stringify({ level: 'warning', title, source: 'logintest' }),
  });
  assert.equal(posted.status, 202);
  return waitFor(`the alert "${title}" to be open`, async () => {
    const body = await (await fetch(`${system.url}/api/alerts?limit=1`, { headers: bearer })).json();
    return body.firing.find((alert) => alert.labels?.title === title);
  });
}

async function signIn(page, name, password) {
  await page.fill('#login-name', name);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
}

async function pick(page, alert) {
  const row = page.locator(`#open-alerts tbody tr[data-key="${alert.alert_id}"]`);
  await waitFor('the alert in the open list', async () => (await row.count()) === 1);
  await row.locator('.alert-pick').click();
  await waitFor('the alert shown', async () => (await page.locator('#alert-detail').getAttribute('data-alert')) === alert.alert_id);
}

describe('signing in', () => {
  test('a page without a session goes to /login, and back after a right password', async () => {
    const { context, page, problems } = await openPage(browser, `${system.url}/alerts`);
    try {
      await waitFor('the sign-in form', async () => (await page.locator('#login-form').count()) === 1);
      assert.equal(new URL(page.url()).pathname, '/login');
      assert.equal(new URL(page.url()).searchParams.get('next'), '/alerts');
      await signIn(page, 'ada', 'wrong');
      await waitFor('the refusal', async () => (await textOf(page.locator('#login-error'))) === 'Wrong name or password.');
      assert.equal(await page.inputValue('#login-password'), '', 'the wrong password is cleared');
      await signIn(page, 'ada', 'lovelace');
      await waitFor('the alerts page', async () => (await textOf(page.locator('main h1').first())) === 'Alerts');
      assert.equal(new URL(page.url()).pathname, '/alerts');
      assert.equal(await textOf(page.locator('#signed-in')), 'ada · operator');
      await waitFor('live updates over the session', async () => (await page.locator('#connection').getAttribute('data-state')) === 'live');
      const cookies = await context.cookies();
      const session = cookies.find((cookie) => cookie.name === 'fleetwatch_session');
      assert.ok(session?.httpOnly, 'the session cookie is HttpOnly');
      assert.equal(session.sameSite, 'Strict');
      assert.equal(await page.evaluate(() => document.cookie.includes('fleetwatch_session')), false, 'scripts cannot read it');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('an operator acts as themselves; a viewer sees the actions and cannot use them', async () => {
    const alert = await postAlert(`Login ${Date.now()}`);
    const ada = await openPage(browser, `${system.url}/login?next=%2Falerts`);
    try {
      await signIn(ada.page, 'ada', 'lovelace');
      await pick(ada.page, alert);
      assert.equal(await ada.page.inputValue('#action-who'), 'ada');
      assert.equal(await ada.page.locator('#action-who').getAttribute('readonly'), '', 'who is not typed in: the session says');
      await ada.page.click('#action-ack');
      await waitFor('the acknowledgement on the page', async () => (await textOf(ada.page.locator('#detail-acknowledged'))).startsWith('ada'));
      const body = await (await fetch(`${system.url}/api/alerts/${encodeURIComponent(alert.alert_id)}`, { headers: bearer })).json();
      assert.equal(body.acknowledged?.by, 'ada');
      assert.deepEqual(ada.problems, []);
    } finally {
      await ada.context.close();
    }

    const vic = await openPage(browser, `${system.url}/login?next=%2Falerts`);
    try {
      await signIn(vic.page, 'vic', 'viewing');
      await waitFor('the header', async () => (await textOf(vic.page.locator('#signed-in'))) === 'vic · viewer');
      await pick(vic.page, alert);
      assert.equal(await vic.page.locator('#action-resolve').isDisabled(), true);
      assert.equal(await vic.page.locator('#action-silence').isDisabled(), true);
      assert.match(await textOf(vic.page.locator('#detail-not-open')), /viewer/);
      // Even a write made by hand from the page, with the session's CSRF token, is refused.
      const refused = await vic.page.evaluate(async (id) => {
        const { csrf_token: token } = await (await fetch('/api/session')).json();
        const response = await fetch(`/api/alerts/${encodeURIComponent(id)}/resolve`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': token },
          body: '{}',
        });
        return { status: response.status, body: await response.json() };
      }, alert.alert_id);
      assert.equal(refused.status, 403);
      assert.match(refused.body.error, /vic is a viewer/);
    } finally {
      await vic.context.close();
    }
  });

  test('signing out ends the session', async () => {
    const { context, page, problems } = await openPage(browser, `${system.url}/login?next=%2Fworkers`);
    try {
      await signIn(page, 'ada', 'lovelace');
      await waitFor('the workers page', async () => (await textOf(page.locator('main h1').first())) === 'Workers');
      await page.click('#sign-out');
      await waitFor('the sign-in form again', async () => (await page.locator('#login-form').count()) === 1);
      const status = await page.evaluate(async () => (await fetch('/api/status')).status);
      assert.equal(status, 401);
      // A crafted `next` cannot send anyone to another site after signing in.
      for (const crafted of ['//evil.example', '/%09/evil.example', '/\\evil.example', 'https://evil.example/']) {
        await page.goto(`${system.url}/login?next=${crafted}`);
        await waitFor('the sign-in form', async () => (await page.locator('#login-form').count()) === 1);
        await signIn(page, 'ada', 'lovelace');
        await waitFor(`a page of this site after next=${crafted}`, async () => new URL(page.url()).host === new URL(system.url).host && !(await page.locator('#login-form').count()));
        await page.click('#sign-out');
        await waitFor('signed out', async () => (await page.locator('#login-form').count()) === 1);
      }
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
