// Performance trends: throughput and queue/processing time percentiles as uPlot charts over a
// chosen time range (15 min, 1 h, 24 h, 7 days, or custom). The browser keeps every `system`
// message it has seen; a range reaching further back than that loads the archive's history
// and draws the two together. While the history endpoint is missing (404) or the archive is
// unavailable (503) the charts show what the browser has, and say so.

import { TimeChart } from '../charts.js';
import { h, setText } from '../dom.js';
import * as format from '../format.js';
import { loadHistory, mergeSeries } from '../history.js';

const MINUTE = 60_000;
export const RANGES = [
  { value: '15m', label: '15 min', ms: 15 * MINUTE },
  { value: '1h', label: '1 h', ms: 60 * MINUTE },
  { value: '24h', label: '24 h', ms: 24 * 60 * MINUTE },
  { value: '7d', label: '7 days', ms: 7 * 24 * 60 * MINUTE },
  { value: 'custom', label: 'custom', ms: null },
];

/** `live` is the app's RollingWindow. */
export function trendsPanel(live) {
  let selected = RANGES[0];
  let custom = null; // { start, end } in ms
  let history = null; // the last history loaded, for the range below
  let historyFor = null; // { start, end } it was asked for
  let historyRequest = null;

  const throughput = new TimeChart({
    title: 'Throughput',
    description: 'tasks completed per minute (over the last 60 s at each point)',
    series: [{ key: 'throughput_per_min', label: 'tasks/min' }],
    format: (value) => format.number(value),
  });
  const latency = new TimeChart({
    title: 'Queue and processing time',
    description: 'p50 and p95 of the time tasks waited to start and the time they ran',
    series: [
      { key: 'queue_time_ms_p50', label: 'queue p50' },
      { key: 'queue_time_ms_p95', label: 'queue p95', dash: [4, 3] },
      { key: 'processing_time_ms_p50', label: 'processing p50' },
      { key: 'processing_time_ms_p95', label: 'processing p95', dash: [4, 3] },
    ],
    format: (value) => format.duration(value),
  });

  const buttons = RANGES.map((range) =>
    h(
      'button',
      {
        type: 'button',
        class: 'segment',
        'data-range': range.value,
        'aria-pressed': range === selected ? 'true' : 'false',
        title: range.ms ? `Show the last ${range.label}` : 'Choose a start and an end',
        onclick: () => choose(range),
      },
      range.label,
    ),
  );
  const startInput = h('input', { type: 'datetime-local', id: 'range-start', step: '60' });
  const endInput = h('input', { type: 'datetime-local', id: 'range-end', step: '60' });
  const customError = h('span', { class: 'error small', role: 'alert' });
  const customForm = h(
    'form',
    { class: 'custom-range', hidden: true, onsubmit: applyCustom },
    h('label', { for: 'range-start' }, 'From'),
    startInput,
    h('label', { for: 'range-end' }, 'to'),
    endInput,
    h('button', { type: 'submit', class: 'button' }, 'Apply'),
    customError,
  );
  const caption = h('p', { class: 'muted small range-caption', id: 'range-caption' });
  const historyNote = h('p', { class: 'muted small', id: 'history-note', role: 'status' });

  const element = h(
    'section',
    { class: 'panel trends', 'aria-labelledby': 'trends-title' },
    h(
      'div',
      { class: 'panel-head' },
      h('h2', { id: 'trends-title' }, 'Performance'),
      h('div', { class: 'segments', role: 'group', 'aria-label': 'Time range' }, buttons),
    ),
    customForm,
    caption,
    historyNote,
    throughput.element,
    latency.element,
  );

  function currentRange(now = Date.now()) {
    if (selected.value === 'custom' && custom) return { ...custom, follows: false };
    const ms = selected.ms ?? RANGES[0].ms;
    return { start: now - ms, end: now, follows: true };
  }

  function choose(range) {
    selected = range;
    for (const button of buttons) button.setAttribute('aria-pressed', button.dataset.range === range.value ? 'true' : 'false');
    customForm.hidden = range.value !== 'custom';
    if (range.value === 'custom') {
      if (!custom) {
        const now = Date.now();
        startInput.value = toInputValue(now - 60 * MINUTE);
        endInput.value = toInputValue(now);
      }
      startInput.focus();
      if (!custom) return;
    }
    refreshHistory();
    draw();
  }

  function applyCustom(event) {
    event.preventDefault();
    const start = Date.parse(startInput.value);
    const end = Date.parse(endInput.value);
    if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
      customError.textContent = 'Choose a start before the end.';
      return;
    }
    customError.textContent = '';
    custom = { start, end };
    refreshHistory();
    draw();
  }

  /** Loads history when the range starts before the oldest point this browser has. */
  function refreshHistory() {
    const range = currentRange();
    const since = live.since ?? Date.now();
    historyRequest?.abort();
    historyRequest = null;
    if (range.start >= since - 2000) {
      history = null;
      historyFor = null;
      setText(historyNote, '');
      return;
    }
    const controller = new AbortController();
    historyRequest = controller;
    setText(historyNote, 'loading history…');
    const asked = { start: range.start, end: Math.min(range.end, since) };
    loadHistory(asked.start, asked.end, undefined, { signal: controller.signal })
      .then((loaded) => {
        if (historyRequest !== controller) return;
        history = loaded;
        historyFor = asked;
        setText(
          historyNote,
          loaded.time.length
            ? `History from the archive at ${loaded.resolution ?? 'its'} resolution, then live.`
            : 'The archive holds nothing for this range yet; live data only.',
        );
        draw();
      })
      .catch((err) => {
        if (err.name === 'AbortError' || historyRequest !== controller) return;
        history = null;
        historyFor = null;
        const unavailable = err.status === 404 || err.status === 503;
        setText(
          historyNote,
          unavailable
            ? `History not available yet: showing what this page has seen since ${format.time(live.since)}.`
            : `History could not be loaded (${err.message}); showing live data only.`,
        );
        draw();
      });
  }

  /** Redraws both charts over the current range. */
  function draw() {
    const range = currentRange();
    const data = mergeSeries(historyFor ? history : null, live, range.start, range.end);
    for (const chart of [throughput, latency]) {
      chart.setRange(range.start, range.end);
      chart.setData(data);
    }
    setText(
      caption,
      range.follows
        ? `Last ${selected.label}: ${format.dateTime(range.start)} → now`
        : `${format.dateTime(range.start)} → ${format.dateTime(range.end)}`,
      'The time range the charts show',
    );
    element.dataset.range = selected.value;
  }

  return {
    element,
    draw,
    start() {
      refreshHistory();
      draw();
    },
    destroy() {
      historyRequest?.abort();
      throughput.destroy();
      latency.destroy();
    },
  };
}

/** An epoch-ms instant as a datetime-local input's value, in local time. */
function toInputValue(ms) {
  const date = new Date(ms - new Date(ms).getTimezoneOffset() * MINUTE);
  return date.toISOString().slice(0, 16);
}
