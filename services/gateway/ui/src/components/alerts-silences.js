// The silences not yet over (GET /api/silences): what each matches, who made it and why,
// its window, how many open alerts it silences now, and an End button
// (DELETE /api/silences/{id}?by=<who>). A refusal is shown as the server gave it.

import { sendJson } from '../api.js';
import { h, setText } from '../dom.js';
import * as format from '../format.js';
import { canWrite } from '../session.js';
import { dataTable } from '../table.js';
import { onChange, rememberWho, whoInput } from './alerts-common.js';

function matcherText(matchers) {
  return (Array.isArray(matchers) ? matchers : []).map((matcher) => `${matcher.name} ${matcher.op ?? '='} ${matcher.value}`).join(', ') || 'everything';
}

/** What is left of a silence, to the minute: "45 min", "3 h 10 min", "6 d 2 h". */
function remaining(ms) {
  const minutes = Math.ceil(Math.max(0, ms) / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

function stateOf(silence, now) {
  if (silence.deleted) return 'ended';
  if (silence.starts_at > now) return 'scheduled';
  if (silence.ends_at <= now) return 'over';
  return 'active';
}

export function silencesPanel({ onChanged }) {
  let silences = [];
  let firing = [];
  const redraw = onChange();
  const who = whoInput({ id: 'silence-who' });
  const status = h('p', { class: 'small action-status', id: 'silence-status', role: 'status' });
  const error = h('p', { class: 'error small', id: 'silence-error', role: 'alert' });
  const loadError = h('p', { class: 'error small', id: 'silences-load-error', role: 'alert' });

  async function end(silence) {
    const by = who.input.value.trim();
    setText(status, '');
    setText(error, '');
    if (!by) {
      setText(error, 'Say who ends it first (the Who field beside Silences).');
      who.input.focus();
      return;
    }
    rememberWho(by);
    try {
      await sendJson(`/api/silences/${encodeURIComponent(silence.silence_id)}`, { by }, { method: 'DELETE' });
      setText(status, `Silence ${silence.silence_id} ended by ${by}.`);
      onChanged?.();
    } catch (err) {
      setText(error, err.message);
    }
  }

  const table = dataTable({
    id: 'silences',
    caption: 'Silences',
    columns: [
      { key: 'matchers', label: 'Matches', title: 'The labels an alert must have to be silenced (every matcher)', value: (s) => h('span', { class: 'mono' }, matcherText(s.matchers)), csv: (s) => matcherText(s.matchers) },
      { key: 'created_by', label: 'By', title: 'Who made it' },
      { key: 'comment', label: 'Comment', title: 'Why', value: (s) => s.comment || h('span', { class: 'muted' }, '–') },
      { key: 'starts_at', label: 'From', title: 'When it starts', value: (s) => h('span', { title: format.dateTime(s.starts_at) }, format.time(s.starts_at)) },
      {
        key: 'ends_at',
        label: 'Until',
        title: 'When it ends by itself',
        value: (s) => h('span', { title: format.dateTime(s.ends_at) }, `${format.dateTime(s.ends_at)} `, h('span', { class: 'silence-left', 'data-ends': s.ends_at })),
        csv: (s) => s.ends_at,
      },
      {
        key: 'state',
        label: 'State',
        title: 'active, scheduled (starts later) or ended (by someone)',
        value: (s) => {
          const state = stateOf(s, Date.now());
          return state === 'ended'
            ? h('span', { class: 'badge', title: `Ended ${format.dateTime(s.deleted.at)}` }, `ended by ${s.deleted.by}`)
            : h('span', { class: `badge silence-${state}` }, state);
        },
        csv: (s) => stateOf(s, Date.now()),
      },
      {
        key: 'silencing',
        label: 'Silencing',
        num: true,
        title: 'Open alerts it matches now',
        value: (s) => h('span', { class: 'silencing', 'data-silence': s.silence_id }),
        csv: (s) => firing.filter((alert) => alert.silenced_by?.includes(s.silence_id)).length,
      },
      {
        key: 'end',
        label: '',
        title: 'End it now',
        csv: null,
        value: (s) =>
          s.deleted
            ? ''
            : canWrite()
              ? h('button', { type: 'button', class: 'button small silence-end', title: `End silence ${s.silence_id} now`, onclick: () => end(s) }, 'End')
              : h('span', { class: 'muted small', title: 'Only operators end silences' }, 'in force'),
      },
      { key: 'silence_id', label: 'Id', title: 'The silence id', value: (s) => h('span', { class: 'mono small' }, s.silence_id) },
    ],
    csv: { filename: 'silences' },
    empty: 'No silence is in force.',
    rowKey: (s) => s.silence_id,
  });

  const element = h(
    'section',
    { class: 'panel silences', id: 'silences-panel', 'aria-label': 'Silences' },
    table.element,
    h('div', { class: 'filters' }, h('label', { for: 'silence-who' }, 'Who', who.input), h('span', { class: 'muted small' }, 'Silences are made from an alert ("Silence similar"); an alert they match still shows, and notifies nobody.')),
    loadError,
    status,
    error,
  );

  function draw() {
    const sorted = [...silences].sort((a, b) => (a.deleted ? 1 : 0) - (b.deleted ? 1 : 0) || a.ends_at - b.ends_at);
    redraw([sorted], () => table.update(sorted, sorted.length ? `${format.count(sorted.filter((s) => !s.deleted).length)} in force` : ''));
    // What moves on without the list changing is set in place (a redraw could lose a click on End).
    const now = Date.now();
    for (const span of table.element.querySelectorAll('span.silence-left[data-ends]')) {
      setText(span, `(in ${remaining(Number(span.dataset.ends) - now)})`);
    }
    for (const span of table.element.querySelectorAll('span.silencing[data-silence]')) {
      setText(span, format.count(firing.filter((alert) => alert.silenced_by?.includes(span.dataset.silence)).length));
    }
  }

  return {
    element,
    update(answer, openAlerts) {
      setText(loadError, '');
      silences = Array.isArray(answer?.silences) ? answer.silences : [];
      firing = Array.isArray(openAlerts) ? openAlerts : [];
      draw();
    },
    setFiring(openAlerts) {
      firing = Array.isArray(openAlerts) ? openAlerts : [];
      draw();
    },
    showError(err) {
      setText(loadError, `The silences could not be read: ${err.message}`);
    },
    destroy: () => who.destroy(),
  };
}
