// The topology page (/topology): the fleet's structure, readable at any size. Workers are
// grouped by hardware kind and the tags that set them apart (GET /api/topology), drawn as a
// map (cytoscape): kinds as boxes of their groups, task families beside them with edges to
// the kinds they run on. Clicking a group opens it into its busiest workers
// (GET /api/topology/workers, at most `max_workers_shown`, and a "+N more" node); clicking a
// worker opens its page. Beside the map every figure is also text: the groups (sortable,
// CSV), where each family runs, the families, the capability distribution and the opened
// groups' workers. Redrawn at the refresh rate without moving the map. In the URL: the
// groups opened (`?open=cuda/pool-a,cpu/-`), the hardware filter (`?kind=`), the search
// (`?q=`) and the tables' sorting (`?sort=&order=`, `?psort=&porder=`).

import { getJson } from '../api.js';
import { topologyGraph } from '../components/topology-graph.js';
import { capabilityTables, familiesTable, groupsTable, openWorkersTable, placementsTable } from '../components/topology-tables.js';
import { h, replace, setText } from '../dom.js';
import * as format from '../format.js';
import { currentRate, refresher } from '../refresh.js';
import { readQuery, writeQuery } from '../url-state.js';

const GROUP_SORTS = ['hardware', 'group', 'workers', 'idle', 'busy', 'overloaded', 'disconnected', 'slots', 'running', 'queued', 'use', 'cpu_pct'];
const PLACEMENT_SORTS = ['family', 'hardware', 'runs', 'score', 'running'];

/** A group id in the `open` list: its commas (and the escape's own %) escaped. */
export function encodeOpen(ids) {
  return ids.map((id) => id.replaceAll('%', '%25').replaceAll(',', '%2C')).join(',');
}

export function decodeOpen(text) {
  if (!text) return [];
  const ids = text.split(',').map((part) => part.replace(/%(25|2C)/gi, (escape) => (escape === '%25' ? '%' : ','))).filter(Boolean);
  return [...new Set(ids)];
}

function sortFrom(key, order, allowed, fallback) {
  if (!allowed.includes(key)) return fallback;
  return { key, order: order === 'asc' ? 'asc' : 'desc' };
}

function problem(err) {
  if (err.status === 503) return 'The gateway has no worker figures yet: is the processor running?';
  return err.message;
}

