// Light and dark themes: a person's choice is kept in localStorage (until then, the
// configured theme, `gateway.theme`) and applied as `data-theme` on <html>, which the
// stylesheet's colour variables follow.

import { settings } from './config.js';

const KEY = 'fleetwatch.theme';
const listeners = new Set();

export function currentTheme() {
  const stored = safeGet(KEY);
  if (stored === 'light' || stored === 'dark') return stored;
  return settings().theme === 'light' ? 'light' : 'dark';
}

/** Applies the remembered theme; called before the page renders, so it does not flash. */
export function applyTheme() {
  document.documentElement.dataset.theme = currentTheme();
}

export function setTheme(theme) {
  try {
    localStorage.setItem(KEY, theme);
  } catch {
    // Storage can be disabled; the theme still changes for this page.
  }
  document.documentElement.dataset.theme = theme;
  for (const listener of listeners) listener(theme);
}

export function toggleTheme() {
  setTheme(document.documentElement.dataset.theme === 'light' ? 'dark' : 'light');
}

/** Calls `listener(theme)` on every change; returns the unsubscribe function. */
export function onThemeChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** A colour variable of the current theme, as the stylesheet defines it. */
export function themeColour(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function safeGet(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}
