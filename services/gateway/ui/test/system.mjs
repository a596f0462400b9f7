// The system under test, started for real: nats-server with JetStream on a random port and a
// temporary store, the collector (a 12-worker demo fleet ticking every 200 ms, HTTP ingest
// on a port of its choosing), the processor, the archiver (a DuckDB file in the store's
// folder), the alerter when asked, and the gateway (on a port of its choosing), as
// processes from the cargo build; and headless Chromium driven by playwright-core. Every
// wait polls with a deadline. With FLEETWATCH_UI_DIR set to a built dist, the gateway
// serves the dashboard from there (work on the front end without a cargo build).

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { chromium } from 'playwright-core';

/** How long any one wait may take before the test fails. */
export const DEADLINE_MS = 60_000;

/** Polls `check` until it returns something other than undefined/false, or throws after the deadline. */
export async function waitFor(what, check, deadlineMs = DEADLINE_MS) {
  const deadline = Date.now() + deadlineMs;
  let delay = 20;
  let lastError = null;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false && value !== null) return value;
    } catch (err) {
      if (err.fatal) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}${lastError ? `: ${lastError.message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 250);
  }
}

/** Where cargo put the service binaries. */
function binDir() {
  if (process.env.FLEETWATCH_BIN_DIR) return process.env.FLEETWATCH_BIN_DIR;
  const cache = process.env.FLEETWATCH_CACHE ?? join(homedir(), '.cache/fleetwatch');
  return join(process.env.CARGO_TARGET_DIR ?? join(cache, 'target'), 'debug');
}

function findOnPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

function natsServerBinary() {
  const cache = process.env.FLEETWATCH_CACHE ?? join(homedir(), '.cache/fleetwatch');
  const found = process.env.NATS_SERVER ?? findOnPath('nats-server') ?? join(cache, 'py/bin/nats-server');
  if (!existsSync(found)) {
    throw new Error(`cannot find nats-server (${found}): install it with \`just tools\`, or set NATS_SERVER`);
  }
  return found;
}

