// A page's view in its URL: filters, sorting, paging and time ranges live in the query
// string, so a link shares the view and a reload keeps it. Changes replace the history
// entry (the back button leaves the page, not a filter).

/** The query string's values, as a plain object of strings. */
export function readQuery() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

/** Sets (or, for null/undefined/'', removes) each key of `changes` in the URL. */
export function writeQuery(changes) {
  const params = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === undefined || value === '') params.delete(key);
    else params.set(key, String(value));
  }
  const search = params.toString();
  const url = `${location.pathname}${search ? `?${search}` : ''}${location.hash}`;
  if (url !== `${location.pathname}${location.search}${location.hash}`) history.replaceState(history.state, '', url);
}
