// Charts, all drawn by uPlot: a time chart over a range with a few named series and markers
// where alerts fired or recovery actions ran, and a bar chart for distributions and
// comparisons. Coloured from the theme, resized with their container, redrawn when the
// theme changes.

import uPlot from 'uplot';
import { h } from './dom.js';
import { dateTime as formatTime } from './format.js';
import { onThemeChange, themeColour } from './theme.js';

/** The theme variables series take their colours from, in order. */
const SERIES_COLOURS = ['--series-1', '--series-2', '--series-3', '--series-4'];
const MARKER_COLOURS = { critical: '--bad', warning: '--warn', info: '--accent', recovery: '--ok', failed: '--bad' };

function axisStyle() {
  const gridColour = themeColour('--grid');
  return {
    stroke: themeColour('--muted'),
    grid: { stroke: gridColour, width: 1 },
    ticks: { stroke: gridColour, width: 1 },
    font: '11px system-ui, sans-serif',
  };
}

/** What every chart shares: a figure, a holder the plot fills, resizing and theming. */
class Chart {
  constructor({ title, description, height, className = 'chart' }) {
    this.height = height;
    this.plotHolder = h('div', { class: 'chart-plot' });
    this.element = h(
      'figure',
      { class: className, 'aria-label': `${title}: ${description}` },
      h('figcaption', { title: description }, title),
      this.plotHolder,
    );
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(this.plotHolder);
    this.offTheme = onThemeChange(() => this.rebuild());
    this.plot = null;
    this.columns = [[]];
  }

  /** Builds the plot once the holder has a width (it may be laid out after construction). */
  ensurePlot() {
    if (this.plot) return true;
    const width = this.plotHolder.clientWidth;
    if (width === 0) return false;
    this.plot = new uPlot(this.options(width), this.columns, this.plotHolder);
    return true;
  }

  resize() {
    const width = this.plotHolder.clientWidth;
    if (width === 0 || !this.ensurePlot()) return;
    if (Math.abs(this.plot.width - width) > 1) this.plot.setSize({ width, height: this.height });
  }

  rebuild() {
    this.plot?.destroy();
    this.plot = null;
    this.plotHolder.replaceChildren();
    this.ensurePlot();
  }

  destroy() {
    this.resizeObserver.disconnect();
    this.offTheme();
    this.plot?.destroy();
  }
}

export class TimeChart extends Chart {
  /**
   * `series`: [{ key, label, dash? }]; `format(value)` writes a y value for the axis and the
   * legend; `height` in CSS pixels.
   */
  constructor({ title, description, series, format, height = 170 }) {
    super({ title, description, height });
    this.series = series;
    this.format = format;
    this.range = { start: Date.now() - 15 * 60_000, end: Date.now() };
    this.columns = [[], ...series.map(() => [])];
    this.markers = [];
    this.markerLayer = null;
  }