export function chromiumBinary() {
  const found = process.env.CHROMIUM ?? findOnPath('chromium') ?? '/usr/bin/chromium';
  if (!existsSync(found)) {
    throw new Error(`cannot find Chromium (${found}): install it with \`apt-get install chromium\`, or set CHROMIUM`);
  }
  return found;
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export async function launchBrowser() {
  return chromium.launch({ executablePath: chromiumBinary(), args: CHROMIUM_ARGS });
}

class Process {
  constructor(name, binary, args, dir, extraEnv = {}) {
    this.name = name;
    this.log = join(dir, `${name}.log`);
    const out = openSync(this.log, 'w');
    const env = { ...process.env, RUST_LOG: 'info', ...extraEnv };
    delete env.FLEETWATCH_CONFIG;
    this.child = spawn(binary, args, { cwd: dir, stdio: ['ignore', out, out], env });
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.once('error', (err) => {
      this.error = err;
    });
  }

  /** Throws (ending any wait at once) when the process has exited. */
  checkRunning() {
    const code = this.child.exitCode ?? this.child.signalCode;
    if (code !== null || this.error) {
      const err = new Error(`${this.name} exited (${this.error?.message ?? code})`);
      err.fatal = true;
      throw err;
    }
  }

  logText() {
    try {
      return readFileSync(this.log, 'utf8');
    } catch {
      return '';
    }
  }

  /** The first `<field>` of a JSON log line whose message is `message`. */
  logField(message, field) {
    for (const line of this.logText().split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const record = JSON.parse(line);
        if (record.message === message && record[field] !== undefined) return String(record[field]);
      } catch {
        // A partial line: the next poll reads it whole.
      }
    }
    return undefined;
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timeout = new Promise((resolve) => setTimeout(resolve, 10_000, 'timeout'));
    if ((await Promise.race([this.exited, timeout])) === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/**
 * nats-server, collector, processor, gateway (and the alerter when `alerter`); `stop()` ends
 * them and removes the store. `gatewayEnv` configures the gateway (its users, say);
 * `apiHeaders` are what the harness itself sends to the API then (a bearer token).
 */
export async function startSystem({ workers = 12, tickMs = 200, alerter = false, archiver = true, gatewayArgs = [], alerterArgs = [], collectorArgs = [], gatewayEnv = {}, apiHeaders = {} } = {}) {
  const bins = binDir();
  for (const service of ['collector', 'processor', 'gateway', ...(alerter ? ['alerter'] : []), ...(archiver ? ['archiver'] : [])]) {
    const binary = join(bins, `fleetwatch-${service}`);
    if (!existsSync(binary)) throw new Error(`${binary} is missing: run \`just build\` (or cargo build --workspace --bins) first`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'fleetwatch-ui-test-'));
  const processes = [];
  const system = {
    dir,
    processes,
    async stop() {
      // Services first, nats-server last, as deploy/up.sh does.
      for (const process of processes.slice(1).reverse()) await process.stop();
      await processes[0]?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    logs() {
      return processes.map((process) => `---- ${process.name} ----\n${process.logText()}`).join('\n');
    },
  };
  try {
    const nats = new Process('nats-server', natsServerBinary(), ['-js', '-a', '127.0.0.1', '-p', '-1', '--ports_file_dir', dir, '-sd', join(dir, 'store')], dir);
    processes.push(nats);
    const natsUrl = await waitFor('nats-server to write its ports file', () => {
      nats.checkRunning();
      const file = join(dir, `nats-server_${nats.child.pid}.ports`);
      if (!existsSync(file)) return undefined;
      return JSON.parse(readFileSync(file, 'utf8')).nats?.[0];
    }, 20_000);
    const common = ['--nats-url', natsUrl, '--log-format', 'json'];
    const bin = (name) => join(bins, `fleetwatch-${name}`);
    const collector = new Process('collector', bin('collector'), [...common, '--demo-workers', String(workers), '--demo-tick-ms', String(tickMs), '--http-port', '0', ...collectorArgs], dir);
    processes.push(collector);
    processes.push(new Process('processor', bin('processor'), [...common, '--tick-ms', String(tickMs), '--sample-secs', '2'], dir));
    if (alerter) processes.push(new Process('alerter', bin('alerter'), [...common, ...alerterArgs], dir));
    if (archiver) processes.push(new Process('archiver', bin('archiver'), [...common, '--db-path', join(dir, 'archive.duckdb')], dir));
    let gateway = new Process('gateway', bin('gateway'), [...common, '--port', '0', ...gatewayArgs], dir, gatewayEnv);
    processes.push(gateway);
    /** Stops the gateway, then (after `whileDown()`) starts a new one on the same port. */
    system.restartGateway = async (whileDown = async () => {}) => {
      const port = new URL(system.url).port;
      await gateway.stop();
      await whileDown();
      const index = processes.indexOf(gateway);
      gateway = new Process('gateway-restarted', bin('gateway'), [...common, '--port', port, ...gatewayArgs], dir, gatewayEnv);
      processes[index] = gateway;
      await waitFor('the new gateway to listen', () => {
        gateway.checkRunning();
        return gateway.logField('dashboard listening', 'url');
      });
    };

    const running = () => processes.forEach((process) => process.checkRunning());
    system.url = await waitFor('the gateway to listen', () => {
      running();
      return gateway.logField('dashboard listening', 'url');
    });
    const script = await fetch(`${system.url}/assets/app.js`);
    if (!script.ok) {
      throw new Error(
        `the gateway does not serve the dashboard (/assets/app.js answered ${script.status}): ` +
          'mount crate::assets::routes() in services/gateway/src/api.rs',
      );
    }
    const address = await waitFor('the collector to listen for HTTP ingest', () => {
      running();
      return collector.logField('http ingest listening', 'address');
    });
    system.ingestUrl = `http://${address}/ingest`;
    await waitFor(`the gateway to see ${workers} workers`, async () => {
      running();
      const status = await (await fetch(`${system.url}/api/status`, { headers: apiHeaders })).json();
      return status.workers?.total === workers && status.status !== 'waiting';
    });
    return system;
  } catch (err) {
    const logs = system.logs();
    await system.stop();
    err.message += `\n${logs}`;
    throw err;
  }
}

/** `fleetwatch-gateway --hash-password` of `password`: what `[[gateway.auth.users]]` holds. */
export function passwordHash(password) {
  return execFileSync(join(binDir(), 'fleetwatch-gateway'), ['--hash-password'], { input: `${password}\n` }).toString().trim();
}

/** POSTs events to the collector's HTTP ingest; resolves to its JSON answer. */
export async function ingest(system, events) {
  const response = await fetch(system.ingestUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(events),
  });
  const body = await response.json();
  if (response.status !== 202) throw new Error(`ingest answered ${response.status}: ${JSON.stringify(body)}`);
  return body;
}


/**
 * A fresh browser context (its own localStorage) on `url`, 1440 x 1000, downloads allowed;
 * `problems` collects script errors and dialogs (an injected script would open one), and
 * `window.injected` is set if anything calls `alert`.
 */
export async function openPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, acceptDownloads: true });
  await context.addInitScript(() => {
    window.alert = () => {
      window.injected = true;
    };
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(String(err)));
  page.on('dialog', (dialog) => {
    problems.push(`a dialog opened: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  await page.goto(url);
  return { context, page, problems };
}
