// The fault-tolerance page's live tables, from GET /api/fault-tolerance: failure rates by
// hardware kind, by model and by hardware x family (bars to scale with the worst), each
// recovery action and how well it worked, how retries end, and the most frequent errors.
// Every table sorts by any column (in the URL) and exports the rows shown as CSV; a text
// filter and a least-runs filter (both in the URL) apply to all of them.

import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { barCell, sortedTable } from '../table.js';

const rateKind = (rate) => (rate >= 0.2 ? 'bad' : rate >= 0.05 ? 'warn' : 'ok');

/** The columns every failure-rate table has after its key columns. */
function rateColumns(what, worst) {
  return [
    {
      key: 'rate',
      label: 'Failure rate',
      title: `failed / (completed + failed) of tasks on this ${what}, since the stream began; the bar is to scale with the highest rate shown`,
      num: true,
      value: (row) => barCell(format.ratio(row.rate), row.rate / worst(), { kind: rateKind(row.rate), title: `${format.count(row.failed)} of ${format.count(row.runs)} runs failed` }),
    },
    { key: 'failed', label: 'Failed', title: 'Runs that failed (a retried task counts once per failure)', num: true, value: (row) => format.count(row.failed) },
    { key: 'runs', label: 'Runs', title: 'Runs that finished: completed + failed', num: true, value: (row) => format.count(row.runs) },
  ];
}

/**
 * The failure-rate tables, the recovery actions, the retries and the top errors.
 * `filters()` is `{ search, minRuns }`.
 */