  options(width) {
    const axis = axisStyle();
    return {
      width,
      height: this.height,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        x: { time: true, range: () => [this.range.start / 1000, this.range.end / 1000] },
        y: { range: (_plot, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [axis, { ...axis, size: 64, values: (_plot, ticks) => ticks.map((tick) => this.format(tick)) }],
      series: [
        { label: 'time', value: (_plot, seconds) => (seconds === null || seconds === undefined ? '–' : formatTime(seconds * 1000)) },
        ...this.series.map((series, index) => ({
          label: series.label,
          stroke: themeColour(SERIES_COLOURS[index % SERIES_COLOURS.length]),
          width: 1.5,
          dash: series.dash,
          spanGaps: false,
          points: { show: false },
          value: (_plot, value) => (value === null || value === undefined ? '–' : this.format(value)),
        })),
      ],
      hooks: { draw: [(plot) => this.placeMarkers(plot)] },
    };
  }

  /** `time` in ms, `values` one array per series key. */
  setData({ time, values }) {
    this.columns = [time.map((t) => t / 1000), ...this.series.map((series) => values[series.key] ?? [])];
    if (this.ensurePlot()) this.plot.setData(this.columns);
  }

  /** Shows [start, end] (ms), whatever the data covers. */
  setRange(start, end) {
    this.range = { start, end };
    this.element.dataset.rangeStart = String(Math.round(start));
    this.element.dataset.rangeEnd = String(Math.round(end));
    if (this.plot) this.plot.setScale('x', { min: start / 1000, max: end / 1000 });
  }

  /**
   * Marks instants on the chart: `[{ time (ms), label, kind }]`, kind `critical`, `warning`,
   * `info` (alerts), `recovery` or `failed` (recovery actions). Each is a line with the
   * label as its tooltip.
   */
  setMarkers(markers) {
    this.markers = Array.isArray(markers) ? markers : [];
    if (this.plot) this.placeMarkers(this.plot);
  }

  placeMarkers(plot) {
    if (!this.markerLayer || this.markerLayer.parentNode !== plot.over) {
      this.markerLayer = h('div', { class: 'chart-markers' });
      plot.over.append(this.markerLayer);
    }
    const shown = this.markers
      .filter((marker) => marker.time >= this.range.start && marker.time <= this.range.end)
      .map((marker) => {
        const left = plot.valToPos(marker.time / 1000, 'x');
        const line = h('span', {
          class: `chart-marker marker-${marker.kind}`,
          title: `${formatTime(marker.time)}: ${marker.label}`,
          'aria-label': marker.label,
          style: `left:${left.toFixed(1)}px;--marker:var(${MARKER_COLOURS[marker.kind] ?? '--accent'})`,
        });
        return line;
      });
    this.markerLayer.replaceChildren(...shown);
    this.element.dataset.markers = String(shown.length);
  }
}

/**
 * Bars over categories (`labels`), one or more series: a distribution's buckets or a
 * comparison between groups.
 */
export class BarChart extends Chart {
  constructor({ title, description, series, format, height = 180 }) {
    super({ title, description, height, className: 'chart bar-chart' });
    this.series = series;
    this.format = format;
    this.labels = [];
    this.columns = [[], ...series.map(() => [])];
  }

  options(width) {
    const axis = axisStyle();
    const bars = uPlot.paths.bars({ size: [0.7 / this.series.length, 60], align: 0 });
    return {
      width,
      height: this.height,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: { x: { time: false, range: (_plot) => [-0.5, Math.max(0, this.labels.length - 0.5)] }, y: { range: (_p, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { ...axis, values: (_plot, ticks) => ticks.map((tick) => (Number.isInteger(tick) ? this.labels[tick] ?? '' : '')), gap: 4 },
        { ...axis, size: 60, values: (_plot, ticks) => ticks.map((tick) => this.format(tick)) },
      ],
      series: [
        { label: '', value: (_plot, index) => this.labels[index] ?? '–' },
        ...this.series.map((series, index) => {
          const colour = themeColour(SERIES_COLOURS[index % SERIES_COLOURS.length]);
          return {
            label: series.label,
            stroke: colour,
            fill: `${colour}b3`,
            width: 1,
            paths: bars,
            points: { show: false },
            value: (_plot, value) => (value === null || value === undefined ? '–' : this.format(value)),
          };
        }),
      ],
    };
  }

  /** `labels` for the categories; `values` one array per series key. */
  setData({ labels, values }) {
    this.labels = labels;
    this.columns = [labels.map((_, index) => index), ...this.series.map((series) => values[series.key] ?? [])];
    this.element.dataset.bars = String(labels.length);
    if (this.ensurePlot()) {
      this.plot.setData(this.columns);
      this.plot.redraw();
    }
  }
}

/**
 * Inserts an empty point wherever `time` (ms) jumps by more than twice `intervalMs`, so a
 * chart shows a gap where nothing was recorded rather than a line across it.
 */
export function withGaps({ time, values }, intervalMs) {
  const gap = Math.max(2 * intervalMs, 1);
  const out = { time: [], values: Object.fromEntries(Object.keys(values).map((key) => [key, []])) };
  for (let i = 0; i < time.length; i++) {
    if (i > 0 && time[i] - time[i - 1] > gap) {
      out.time.push(time[i - 1] + intervalMs);
      for (const key of Object.keys(values)) out.values[key].push(null);
    }
    out.time.push(time[i]);
    for (const key of Object.keys(values)) out.values[key].push(values[key][i] ?? null);
  }
  return out;
}