export function mount(root, app) {
  const maxShown = Math.max(1, Number(app.settings.max_workers_shown) || 50);
  const query = readQuery();
  const state = {
    kind: query.kind ?? '',
    search: query.q ?? '',
    open: decodeOpen(query.open),
    sort: sortFrom(query.sort, query.order, GROUP_SORTS, { key: 'workers', order: 'desc' }),
    psort: sortFrom(query.psort, query.porder, PLACEMENT_SORTS, { key: 'runs', order: 'desc' }),
  };
  /** The last /api/topology answer, and each opened group's page of workers. */
  let topology = null;
  const groupPages = new Map();
  const groupErrors = new Map();
  /** Each opened group's workers in their places on the map, so a refresh moves none. */
  const slots = new Map();
  let closedNote = '';
  let mounted = true;

  // Heading, figures, messages.
  const summary = h('p', { class: 'muted', id: 'topology-summary' }, 'loading…');
  const updated = h('span', { class: 'muted small', id: 'topology-updated', title: 'The tick the worker figures are as of' });
  const error = h('p', { class: 'error', role: 'alert', id: 'topology-error' });
  const notice = h('p', { class: 'muted small topology-notice', id: 'topology-notice' });
  const cards = {};
  const card = (key, label, title) => {
    cards[key] = h('dd', { id: `topology-figure-${key}` }, '–');
    return h('div', { class: 'card', title }, h('dt', {}, label), cards[key]);
  };
  const cardList = h(
    'dl',
    { class: 'cards', id: 'topology-cards' },
    card('workers', 'Workers', 'Workers known, connected or not'),
    card('kinds', 'Hardware kinds', 'Kinds of hardware in the fleet'),
    card('groups', 'Groups', 'Workers grouped by kind and the tags that set them apart'),
    card('slots', 'Slots', 'Task slots of the connected workers'),
    card('running', 'Running', 'Tasks running on workers now'),
    card('queued', 'Waiting', 'Tasks waiting on workers now'),
    card('cpu', 'Mean CPU', 'Mean CPU over the connected workers'),
    card('families', 'Task families', 'Model families seen in the tasks'),
  );

  // Filters, in the URL.
  const kindSelect = h('select', { id: 'topology-kind', title: 'Show one hardware kind only (on the map and in the tables)' }, h('option', { value: '' }, 'all'));
  const searchInput = h('input', { type: 'search', id: 'topology-search', placeholder: 'group or tag', value: state.search, title: 'Show the groups whose id or tags contain this text' });
  const fitButton = h('button', { type: 'button', class: 'button small', id: 'topology-fit', title: 'Zoom the map to show all of it' }, 'Fit');
  const closeAll = h('button', { type: 'button', class: 'button small', id: 'topology-close-all', title: 'Close every opened group' }, 'Close all');
  const filters = h(
    'div',
    { class: 'filters' },
    h('label', { for: 'topology-kind' }, 'Hardware', kindSelect),
    h('label', { for: 'topology-search' }, 'Search', searchInput),
    fitButton,
    closeAll,
  );

  const follow = (path) => {
    // Through the app's link handling (main.js), after cytoscape's own event has finished.
    setTimeout(() => {
      if (!mounted) return;
      const link = h('a', { href: path, hidden: true });
      root.append(link);
      link.click();
      link.remove();
    }, 0);
  };

  const graph = topologyGraph({
    onGroup: (id) => toggle(id),
    onWorker: (id) => follow(`/workers/${encodeURIComponent(id)}`),
    onMore: (id) => follow(moreHref(id)),
    onFamily: (family) => follow(`/task-types/${encodeURIComponent(family)}`),
  });
  const mapEmpty = h('p', { class: 'empty', id: 'topology-empty', hidden: true });
  const legend = h(
    'ul',
    { class: 'legend topology-legend', 'aria-label': 'How to read the map' },
    ['idle', 'busy', 'overloaded', 'disconnected'].map((status) =>
      h('li', { class: `status-${status}`, title: `The share of a group's workers that are ${status}` }, h('span', { class: 'swatch' }), status),
    ),
    h('li', { title: 'A group\'s rim: its mean CPU' }, h('span', { class: 'topology-rim rim-normal' }), h('span', { class: 'topology-rim rim-raised' }), h('span', { class: 'topology-rim rim-high' }), 'CPU under 60%, 60–85%, over 85%'),
    h('li', { title: 'An edge from a task family to a hardware kind: the tasks of the family that ran there' }, h('span', { class: 'topology-edge edge-running' }), 'runs there now (label: tasks running); width: runs so far; dashed: no run finished yet'),
  );
  const mapNote = h('p', { class: 'muted small', id: 'topology-map-note' });
  const mapPanel = h(
    'section',
    { class: 'panel topology-map', 'aria-labelledby': 'topology-map-title' },
    h(
      'div',
      { class: 'panel-head' },
      h('h2', { id: 'topology-map-title', title: 'Hardware kinds (boxes) hold their groups: ring slices are the workers by status, ring size the group\'s size, rim colour its mean CPU. Task families on the left, with an edge to each kind they ran on. Click a group to show its workers, a worker to open its page; scroll to zoom, drag to pan.' }, 'Map'),
      filters,
    ),
    mapEmpty,
    graph.element,
    legend,
    mapNote,
  );

  const groups = groupsTable({
    sort: state.sort,
    onSort: (key, order) => {
      state.sort = { key, order };
      writeQuery({ sort: key, order });
      draw();
    },
    onToggle: (id) => toggle(id),
  });
  const workersTable = openWorkersTable();
  const moreList = h('ul', { class: 'topology-more', id: 'topology-more' });
  const placements = placementsTable({
    sort: state.psort,
    onSort: (key, order) => {
      state.psort = { key, order };
      writeQuery({ psort: key, porder: order });
      draw();
    },
  });
  const families = familiesTable();
  const capabilities = capabilityTables();

  root.append(
    h(
      'div',
      { class: 'page topology' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Topology'), summary, updated),
      error,
      notice,
      cardList,
      mapPanel,
      h('section', { class: 'panel', 'aria-label': 'Groups' }, groups.element),
      h('section', { class: 'panel', 'aria-label': 'Workers of the opened groups' }, workersTable.element, moreList),
      h(
        'div',
        { class: 'columns-2' },
        h('section', { class: 'panel topology-tasks', 'aria-label': 'Task families and where they run' }, placements.element, families.element),
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'topology-capabilities-title' },
          h('h2', { id: 'topology-capabilities-title', title: 'How many workers offer each capability (over the workers that reported theirs)' }, 'Hardware capabilities'),
          capabilities.element,
        ),
      ),
    ),
  );

  function groupById(id) {
    for (const kind of topology?.kinds ?? []) {
      for (const group of kind.groups) if (group.id === id) return { kind, group };
    }
    return null;
  }

  function moreHref(id) {
    const found = groupById(id);
    const hardware = found?.kind.hardware ?? id.split('/')[0];
    const params = new URLSearchParams({ hardware });
    if (found?.group.tags.length) params.set('tag', found.group.tags.join(','));
    return `/workers?${params}`;
  }

  function writeOpen() {
    writeQuery({ open: state.open.length ? encodeOpen(state.open) : null });
  }

  function toggle(id) {
    if (state.open.includes(id)) {
      state.open = state.open.filter((open) => open !== id);
      groupPages.delete(id);
      groupErrors.delete(id);
      slots.delete(id);
      writeOpen();
      graph.refit();
      draw();
    } else {
      state.open = [...state.open, id];
      writeOpen();
      graph.refit();
      draw();
      poll();
    }
  }

  /** Keeps the workers that stay in their places; newcomers take the free ones. */
  function place(id, items) {
    const present = new Set(items.map((worker) => worker.worker_id));
    const kept = (slots.get(id) ?? []).map((workerId) => (present.has(workerId) ? workerId : null));
    const placed = new Set(kept.filter(Boolean));
    for (const worker of items) {
      if (placed.has(worker.worker_id)) continue;
      const hole = kept.indexOf(null);
      if (hole >= 0) kept[hole] = worker.worker_id;
      else kept.push(worker.worker_id);
    }
    slots.set(id, kept.filter(Boolean));
  }

  const matches = (kind, group) => {
    const needle = state.search.trim().toLowerCase();
    if (!needle) return true;
    return [group.id, ...group.tags, ...kind.common_tags].some((text) => text.toLowerCase().includes(needle));
  };

  function visibleKinds() {
    return (topology?.kinds ?? [])
      .filter((kind) => !state.kind || kind.hardware === state.kind)
      .map((kind) => ({ ...kind, groups: kind.groups.filter((group) => matches(kind, group)) }))
      .filter((kind) => kind.groups.length > 0);
  }

  function showKinds() {
    const kinds = (topology?.kinds ?? []).map((kind) => kind.hardware);
    if (state.kind && !kinds.includes(state.kind)) kinds.push(state.kind);
    const have = [...kindSelect.options].slice(1).map((option) => option.value);
    if (have.join('\n') !== kinds.join('\n')) {
      replace(kindSelect, h('option', { value: '' }, 'all'), kinds.map((kind) => h('option', { value: kind }, kind)));
    }
    kindSelect.value = state.kind;
  }

  function draw() {
    if (!mounted) return;
    showKinds();
    if (!topology) return;
    const all = topology.kinds.flatMap((kind) => kind.groups);
    setText(cards.workers, format.count(topology.workers));
    setText(cards.kinds, format.count(topology.kinds.length));
    setText(cards.groups, format.count(all.length));
    setText(cards.slots, format.count(topology.slots));
    setText(cards.running, format.count(topology.running));
    setText(cards.queued, format.count(topology.queued));
    setText(cards.cpu, format.percent(topology.cpu_pct));
    setText(cards.families, format.count(topology.families.length));
    setText(
      summary,
      `${format.count(topology.workers)} worker${topology.workers === 1 ? '' : 's'} in ${format.count(topology.kinds.length)} hardware kind${topology.kinds.length === 1 ? '' : 's'} and ${format.count(all.length)} group${all.length === 1 ? '' : 's'}`,
    );
    setText(updated, topology.time > 0 ? `as of ${format.time(topology.time)}` : 'no tick yet');
    setText(notice, [topology.running_unavailable ? `Tasks running now are not shown: ${topology.running_unavailable}` : '', closedNote].filter(Boolean).join(' '));

    const kinds = visibleKinds();
    const visibleIds = new Set(kinds.flatMap((kind) => kind.groups.map((group) => group.id)));
    const open = new Map(state.open.filter((id) => visibleIds.has(id) && groupPages.has(id)).map((id) => [id, groupPages.get(id)]));
    const placementsShown = topology.placements.filter((placement) => !state.kind || placement.hardware === state.kind);
    graph.update({ kinds, families: topology.families, placements: placementsShown, open, slots, maxShown });
    mapEmpty.hidden = kinds.length > 0;
    setText(
      mapEmpty,
      topology.kinds.length === 0 ? 'No worker has registered yet: the map fills in as workers join.' : 'No group matches the filters.',
    );

    const filtered = kinds.flatMap((kind) => kind.groups.map((group) => ({ ...group, hardware: kind.hardware })));
    groups.update(
      filtered,
      new Set(state.open),
      filtered.length === all.length ? `${format.count(all.length)} groups` : `${format.count(filtered.length)} of ${format.count(all.length)} groups`,
    );

    const rows = [];
    const more = [];
    for (const id of state.open) {
      if (!visibleIds.has(id)) continue;
      const page = groupPages.get(id);
      if (groupErrors.has(id)) more.push(h('li', { class: 'error' }, `${id}: ${groupErrors.get(id)}`));
      if (!page) continue;
      for (const worker of page.items) rows.push({ ...worker, group: id });
      if (page.total > page.items.length) {
        more.push(
          h(
            'li',
            { title: `Only the ${format.count(page.items.length)} busiest workers of a group are drawn and listed here` },
            `${id}: ${format.count(page.total - page.items.length)} more not shown; `,
            h('a', { href: moreHref(id) }, 'list them on the Workers page'),
          ),
        );
      }
    }
    const hiddenOpen = state.open.filter((id) => !visibleIds.has(id)).length;
    workersTable.update(rows, hiddenOpen ? `${hiddenOpen} opened group${hiddenOpen === 1 ? '' : 's'} hidden by the filters` : '');
    replace(moreList, more);
    setText(
      mapNote,
      `Groups: up to 12 per kind (the smaller ones folded into "(other)"). An opened group shows its ${format.count(maxShown)} busiest workers.${state.open.length ? ` Open: ${state.open.join(', ')}.` : ''}`,
    );

    placements.update(placementsShown, topology.running_unavailable ? 'running now unknown' : '');
    families.update(topology.families);
    capabilities.update(topology.capabilities);
  }

  async function load() {
    try {
      topology = await getJson('/api/topology');
      setText(error, '');
    } catch (err) {
      setText(error, problem(err));
      if (!topology) {
        setText(summary, 'no figures to show yet');
        return;
      }
    }
    const known = new Set(topology.kinds.flatMap((kind) => kind.groups.map((group) => group.id)));
    if (topology.kinds.length > 0) {
      const gone = state.open.filter((id) => !known.has(id));
      if (gone.length) {
        state.open = state.open.filter((id) => known.has(id));
        for (const id of gone) {
          groupPages.delete(id);
          slots.delete(id);
          groupErrors.delete(id);
        }
        closedNote = `Closed ${gone.join(', ')}: no such group now.`;
        writeOpen();
      }
    }
    await Promise.all(
      state.open.map((id) =>
        getJson('/api/topology/workers', { group: id, limit: Math.min(1000, maxShown) }).then(
          (page) => {
            if (!state.open.includes(id)) return;
            groupErrors.delete(id);
            groupPages.set(id, { items: page.items ?? [], total: page.total ?? 0 });
            place(id, page.items ?? []);
          },
          (err) => {
            if (state.open.includes(id)) groupErrors.set(id, problem(err));
          },
        ),
      ),
    );
    draw();
  }

  let polling = false;
  let again = false;
  async function poll() {
    if (polling) {
      again = true;
      return;
    }
    polling = true;
    try {
      do {
        again = false;
        await load();
      } while (again && mounted);
    } finally {
      polling = false;
    }
  }

  let lastPushed = 0;
  const refresh = refresher({
    poll,
    // Without a polling interval ("live" on updates only), each tick's figures pull a redraw.
    flush: () => {
      if (currentRate().pollMs !== null || Date.now() - lastPushed < 1000) return;
      lastPushed = Date.now();
      poll();
    },
  });
  const offSystem = app.socket.on('system', () => refresh.pushed());

  kindSelect.addEventListener('change', () => {
    state.kind = kindSelect.value;
    writeQuery({ kind: state.kind });
    graph.refit();
    draw();
  });
  searchInput.addEventListener('input', () => {
    state.search = searchInput.value;
    writeQuery({ q: state.search.trim() });
    graph.refit();
    draw();
  });
  fitButton.addEventListener('click', () => graph.fit());
  closeAll.addEventListener('click', () => {
    state.open = [];
    groupPages.clear();
    groupErrors.clear();
    slots.clear();
    closedNote = '';
    writeOpen();
    graph.refit();
    draw();
  });

  return () => {
    mounted = false;
    refresh.stop();
    offSystem();
    graph.destroy();
  };
}
