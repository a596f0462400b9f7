// A path that is no page of the dashboard.

import { h } from '../dom.js';

export function mount(root, _app, _params, path) {
  root.append(
    h(
      'section',
      { class: 'panel narrow' },
      h('h1', {}, 'No such page'),
      h('p', {}, 'There is no dashboard page at ', h('code', {}, path), '.'),
      h('p', {}, h('a', { href: '/' }, 'Back to the overview')),
    ),
  );
}
