// Stub: being built.

import { h } from '../dom.js';

export function mount(root) {
  root.append(h('section', { class: 'panel narrow' }, h('h1', {}, 'workers')));
}
