// Time-series charts, all drawn by uPlot: a chart over a time range with a few named series,
// coloured from the theme, resized with its container, and redrawn when the theme changes.

import uPlot from 'uplot';
import { h } from './dom.js';
import { dateTime as formatTime } from './format.js';
import { onThemeChange, themeColour } from './theme.js';

/** The theme variables series take their colours from, in order. */
const SERIES_COLOURS = ['--series-1', '--series-2', '--series-3', '--series-4'];

export class TimeChart {
  /**
   * `series`: [{ key, label, dash? }]; `format(value)` writes a y value for the axis and the
   * legend; `height` in CSS pixels.
   */
  constructor({ title, description, series, format, height = 170 }) {
    this.series = series;
    this.format = format;
    this.height = height;
    this.range = { start: Date.now() - 15 * 60_000, end: Date.now() };
    this.columns = [[], ...series.map(() => [])];
    this.plotHolder = h('div', { class: 'chart-plot' });
    this.element = h(
      'figure',
      { class: 'chart', 'aria-label': `${title}: ${description}` },
      h('figcaption', { title: description }, title),
      this.plotHolder,
    );
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(this.plotHolder);
    this.offTheme = onThemeChange(() => this.rebuild());
    this.plot = null;
  }

  options(width) {
    const axisColour = themeColour('--muted');
    const gridColour = themeColour('--grid');
    const axis = {
      stroke: axisColour,
      grid: { stroke: gridColour, width: 1 },
      ticks: { stroke: gridColour, width: 1 },
      font: '11px system-ui, sans-serif',
    };
    return {
      width,
      height: this.height,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        x: { time: true, range: () => [this.range.start / 1000, this.range.end / 1000] },
        y: { range: (_plot, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        axis,
        { ...axis, size: 64, values: (_plot, ticks) => ticks.map((tick) => this.format(tick)) },
      ],
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
    };
  }

  /** Builds the plot once the holder has a width (it may be laid out after construction). */
  ensurePlot() {
    if (this.plot) return true;
    const width = this.plotHolder.clientWidth;
    if (width === 0) return false;
    this.plot = new uPlot(this.options(width), this.columns, this.plotHolder);
    return true;
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

  resize() {
    const width = this.plotHolder.clientWidth;
    if (width === 0) return;
    if (!this.ensurePlot()) return;
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
