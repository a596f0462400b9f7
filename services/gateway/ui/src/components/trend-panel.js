// A panel of trend charts over one time range: the range picker (in the URL), the charts
// (uPlot), marks where alerts fired and recovery actions ran, and a line saying where the
// data comes from. The data comes from `load(start, end, signal)`, by default the
// archive's system history of the charts' series; with `live` (the app's RollingWindow of
// `system` messages) the newest part comes from what the WebSocket delivered, so the chart
// moves every second.

import { loadMarkers } from '../annotations.js';
import { TimeChart, withGaps } from '../charts.js';
import { h, setText } from '../dom.js';
import * as format from '../format.js';
import { loadHistory, mergeSeries } from '../history.js';
import { rangePicker } from '../range.js';

/**
 * `charts`: [{ title, description, series: [{ key, label, dash? }], format }];
 * `load(start, end, signal)` resolves to `{ time, values, intervalMs, resolution }`;
 * `onRange(range)` after the range changes (other panels of the page may follow it).
 */
export function trendPanel({ id, title, charts, load = null, live = null, fallback = '15m', markers = true, onRange = null }) {
  const metrics = [...new Set(charts.flatMap((chart) => chart.series.map((series) => series.key)))];
  const fetch = load ?? ((start, end, signal) => loadHistory(start, end, metrics, { signal }));
  let history = null;
  let request = null;
  let marks = [];
  const built = charts.map((chart) => new TimeChart(chart));
  const note = h('p', { class: 'muted small history-note', role: 'status' });
  const picker = rangePicker({
    fallback,
    onChange: (range) => {
      reload();
      onRange?.(range);
    },
  });
  const element = h(
    'section',
    { class: 'panel trends', id, 'aria-labelledby': `${id}-title` },
    h('div', { class: 'panel-head' }, h('h2', { id: `${id}-title` }, title), picker.element),
    note,
    built.map((chart) => chart.element),
  );

  function reload() {
    request?.abort();
    const controller = new AbortController();
    request = controller;
    const range = picker.range();
    const since = live?.since ?? Infinity;
    // With a live window, history is needed only for what it does not cover.
    const needsHistory = !live || range.start < since - 2000;
    history = null;
    draw();
    if (markers) {
      loadMarkers(range.start, range.end, { signal: controller.signal })
        .then((found) => {
          if (request !== controller) return;
          marks = found;
          for (const chart of built) chart.setMarkers(marks);
        })
        .catch(() => {});
    }
    if (!needsHistory) {
      setText(note, '');
      return;
    }
    setText(note, 'loading history…');
    fetch(range.start, live ? Math.min(range.end, since) : range.end, controller.signal)
      .then((loaded) => {
        if (request !== controller) return;
        history = loaded;
        setText(
          note,
          loaded.time.length
            ? `History from the archive at ${loaded.resolution ?? 'its'} resolution${live ? ', then live' : ''}.`
            : `The archive holds nothing for this range yet${live ? '; live data only' : ''}.`,
        );
        draw();
      })
      .catch((err) => {
        if (err.name === 'AbortError' || request !== controller) return;
        const unavailable = err.status === 404 || err.status === 503;
        setText(
          note,
          unavailable
            ? `History not available yet${live?.since ? `: showing what this page has seen since ${format.time(live.since)}` : ''}.`
            : `History could not be loaded (${err.message}).`,
        );
        draw();
      });
  }

  /** Redraws every chart over the current range. */
  function draw() {
    const range = picker.range();
    let data;
    if (live) data = mergeSeries(history, live, range.start, range.end, metrics);
    else if (history) data = withGaps(history, history.intervalMs ?? 0);
    else data = { time: [], values: {} };
    for (const chart of built) {
      chart.setRange(range.start, range.end);
      chart.setData(data);
    }
    element.dataset.range = picker.selected();
  }

  return {
    element,
    draw,
    start: reload,
    /** Loads the history again (a following range has moved on). */
    reload,
    /** The range shown: `{ start, end, follows }` in ms. */
    range: () => picker.range(),
    destroy() {
      request?.abort();
      for (const chart of built) chart.destroy();
    },
  };
}
