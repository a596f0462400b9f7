// Who is looking: read once from /api/session when the app starts. It says whether this
// gateway asks anyone to sign in, as whom the page is signed in, and the CSRF token its
// writes carry (api.js sends it). Pages ask `canWrite()` before they offer an action.

import { getJson, setCsrfToken } from './api.js';

let current = { auth_required: false, user: null, role: null, via: null, csrf_token: null };

/** Reads the session from the gateway; on failure the page goes on as if nobody is asked. */
export async function loadSession() {
  try {
    current = await getJson('/api/session');
  } catch {
    // The gateway did not answer: the first API call will say so on the page.
  }
  setCsrfToken(current.csrf_token ?? null);
  return current;
}

export function session() {
  return current;
}

/** Whether this page may change things (acknowledge, silence, ...): an operator, or nobody asked. */
export function canWrite() {
  return !current.auth_required || current.role === 'operator';
}

/** Whether writes carry the caller's own name, so nobody types one. */
export function signedInName() {
  return current.auth_required && current.user ? current.user : null;
}

/** `/login?next=<here>`: where a page goes when its sign-in has ended. */
export function loginUrl(next = location.pathname + location.search) {
  return `/login?next=${encodeURIComponent(next)}`;
}

/**
 * Only a page of this site, so a crafted link cannot send someone elsewhere after signing
 * in: the browser's own reading of it (which drops tabs and newlines, and takes `\` for `/`)
 * must stay on this origin.
 */
export function safeNext(next) {
  if (typeof next !== 'string' || !next.startsWith('/')) return '/';
  try {
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : '/';
  } catch {
    return '/';
  }
}
