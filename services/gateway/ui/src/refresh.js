// The refresh rate: "live" (WebSocket updates as they arrive, REST figures every
// `auto_refresh` seconds), every 5 s, every 30 s, or paused. Remembered in localStorage.
// Data keeps arriving in the background whatever the rate; the rate only decides how often
// a page redraws. Without real-time updates (`gateway.real_time_enabled = false`) "live"
// reads the REST API every `auto_refresh` seconds.

import { settings } from './config.js';

const KEY = 'fleetwatch.refresh';

function liveRate() {
  const seconds = settings().auto_refresh;
  const every = seconds > 0 ? `every ${seconds} s` : 'on updates only';
  return {
    value: 'live',
    label: settings().real_time_enabled ? 'live' : every,
    pollMs: seconds > 0 ? seconds * 1000 : null,
  };
}

export const RATES = [
  liveRate(),
  { value: '5s', label: 'every 5 s', pollMs: 5000 },
  { value: '30s', label: 'every 30 s', pollMs: 30_000 },
  { value: 'paused', label: 'paused', pollMs: null },
];

const listeners = new Set();

export function currentRate() {
  let stored = null;
  try {
    stored = localStorage.getItem(KEY);
  } catch {
    // Storage disabled: the default.
  }
  return RATES.find((rate) => rate.value === stored) ?? RATES[0];
}

export function setRate(value) {
  try {
    localStorage.setItem(KEY, value);
  } catch {
    // Storage disabled: the rate still changes for this page.
  }
  const rate = RATES.find((candidate) => candidate.value === value) ?? RATES[0];
  for (const listener of listeners) listener(rate);
}

export function onRateChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * Drives a page's redraws at the current rate. `poll()` fetches REST data and redraws;
 * `flush()` redraws from what the WebSocket delivered. The returned object's `pushed()` is
 * called by the page on each WebSocket update: in live mode it flushes at once (once per
 * animation frame), otherwise the next tick does. `now()` polls at once (after a filter
 * changed). `stop()` ends it.
 */
export function refresher({ poll, flush }) {
  let timer = null;
  let frame = null;
  let dirty = false;
  let rate = currentRate();

  const tick = () => {
    poll?.();
    if (dirty) {
      dirty = false;
      flush?.();
    }
  };
  const arm = () => {
    clearInterval(timer);
    timer = rate.pollMs === null ? null : setInterval(tick, rate.pollMs);
  };
  const unsubscribe = onRateChange((next) => {
    rate = next;
    arm();
    if (rate.value !== 'paused') tick();
  });
  arm();
  poll?.();

  return {
    pushed() {
      dirty = true;
      if (rate.value !== 'live' || frame !== null) return;
      frame = requestAnimationFrame(() => {
        frame = null;
        if (dirty) {
          dirty = false;
          flush?.();
        }
      });
    },
    now() {
      poll?.();
    },
    stop() {
      clearInterval(timer);
      if (frame !== null) cancelAnimationFrame(frame);
      unsubscribe();
    },
  };
}
