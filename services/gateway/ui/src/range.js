// The time-range picker every trend has: the last 15 minutes, hour, day or week, or a custom
// start and end. The choice lives in the URL (`range`, and `from`/`to` in ms for a custom
// one), so a shared link shows the same span.

import { h, setText } from './dom.js';
import * as format from './format.js';
import { readQuery, writeQuery } from './url-state.js';

const MINUTE = 60_000;
export const RANGES = [
  { value: '15m', label: '15 min', ms: 15 * MINUTE },
  { value: '1h', label: '1 h', ms: 60 * MINUTE },
  { value: '24h', label: '24 h', ms: 24 * 60 * MINUTE },
  { value: '7d', label: '7 days', ms: 7 * 24 * 60 * MINUTE },
  { value: 'custom', label: 'custom', ms: null },
];

/** An epoch-ms instant as a datetime-local input's value, in local time. */
function toInputValue(ms) {
  const date = new Date(ms - new Date(ms).getTimezoneOffset() * MINUTE);
  return date.toISOString().slice(0, 16);
}

/**
 * `onChange(range)` after every choice; `range()` is `{ start, end, follows }` in ms
 * (`follows`: the end is now, and moves on). `fallback` is the range with none in the URL.
 */
export function rangePicker({ onChange, fallback = '15m' } = {}) {
  const query = readQuery();
  let selected = RANGES.find((range) => range.value === query.range) ?? RANGES.find((range) => range.value === fallback);
  let custom = null;
  if (selected.value === 'custom') {
    const start = Number(query.from);
    const end = Number(query.to);
    if (Number.isFinite(start) && Number.isFinite(end) && end > start) custom = { start, end };
    else selected = RANGES[0];
  }
  const buttons = RANGES.map((range) =>
    h(
      'button',
      {
        type: 'button',
        class: 'segment',
        'data-range': range.value,
        title: range.ms ? `Show the last ${range.label}` : 'Choose a start and an end',
        onclick: () => choose(range),
      },
      range.label,
    ),
  );
  const startInput = h('input', { type: 'datetime-local', class: 'range-start', step: '60', 'aria-label': 'From' });
  const endInput = h('input', { type: 'datetime-local', class: 'range-end', step: '60', 'aria-label': 'To' });
  const customError = h('span', { class: 'error small', role: 'alert' });
  const customForm = h(
    'form',
    { class: 'custom-range', hidden: true },
    h('span', {}, 'From'),
    startInput,
    h('span', {}, 'to'),
    endInput,
    h('button', { type: 'submit', class: 'button' }, 'Apply'),
    customError,
  );
  const caption = h('p', { class: 'muted small range-caption' });
  const element = h('div', { class: 'range-picker' }, h('div', { class: 'segments', role: 'group', 'aria-label': 'Time range' }, buttons), customForm, caption);

  customForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const start = Date.parse(startInput.value);
    const end = Date.parse(endInput.value);
    if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
      setText(customError, 'Choose a start before the end.');
      return;
    }
    setText(customError, '');
    custom = { start, end };
    changed();
  });

  function choose(range) {
    selected = range;
    if (range.value === 'custom' && !custom) {
      const now = Date.now();
      startInput.value = toInputValue(now - 60 * MINUTE);
      endInput.value = toInputValue(now);
      show();
      startInput.focus();
      return;
    }
    changed();
  }

  function range(now = Date.now()) {
    if (selected.value === 'custom' && custom) return { ...custom, follows: false };
    return { start: now - selected.ms, end: now, follows: true };
  }

  function show() {
    for (const button of buttons) button.setAttribute('aria-pressed', button.dataset.range === selected.value ? 'true' : 'false');
    customForm.hidden = selected.value !== 'custom';
    if (custom) {
      startInput.value = toInputValue(custom.start);
      endInput.value = toInputValue(custom.end);
    }
    const now = range();
    setText(
      caption,
      now.follows ? `Last ${selected.label}: ${format.dateTime(now.start)} → now` : `${format.dateTime(now.start)} → ${format.dateTime(now.end)}`,
      'The time range the charts show',
    );
    element.dataset.range = selected.value;
  }

  function changed() {
    const chosen = selected.value === 'custom' ? range() : null;
    writeQuery({ range: selected.value === fallback ? null : selected.value, from: chosen?.start, to: chosen?.end });
    show();
    onChange?.(range());
  }

  show();
  return { element, range, selected: () => selected.value };
}
