// A badge the System and Fault tolerance pages share.

import { h } from '../dom.js';

/** A small coloured label: `state` picks the colour (healthy, degraded, down, up, stale, ...). */
export function stateBadge(state, title) {
  return h('span', { class: `badge state-badge state-${String(state).replace(/[^a-z_-]/gi, '')}`, title }, String(state));
}
