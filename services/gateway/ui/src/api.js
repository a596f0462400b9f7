// The REST client: the gateway's public API as JSON. Failures become an ApiError whose
// message is plain text for the page to show (the server's `error` reason when it sent
// one).

/** Model families as the API names them; `other` is a model the family table does not know. */
export const MODEL_FAMILIES = ['text', 'vision', 'audio', 'multimodal', 'other'];

export class ApiError extends Error {
  constructor(path, status, reason) {
    super(status ? `${path}: ${status} ${reason}` : `${path}: ${reason}`);
    this.path = path;
    /** The HTTP status, or 0 when the request did not get an answer. */
    this.status = status;
    this.reason = reason;
  }
}

/** `path` with `query` (absent values left out) as search parameters. */
export function apiUrl(path, query = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
  }
  return url;
}

/** The session's CSRF token, sent with every write (see session.js). */
let csrfToken = null;
export function setCsrfToken(token) {
  csrfToken = token;
}

/** Called with a 401 from anything but the sign-in itself: the session has ended. */
let unauthorized = null;
export function onUnauthorized(callback) {
  unauthorized = callback;
}

async function send(path, url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(path, 0, 'the gateway did not answer');
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: the status line says enough.
  }
  if (response.status === 401 && path !== '/api/login') unauthorized?.();
  if (!response.ok) {
    const reason = typeof body?.error === 'string' ? body.error : response.statusText || 'request failed';
    throw new ApiError(path, response.status, reason);
  }
  if (response.status === 204) return null;
  if (body === null) throw new ApiError(path, response.status, 'the answer was not JSON');
  return body;
}

/** GET `path` (with `query` as search parameters) and return the parsed JSON. */
export function getJson(path, query = {}, { signal } = {}) {
  return send(path, apiUrl(path, query), { headers: { accept: 'application/json' }, signal });
}

/** POST (or `method`) a JSON body and return the parsed answer. */
export function sendJson(path, body, { method = 'POST' } = {}) {
  const headers = { accept: 'application/json', 'content-type': 'application/json' };
  if (csrfToken) headers['x-csrf-token'] = csrfToken;
  return send(path, apiUrl(path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}