export function faultTables({ filters }) {
  const worst = { hardware: 1, model: 1, pair: 1 };
  const byHardware = sortedTable({
    id: 'ft-by-hardware',
    caption: 'By hardware',
    urlKey: 'hardware_sort',
    sort: { key: 'rate', order: 'desc' },
    csv: { filename: 'failure-rate-by-hardware' },
    empty: 'No runs finished yet.',
    rowKey: (row) => row.key,
    columns: [{ key: 'key', label: 'Hardware', title: 'The kind of accelerator of the worker the task ran on' }, ...rateColumns('hardware kind', () => worst.hardware)],
  });
  const byModel = sortedTable({
    id: 'ft-by-model',
    caption: 'By model',
    urlKey: 'model_sort',
    sort: { key: 'rate', order: 'desc' },
    csv: { filename: 'failure-rate-by-model' },
    empty: 'No runs finished yet.',
    rowKey: (row) => row.key,
    columns: [{ key: 'key', label: 'Model', title: 'The model the task benchmarks' }, ...rateColumns('model', () => worst.model)],
  });
  const byPair = sortedTable({
    id: 'ft-by-pair',
    caption: 'By hardware × family',
    urlKey: 'pair_sort',
    sort: { key: 'rate', order: 'desc' },
    csv: { filename: 'failure-rate-by-hardware-family' },
    empty: 'No runs finished yet.',
    rowKey: (row) => `${row.hardware}/${row.family}`,
    columns: [
      { key: 'hardware', label: 'Hardware', title: 'The kind of accelerator the task ran on' },
      {
        key: 'family',
        label: 'Family',
        title: 'The model family of the task; links to its task type',
        value: (row) => h('a', { href: `/task-types/${encodeURIComponent(row.family)}` }, String(row.family)),
      },
      ...rateColumns('hardware kind and family', () => worst.pair),
    ],
  });

  const actions = sortedTable({
    id: 'ft-actions',
    caption: 'Recovery actions',
    urlKey: 'action_sort',
    sort: { key: 'taken', order: 'desc' },
    csv: { filename: 'recovery-actions' },
    empty: 'No recovery action has been taken.',
    rowKey: (row) => row.action,
    columns: [
      { key: 'action', label: 'Action', title: 'What the coordinator (or another component) did to recover: the recovery_action events\' action' },
      { key: 'taken', label: 'Taken', title: 'How often it was taken, since the stream began', num: true, value: (row) => format.count(row.taken) },
      { key: 'succeeded', label: 'Worked', title: 'How often it worked', num: true, value: (row) => format.count(row.succeeded) },
      {
        key: 'success_rate',
        label: 'Success',
        title: 'worked / taken: how well it works',
        num: true,
        value: (row) => barCell(format.ratio(row.success_rate), row.success_rate, { kind: row.success_rate >= 0.9 ? 'ok' : row.success_rate >= 0.5 ? 'warn' : 'bad', title: `${format.count(row.succeeded)} of ${format.count(row.taken)} worked` }),
      },
    ],
  });

  let errorTotal = 1;
  const errors = sortedTable({
    id: 'ft-top-errors',
    caption: 'Most frequent errors',
    urlKey: 'error_sort',
    sort: { key: 'count', order: 'desc' },
    csv: { filename: 'top-errors' },
    empty: 'No task has failed.',
    rowKey: (row) => row.error,
    columns: [
      { key: 'error', label: 'Error', title: 'The error text tasks failed with, as sent (cut at 200 characters; past 64 texts the rest count as "(other errors)")', value: (row) => h('span', { class: 'failure-error' }, String(row.error)) },
      {
        key: 'count',
        label: 'Failures',
        title: 'Failures with this text since the stream began; the bar is its share of the failures listed',
        num: true,
        value: (row) => barCell(format.count(row.count), row.count / errorTotal, { kind: 'bad', title: `${format.ratio(row.count / errorTotal)} of the failures listed` }),
      },
    ],
  });

  const retryBar = h('div', { class: 'retry-bar', id: 'ft-retry-bar', role: 'img', 'aria-label': 'How retries end' });
  const retryText = h('p', { class: 'small', id: 'ft-retry-text' });
  const retries = h(
    'div',
    { class: 'retries', title: 'Retried tasks that then completed (green), and those that failed again (red)' },
    h('h2', { id: 'ft-retries-title' }, 'How retries end'),
    retryBar,
    retryText,
  );

  function update(faults) {
    const { search, minRuns } = filters();
    const needle = search.trim().toLowerCase();
    const matches = (...texts) => !needle || texts.some((text) => String(text ?? '').toLowerCase().includes(needle));
    const enough = (row) => (row.runs ?? 0) >= minRuns;
    const pick = (rows, keys) => (Array.isArray(rows) ? rows : []).filter((row) => enough(row) && matches(...keys(row)));
    const hardware = pick(faults.failure_rate_by_hardware, (row) => [row.key]);
    const models = pick(faults.failure_rate_by_model, (row) => [row.key]);
    const pairs = pick(faults.failure_rate_by_pair, (row) => [row.hardware, row.family]);
    const highest = (rows) => Math.max(0.0001, ...rows.map((row) => row.rate ?? 0));
    worst.hardware = highest(hardware);
    worst.model = highest(models);
    worst.pair = highest(pairs);
    const note = (shown, all) => (shown.length === (all?.length ?? 0) ? '' : `${shown.length} of ${all?.length ?? 0} shown`);
    byHardware.update(hardware, note(hardware, faults.failure_rate_by_hardware));
    byModel.update(models, note(models, faults.failure_rate_by_model));
    byPair.update(pairs, note(pairs, faults.failure_rate_by_pair));

    const actionRows = (faults.recovery_by_action ?? []).filter((row) => matches(row.action));
    actions.update(actionRows, note(actionRows, faults.recovery_by_action));
    const errorRows = (faults.top_errors ?? []).filter((row) => matches(row.error));
    errorTotal = Math.max(1, (faults.top_errors ?? []).reduce((total, row) => total + (row.count ?? 0), 0));
    errors.update(errorRows, note(errorRows, faults.top_errors));

    const recovered = faults.retries_recovered ?? 0;
    const again = faults.retries_failed_again ?? 0;
    const ended = recovered + again;
    replace(
      retryBar,
      ended === 0
        ? h('span', { class: 'retry-none' })
        : [
          h('span', { class: 'retry-ok', style: `width:${((recovered / ended) * 100).toFixed(1)}%`, title: `${format.count(recovered)} completed after a retry` }),
          h('span', { class: 'retry-bad', style: `width:${((again / ended) * 100).toFixed(1)}%`, title: `${format.count(again)} failed again after a retry` }),
        ],
    );
    setText(
      retryText,
      ended === 0
        ? `No retried task has ended yet (${format.count(faults.tasks_retried)} retried).`
        : `${format.count(recovered)} completed after a retry, ${format.count(again)} failed again: ${format.ratio(faults.retry_success_rate)} of retries worked (${format.count(faults.tasks_retried)} retries in all).`,
    );
  }

  return {
    rates: [byHardware.element, byModel.element, byPair.element],
    actions: actions.element,
    retries,
    errors: errors.element,
    update,
  };
}
