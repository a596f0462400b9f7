// Resource utilisation: the fleet's mean CPU, GPU, memory and network use as bars, from the
// `utilisation` of the system metrics.

import { h, setText } from '../dom.js';
import * as format from '../format.js';

const RESOURCES = [
  { key: 'cpu', label: 'CPU', title: 'Mean CPU use over connected workers' },
  { key: 'gpu', label: 'GPU', title: 'Mean GPU use over connected workers that have a GPU' },
  { key: 'memory', label: 'Memory', title: 'Mean memory use over connected workers' },
  { key: 'network', label: 'Network', title: 'Mean network use over connected workers, relative to their link speed' },
];

export function utilisationBars() {
  const rows = RESOURCES.map((resource) => {
    const fill = h('span', { class: 'meter-fill' });
    const value = h('span', { class: 'meter-value', id: `util-${resource.key}-text` }, '–');
    const meter = h(
      'div',
      {
        class: 'meter',
        role: 'meter',
        'aria-label': resource.label,
        'aria-valuemin': '0',
        'aria-valuemax': '100',
        'aria-valuenow': '0',
      },
      fill,
    );
    const element = h(
      'div',
      { class: 'meter-row', title: resource.title },
      h('span', { class: 'meter-label' }, resource.label),
      meter,
      value,
    );
    return { resource, element, fill, value, meter };
  });

  const element = h(
    'section',
    { class: 'panel utilisation', 'aria-labelledby': 'utilisation-title' },
    h('h2', { id: 'utilisation-title' }, 'Resource utilisation'),
    h('div', { class: 'meters' }, rows.map((row) => row.element)),
  );

  function update(utilisation) {
    for (const row of rows) {
      const pct = Number(utilisation?.[row.resource.key]);
      const known = Number.isFinite(pct);
      const clamped = known ? Math.max(0, Math.min(100, pct)) : 0;
      row.fill.style.width = `${clamped}%`;
      row.fill.dataset.level = clamped >= 90 ? 'high' : clamped >= 70 ? 'raised' : 'normal';
      row.meter.setAttribute('aria-valuenow', String(Math.round(clamped)));
      setText(row.value, known ? format.percent(pct) : '–');
    }
  }

  return { element, update };
}
