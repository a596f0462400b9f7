// The alerts page's timeline: the range picker every trend has (in the URL) and a chart of
// the alerts that fired in each bucket of the range, one line per severity, coloured as the
// severities are everywhere else (critical red, warning amber, info blue), from
// GET /api/alerts/stats. The same answer feeds the distribution tables below it.

import uPlot from 'uplot';
import { TimeChart } from '../charts.js';
import { h, setText } from '../dom.js';
import * as format from '../format.js';
import { rangePicker } from '../range.js';
import { themeColour } from '../theme.js';
import { SEVERITIES } from './alerts-common.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Bucket widths that divide a day, so buckets fall on whole minutes and hours. */
const NICE = [SECOND, 5 * SECOND, 15 * SECOND, 30 * SECOND, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY];
const COLOURS = { critical: '--bad', warning: '--warn', info: '--accent' };

/** About 60 buckets over `span` ms. */
export function bucketFor(span) {
  const wanted = span / 60;
  return NICE.find((width) => width >= wanted) ?? Math.ceil(wanted / DAY) * DAY;
}

/** A bucket's width in words: "15 s", "5 min", "3 h", "1 d". */
function widthText(ms) {
  if (ms < MINUTE) return `${Math.round(ms / SECOND)} s`;
  if (ms < HOUR) return `${Math.round(ms / MINUTE)} min`;
  if (ms < DAY) return `${Math.round(ms / HOUR)} h`;
  return `${Math.round(ms / DAY)} d`;
}

/** TimeChart with each severity in its own colour, drawn as steps (a count per bucket). */
class SeverityChart extends TimeChart {
  options(width) {
    const options = super.options(width);
    const steps = uPlot.paths.stepped({ align: 1 });
    options.series = options.series.map((series, index) => {
      if (index === 0) return series;
      const colour = themeColour(COLOURS[this.series[index - 1].key] ?? '--accent');
      return { ...series, stroke: colour, fill: `${colour}2e`, paths: steps, width: 1.5 };
    });
    return options;
  }
}

/** The buckets of [start, end) with each severity's count; a last point closes the last step. */
export function toSeries(stats, start, end) {
  const interval = Math.max(1, Number(stats?.interval_ms) || bucketFor(end - start));
  const first = Math.floor(start / interval) * interval;
  const time = [];
  const values = Object.fromEntries(SEVERITIES.map((severity) => [severity, []]));
  for (let t = first; t < end; t += interval) {
    time.push(t);
    for (const severity of SEVERITIES) values[severity].push(0);
  }
  for (const row of Array.isArray(stats?.timeline) ? stats.timeline : []) {
    const index = Math.floor((row.time - first) / interval);
    if (index < 0 || index >= time.length || !values[row.severity]) continue;
    values[row.severity][index] += Number(row.count) || 0;
  }
  if (time.length) {
    time.push(end);
    for (const severity of SEVERITIES) values[severity].push(values[severity].at(-1));
  }
  return { time, values, interval };
}

export function alertTimeline({ onRange, fallback = '1h' }) {
  const picker = rangePicker({ fallback, onChange: (range) => onRange?.(range) });
  const chart = new SeverityChart({
    title: 'Alerts fired',
    description: 'How many alerts started firing in each bucket of the range, by severity (each occurrence once, when it first fired)',
    series: SEVERITIES.map((severity) => ({ key: severity, label: severity })),
    format: (value) => (Number.isInteger(value) ? format.count(value) : ''),
    height: 180,
  });
  const summary = h('p', { class: 'small alert-fired-summary', id: 'alerts-fired-summary', title: 'Alerts that fired in the range, by severity' });
  const note = h('p', { class: 'muted small history-note', role: 'status' });
  const element = h(
    'section',
    { class: 'panel alerts-timeline', id: 'alerts-timeline', 'aria-labelledby': 'alerts-timeline-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'alerts-timeline-title' }, 'Timeline'), picker.element),
    summary,
    note,
    chart.element,
  );

  function show(stats, range) {
    const series = toSeries(stats, range.start, range.end);
    chart.setRange(range.start, range.end);
    chart.setData(series);
    const counts = Object.fromEntries((stats?.by_severity ?? []).map((row) => [row.key, Number(row.count) || 0]));
    const total = Object.values(counts).reduce((sum, count) => sum + count, 0);
    setText(
      summary,
      `${format.count(total)} fired in the range: ${SEVERITIES.map((severity) => `${format.count(counts[severity] ?? 0)} ${severity}`).join(', ')}`,
    );
    setText(note, `Buckets of ${widthText(series.interval)}, from the archive.`);
    element.dataset.fired = String(total);
  }

  function showError(err, range) {
    chart.setRange(range.start, range.end);
    chart.setData({ time: [], values: {} });
    setText(summary, '');
    const unavailable = err.status === 503 || err.status === 0;
    setText(note, unavailable ? `The alert timeline is not available yet (${err.message}).` : `The alert timeline could not be loaded: ${err.message}`);
  }

  return { element, picker, show, showError, destroy: () => chart.destroy() };
}
