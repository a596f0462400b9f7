// A data table: headers with tooltips that sort when clicked (the page decides how: in the
// URL and on the server, or here), rows set as text (a column may build a node, such as a
// link, from text), a caption line and an export button: the API's own CSV for lists the
// server holds whole, else a CSV of the rows shown. `sortedTable` sorts a few rows here
// with its sort in the URL, `pager` steps through a server's pages, `barCell` is a figure
// with a bar under it.

import { download, toCsv } from './csv.js';
import { h, replace, setText } from './dom.js';
import { readQuery, writeQuery } from './url-state.js';

/**
 * `columns`: [{ key, label, title, num?, sortable?, value(row) -> text | Node, csv?(row) }];
 * `sort`: { key, order } shown as sorted; `onSort(key, order)` when a header is clicked
 * (without it, headers do not sort); `csv`: { filename, href?(): URL } (href: the API's
 * export of every row; else the rows shown); `rowKey(row)` names a row (data-key).
 */
export function dataTable({ id, caption, columns, sort = null, onSort = null, csv = null, empty = 'Nothing to show.', rowKey = null }) {
  let current = sort;
  let rows = [];
  const body = h('tbody', {});
  const headers = columns.map((column) => {
    const sortable = onSort && column.sortable !== false;
    const label = sortable
      ? h('button', { type: 'button', class: 'sort', 'data-sort': column.key, title: `${column.title ?? column.label}. Click to sort.` }, column.label)
      : column.label;
    return h('th', { scope: 'col', class: column.num ? 'num' : null, title: column.title ?? column.label }, label);
  });
  const note = h('span', { class: 'muted small table-note' });
  const exportButton = csv
    ? h('button', { type: 'button', class: 'button small csv', title: csv.href ? 'Download every row the filters select, as CSV' : 'Download these rows as CSV' }, 'CSV')
    : null;
  const element = h(
    'div',
    { class: 'data-table' },
    h('div', { class: 'table-head' }, caption ? h('h2', { id: `${id}-title` }, caption) : null, note, exportButton),
    h('div', { class: 'scroll-x' }, h('table', { class: 'table', id }, h('thead', {}, h('tr', {}, headers)), body)),
  );

  exportButton?.addEventListener('click', () => {
    if (csv.href) {
      const link = h('a', { href: String(csv.href()), download: `${csv.filename}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
    } else {
      const exported = columns.filter((column) => column.csv !== null);
      const columnsCsv = exported.map((column) => ({ label: column.key, csv: column.csv ?? ((row) => row[column.key]) }));
      download(`${csv.filename}.csv`, toCsv(columnsCsv, rows));
    }
  });
  for (const [index, header] of headers.entries()) {
    const button = header.querySelector('button.sort');
    button?.addEventListener('click', () => {
      const key = columns[index].key;
      const order = current?.key === key && current.order === 'asc' ? 'desc' : current?.key === key ? 'asc' : columns[index].num ? 'desc' : 'asc';
      setSort({ key, order });
      onSort(key, order);
    });
  }

  function setSort(next) {
    current = next;
    for (const [index, header] of headers.entries()) {
      const sorted = current?.key === columns[index].key;
      if (sorted) header.setAttribute('aria-sort', current.order === 'asc' ? 'ascending' : 'descending');
      else header.removeAttribute('aria-sort');
    }
  }

  function update(next, noteText = '') {
    rows = Array.isArray(next) ? next : [];
    setText(note, noteText);
    if (rows.length === 0) {
      replace(body, h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, empty)));
      return;
    }
    replace(
      body,
      rows.map((row) =>
        h(
          'tr',
          { 'data-key': rowKey ? rowKey(row) : null },
          columns.map((column) => {
            const value = column.value ? column.value(row) : row[column.key];
            return h('td', { class: column.num ? 'num' : null }, value ?? '–');
          }),
        ),
      ),
    );
  }

  setSort(current);
  update([]);
  return { element, update, setSort, rows: () => rows };
}

/**
 * Forward and back through a server's pages: keeps the cursors seen, so "previous" returns
 * to the page before. `onPage(cursor)` is called with the cursor of the page to load.
 */
export function pager({ onPage }) {
  const cursors = [null];
  let index = 0;
  let next = null;
  const previous = h('button', { type: 'button', class: 'button', title: 'The page before' }, '← Previous');
  const forward = h('button', { type: 'button', class: 'button', title: 'The next page' }, 'Next →');
  const label = h('span', { class: 'muted small pager-label' });
  const element = h('div', { class: 'pager' }, previous, label, forward);
  previous.addEventListener('click', () => {
    if (index === 0) return;
    index -= 1;
    onPage(cursors[index]);
  });
  forward.addEventListener('click', () => {
    if (!next) return;
    cursors.length = index + 1;
    cursors.push(next);
    index += 1;
    onPage(cursors[index]);
  });
  return {
    element,
    /** The page shown has `count` rows of `total`, `limit` a page; `nextCursor` follows it. */
    show({ count, total, limit, nextCursor }) {
      next = nextCursor ?? null;
      previous.disabled = index === 0;
      forward.disabled = !next;
      const first = index * limit + 1;
      setText(label, count === 0 ? `none of ${total.toLocaleString('en-GB')}` : `${first.toLocaleString('en-GB')}–${(first + count - 1).toLocaleString('en-GB')} of ${total.toLocaleString('en-GB')}`);
    },
    /** Back to the first page (the filters changed). */
    reset() {
      cursors.length = 1;
      index = 0;
      next = null;
    },
    cursor: () => cursors[index],
  };
}

function compare(left, right) {
  const missing = (value) => value === null || value === undefined || Number.isNaN(value);
  if (missing(left) || missing(right)) return missing(left) ? (missing(right) ? 0 : 1) : -1;
  if (typeof left === 'string' || typeof right === 'string') return String(left).localeCompare(String(right));
  return left - right;
}

/**
 * `columns` as dataTable takes them, each with an optional `sortValue(row)` (default
 * `row[key]`); `urlKey` names the sort in the URL; `sort` is the default `{ key, order }`.
 * `update(rows, note)` shows rows in the chosen order.
 */
export function sortedTable({ id, caption, columns, urlKey, sort: fallback, csv, empty, rowKey = (row) => row.key }) {
  const parse = (text) => {
    const [key, order] = String(text ?? '').split('.');
    const column = columns.find((candidate) => candidate.key === key);
    return column && column.sortable !== false && (order === 'asc' || order === 'desc') ? { key, order } : null;
  };
  let sort = parse(readQuery()[urlKey]) ?? fallback;
  let rows = [];
  let note = '';
  // A column sorted by a value of its own exports that value.
  const exported = columns.map((column) => (column.csv === undefined && column.sortValue ? { ...column, csv: column.sortValue } : column));
  const table = dataTable({
    id,
    caption,
    columns: exported,
    sort,
    onSort: (key, order) => {
      sort = { key, order };
      const isDefault = key === fallback.key && order === fallback.order;
      writeQuery({ [urlKey]: isDefault ? null : `${key}.${order}` });
      draw();
    },
    csv,
    empty,
    rowKey,
  });

  function draw() {
    const column = columns.find((candidate) => candidate.key === sort.key);
    const value = column?.sortValue ?? ((row) => row[sort.key]);
    const direction = sort.order === 'asc' ? 1 : -1;
    const sorted = rows
      .map((row) => ({ row, value: value(row) }))
      .sort((a, b) => {
        const order = compare(a.value, b.value);
        // Missing values last whichever the direction.
        const missing = a.value === null || a.value === undefined || b.value === null || b.value === undefined;
        return (missing ? order : direction * order) || String(rowKey(a.row)).localeCompare(String(rowKey(b.row)));
      })
      .map((entry) => entry.row);
    table.update(sorted, note);
  }

  return {
    element: table.element,
    update(next, noteText = '') {
      rows = Array.isArray(next) ? next : [];
      note = noteText;
      draw();
    },
    rows: () => rows,
  };
}

/**
 * A figure with a bar under it: `share` 0..1 of the bar's full width; `kind` one of
 * `bad`, `warn`, `ok` (app.css .bar-*; `bar-ok` and so on are taken too), or none for the
 * series colour.
 */
export function barCell(text, share, { kind = null, title = null } = {}) {
  const width = Number.isFinite(share) ? Math.max(0, Math.min(1, share)) * 100 : 0;
  kind = kind?.replace(/^bar-/, '') || null;
  return h(
    'span',
    { class: 'bar-cell', title },
    h('span', { class: 'bar-text' }, text),
    h('span', { class: `bar${kind ? ` bar-${kind}` : ''}`, style: `width:${width.toFixed(1)}%`, 'aria-hidden': 'true' }),
  );
}
