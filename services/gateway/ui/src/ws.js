// The WebSocket client for /ws/metrics: one connection for the whole app that follows the
// topics the open page needs (`system`, `tasks`, `alerts`, `workers`, `worker:<id>`),
// reconnects by itself with exponential backoff (and says so), subscribes again after a
// reconnection, and keeps the latest message of each type (a `worker` message under
// `worker:<id>`), so a page opened later starts from the current state.

import { settings } from './config.js';

/** What the header shows for each state. */
export const STATE_LABELS = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  off: 'live updates off',
};

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;
/** Topics every page shares: the system figures (the trends' window). */
const ALWAYS = ['system'];

export class LiveSocket {
  constructor(path = '/ws/metrics') {
    this.path = path;
    this.state = settings().real_time_enabled ? 'connecting' : 'off';
    this.latest = new Map();
    this.handlers = new Map();
    this.stateListeners = new Set();
    /** topic -> how many subscribers want it */
    this.wanted = new Map(ALWAYS.map((topic) => [topic, 1]));
    this.delay = FIRST_DELAY_MS;
    this.socket = null;
    this.retryTimer = null;
  }

  start() {
    if (this.state === 'off') return this;
    this.open();
    // A laptop waking up or a tab coming back: try at once rather than after the backoff.
    addEventListener('online', () => this.retryNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.retryNow();
    });
    return this;
  }

  url() {
    const topics = [...this.wanted.keys()].map(encodeURIComponent).join(',');
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${this.path}?topics=${topics}`;
  }

  open() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.delay = FIRST_DELAY_MS;
      this.setState('live');
    });
    socket.addEventListener('message', (event) => this.receive(event.data));
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.setState('reconnecting');
      // Backoff with jitter, so many dashboards do not return in step after a restart.
      const wait = this.delay * (0.75 + Math.random() * 0.5);
      this.delay = Math.min(MAX_DELAY_MS, this.delay * 2);
      this.retryTimer = setTimeout(() => this.open(), wait);
    });
  }

  retryNow() {
    if (this.retryTimer !== null) this.open();
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message?.type !== 'string') return;
    const key = message.type === 'worker' ? `worker:${message.data?.worker_id}` : message.type;
    this.latest.set(key, message.data);
    for (const handler of this.handlers.get(key) ?? []) handler(message.data);
    if (key !== message.type) for (const handler of this.handlers.get(message.type) ?? []) handler(message.data);
  }

  send(request) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(request));
  }

  /**
   * Follows `topics` until the returned function is called (topics another page also follows
   * stay). A subscription made while disconnected is sent with the next connection.
   */
  follow(topics) {
    const added = [];
    for (const topic of topics) {
      const count = this.wanted.get(topic) ?? 0;
      if (count === 0) added.push(topic);
      this.wanted.set(topic, count + 1);
    }
    if (added.length) this.send({ subscribe: added });
    return () => {
      const removed = [];
      for (const topic of topics) {
        const count = (this.wanted.get(topic) ?? 1) - 1;
        if (count <= 0 && !ALWAYS.includes(topic)) {
          this.wanted.delete(topic);
          this.latest.delete(topic);
          removed.push(topic);
        } else {
          this.wanted.set(topic, Math.max(count, 1));
        }
      }
      if (removed.length) this.send({ unsubscribe: removed });
    };
  }

  /**
   * Calls `handler(data)` for every message of `type` (`worker:<id>` for one worker's);
   * returns the unsubscribe function.
   */
  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(handler);
    return () => this.handlers.get(type).delete(handler);
  }

  /** Calls `listener(state)` now and on every change of state; returns the unsubscribe function. */
  onState(listener) {
    this.stateListeners.add(listener);
    listener(this.state);
    return () => this.stateListeners.delete(listener);
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }
}
