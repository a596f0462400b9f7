// The WebSocket client for /ws/metrics: one connection for the whole app that reconnects by
// itself with exponential backoff, keeps the latest message of each type (so a page opened
// later starts from the current state) and reports its connection state for the header.

/** What the header shows for each state. */
export const STATE_LABELS = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
};

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;

export class LiveSocket {
  constructor(path = '/ws/metrics') {
    this.url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
    this.state = 'connecting';
    /** The latest `data` of each message type ("system", "alerts_firing", "alert"). */
    this.latest = new Map();
    this.handlers = new Map();
    this.stateListeners = new Set();
    this.delay = FIRST_DELAY_MS;
    this.socket = null;
    this.retryTimer = null;
  }

  start() {
    this.open();
    // A laptop waking up or a tab coming back: try at once rather than after the backoff.
    addEventListener('online', () => this.retryNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.retryNow();
    });
    return this;
  }

  open() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = new WebSocket(this.url);
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
    this.latest.set(message.type, message.data);
    for (const handler of this.handlers.get(message.type) ?? []) handler(message.data);
  }

  /** Calls `handler(data)` for every message of `type`; returns the unsubscribe function. */
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
