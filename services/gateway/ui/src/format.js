// Formatting of the figures the pages show: counts, rates, percentages, durations and times.
// Every function takes a number that may be missing (null, undefined, NaN) and then shows "–".

const DASH = '–';
const integerFormat = new Intl.NumberFormat('en-GB', { maximumFractionDigits: 0 });
const decimalFormat = new Intl.NumberFormat('en-GB', { maximumFractionDigits: 1 });

const missing = (value) => value === null || value === undefined || Number.isNaN(value);

/** 12,345 */
export function count(value) {
  return missing(value) ? DASH : integerFormat.format(value);
}

/** 12.3 below 100, 1,234 above. */
export function number(value) {
  if (missing(value)) return DASH;
  return Math.abs(value) < 100 ? decimalFormat.format(value) : integerFormat.format(value);
}

/** A percentage given as 0..100: "85%" ("85.5%" under 10). */
export function percent(value) {
  if (missing(value)) return DASH;
  return `${Math.abs(value) < 10 && value !== 0 ? decimalFormat.format(value) : integerFormat.format(value)}%`;
}

/** A share given as 0..1: "98.5%". */
export function ratio(value) {
  if (missing(value)) return DASH;
  const pct = value * 100;
  return `${pct === 100 || pct === 0 ? integerFormat.format(pct) : decimalFormat.format(pct)}%`;
}

/** A duration in ms: "850 ms", "12.3 s", "4 min 10 s", "3 h 5 min", "2 d 4 h". */
export function duration(ms) {
  if (missing(ms)) return DASH;
  if (ms < 1000) return `${integerFormat.format(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${decimalFormat.format(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.floor(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** Clock time of an epoch-ms instant: "14:05:09". */
export function time(ms) {
  if (missing(ms)) return DASH;
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

/** Date and time of an epoch-ms instant: "12 Mar 14:05". */
export function dateTime(ms) {
  if (missing(ms)) return DASH;
  return new Date(ms).toLocaleString('en-GB', {
    day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hour12: false,
  });
}

/** How long ago an epoch-ms instant was, relative to `now`: "5 s ago", "3 min ago". */
export function ago(ms, now = Date.now()) {
  if (missing(ms)) return DASH;
  const seconds = Math.max(0, now - ms) / 1000;
  if (seconds < 1) return 'just now';
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** A duration in ms, as short as it goes: "250 ms", "2.5 s", "1 min", "1 h 30 min". */
export function shortDuration(ms) {
  if (missing(ms)) return DASH;
  if (ms < 1000) return `${integerFormat.format(ms)} ms`;
  if (ms < 60_000) return `${decimalFormat.format(ms / 1000)} s`;
  if (ms < 3_600_000) {
    const minutes = ms / 60_000;
    return Number.isInteger(minutes) ? `${minutes} min` : `${decimalFormat.format(minutes)} min`;
  }
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.round((ms % 3_600_000) / 60_000);
  return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
}
