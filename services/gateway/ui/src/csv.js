// CSV export of what a table shows, made in the browser: RFC 4180 quoting, and text a
// spreadsheet would run as a formula (=, +, -, @ first) prefixed with ', since fleet data
// is untrusted. Lists the server holds whole (workers, finished tasks, history) link to
// the API's own ?format=csv instead, which exports every row, not one page.

function cell(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  const text = String(value);
  const formula = /^[=+\-@\t\r]/.test(text);
  const quoted = formula || /[",\r\n]/.test(text);
  const body = `${formula ? "'" : ''}${text.replaceAll('"', '""')}`;
  return quoted ? `"${body}"` : body;
}

/** `columns`: [{ label, csv(row) }]. */
export function toCsv(columns, rows) {
  const lines = [columns.map((column) => cell(column.label)).join(',')];
  for (const row of rows) lines.push(columns.map((column) => cell(column.csv(row))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** Offers `text` as a download named `filename`. */
export function download(filename, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
