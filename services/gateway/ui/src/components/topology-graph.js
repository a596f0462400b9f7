// The topology map, drawn by cytoscape: each hardware kind a box holding its tag groups (a
// ring whose slices are the group's workers by status, its size the group's size, its rim
// the group's mean CPU), the task families in a column beside them, and an edge from each
// family to each kind it ran on (its width the runs so far, its label and colour the tasks
// running there now). A group opened (clicked) becomes a box of its workers, busiest first,
// at most `maxShown` of them and a "+N more" node. Positions come from the structure alone
// (which nodes there are), never from the figures, so a refresh moves nothing; the view
// (zoom, pan) is only refitted when the person opens or closes something. Colours come
// from the theme's variables and follow a theme change. Every element has a tooltip (its
// figures, as text); the page's tables carry the same figures for reading.

import cytoscape from 'cytoscape';
import { h, setText } from '../dom.js';
import * as format from '../format.js';
import { onThemeChange, themeColour, currentTheme } from '../theme.js';

const STATUSES = ['idle', 'busy', 'overloaded', 'disconnected'];

// Footprints in model units (pixels at zoom 1).
const GROUP_CELL = { w: 128, h: 112 };
const GROUP_MIN = 26;
const GROUP_MAX = 64;
const WORKER_CELL = { w: 66, h: 44 };
const WORKER_SIZE = 16;
const OPEN_PAD = 14;
const OPEN_LABEL = 26;
const KIND_PAD = 20;
const KIND_LABEL = 30;
const KIND_GAP = 44;
const GROUP_GAP = 12;
const FAMILY = { w: 156, h: 44, gap: 30, column: 320 };

/** CPU load classes for a group's rim and a worker's border. */
export function loadLevel(cpu) {
  if (cpu === null || cpu === undefined || Number.isNaN(cpu)) return 'none';
  if (cpu >= 85) return 'high';
  if (cpu >= 60) return 'raised';
  return 'normal';
}

/** A group id's part after the kind, as a person reads it. */
export function groupLabel(id) {
  const key = id.slice(id.indexOf('/') + 1);
  if (key === '-') return 'kind tags only';
  return key;
}

/**
 * Shelf packing: `items` ({ w, h }) into rows no wider than `width`; returns the offset of
 * each item and the size of the whole.
 */
function shelves(items, width, gap) {
  const offsets = [];
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  let widest = 0;
  for (const item of items) {
    if (x > 0 && x + item.w > width) {
      y += rowHeight + gap;
      x = 0;
      rowHeight = 0;
    }
    offsets.push({ x, y });
    x += item.w + gap;
    rowHeight = Math.max(rowHeight, item.h);
    widest = Math.max(widest, x - gap);
  }
  return { offsets, w: widest, h: items.length ? y + rowHeight : 0 };
}

/** Columns of an opened group's worker grid. */
function gridColumns(count) {
  return Math.max(1, Math.min(8, Math.ceil(Math.sqrt(count * 1.4))));
}

/**
 * Where every leaf node goes, from the structure alone: `kinds` [{ id, groups: [{ id,
 * children: [node ids] | null }] }], `families` [node ids], `aspect` the container's
 * width / height. Returns Map(node id -> { x, y }).
 */
export function layout({ kinds, families, aspect }) {
  const positions = new Map();
  const boxes = kinds.map((kind) => {
    const items = kind.groups.map((group) => {
      if (!group.children) return { w: GROUP_CELL.w, h: GROUP_CELL.h };
      const columns = gridColumns(group.children.length);
      const rows = Math.ceil(group.children.length / columns);
      return { w: columns * WORKER_CELL.w + 2 * OPEN_PAD, h: OPEN_LABEL + rows * WORKER_CELL.h + 2 * OPEN_PAD };
    });
    const widest = Math.max(GROUP_CELL.w, ...items.map((item) => item.w));
    const perRow = Math.min(4, Math.max(2, Math.ceil(Math.sqrt(items.length))));
    const packed = shelves(items, Math.max(widest, GROUP_CELL.w * perRow + GROUP_GAP * (perRow - 1)), GROUP_GAP);
    // Wide enough for its label, which is drawn above it.
    const w = Math.max(packed.w + 2 * KIND_PAD, kind.labelWidth ?? 0);
    return { kind, items, packed, w, h: packed.h + 2 * KIND_PAD + KIND_LABEL };
  });

  // The kinds' row width that brings the whole map nearest the container's shape.
  const widestBox = Math.max(0, ...boxes.map((box) => box.w));
  let best = null;
  for (let width = Math.max(widestBox, 300); width <= Math.max(widestBox, 6000); width += 150) {
    const packed = shelves(boxes, width, KIND_GAP);
    const w = packed.w + (families.length ? FAMILY.column : 0);
    const hgt = Math.max(packed.h, families.length * (FAMILY.h + FAMILY.gap));
    const score = Math.abs(Math.log((w / Math.max(hgt, 1)) / aspect));
    if (!best || score < best.score - 1e-9) best = { packed, score, h: hgt };
    if (packed.offsets.every((offset) => offset.y === 0)) break; // one row: wider changes nothing
  }
  const packed = best?.packed ?? { offsets: [], w: 0, h: 0 };
  const left = families.length ? FAMILY.column : 0;

  boxes.forEach((box, index) => {
    const inner = box.w - 2 * KIND_PAD;
    const origin = {
      x: left + packed.offsets[index].x + KIND_PAD + (inner - box.packed.w) / 2,
      y: packed.offsets[index].y + KIND_PAD + KIND_LABEL,
    };
    box.kind.groups.forEach((group, groupIndex) => {
      const at = { x: origin.x + box.packed.offsets[groupIndex].x, y: origin.y + box.packed.offsets[groupIndex].y };
      if (!group.children) {
        positions.set(group.id, { x: at.x + GROUP_CELL.w / 2, y: at.y + 6 + GROUP_MAX / 2 });
        return;
      }
      const columns = gridColumns(group.children.length);
      group.children.forEach((child, childIndex) => {
        const column = childIndex % columns;
        const row = Math.floor(childIndex / columns);
        positions.set(child, {
          x: at.x + OPEN_PAD + WORKER_CELL.w * (column + 0.5),
          y: at.y + OPEN_LABEL + OPEN_PAD + WORKER_CELL.h * row + WORKER_SIZE / 2,
        });
      });
    });
  });

  const height = Math.max(packed.h, 1);
  const columnHeight = families.length * FAMILY.h + (families.length - 1) * FAMILY.gap;
  const top = (height - columnHeight) / 2;
  families.forEach((family, index) => {
    positions.set(family, { x: FAMILY.w / 2, y: top + index * (FAMILY.h + FAMILY.gap) + FAMILY.h / 2 });
  });
  return positions;
}

function statusSizes(counts) {
  const total = Math.max(1, counts.workers ?? 0);
  return Object.fromEntries(STATUSES.map((status) => [`p_${status}`, ((counts[status] ?? 0) / total) * 100]));
}

function countsText(counts) {
  return STATUSES.filter((status) => counts[status] > 0).map((status) => `${format.count(counts[status])} ${status}`).join(', ') || 'no workers';
}

function loadText(counts) {
  return [
    `${format.count(counts.running)} running / ${format.count(counts.slots)} slots (connected workers)`,
    `${format.count(counts.queued)} waiting on them`,
    `mean CPU ${format.percent(counts.cpu_pct)} (connected workers)`,
  ].join('\n');
}

/**
 * The elements for `view`: { kinds (as /api/topology gives them, filtered), families,
 * placements, open: Map(group id -> { items, total }), slots: Map(group id -> worker ids in
 * their places), maxShown }. Returns { elements, structure } where structure is what
 * layout() takes (less the aspect).
 */
export function buildElements(view) {
  const elements = [];
  const structureKinds = [];
  const largest = Math.max(1, ...view.kinds.flatMap((kind) => kind.groups.map((group) => group.workers)));
  const hardwareShown = new Set(view.kinds.map((kind) => kind.hardware));

  // Kinds that tasks ran on first, nearest the families' column (then by name): the order
  // changes only when a kind first runs a family's task.
  const placed = new Set(view.placements.map((placement) => placement.hardware));
  const kinds = [...view.kinds].sort((a, b) => Number(placed.has(b.hardware)) - Number(placed.has(a.hardware)) || a.hardware.localeCompare(b.hardware));
  for (const kind of kinds) {
    const kindId = `k:${kind.hardware}`;
    const kindLabel = `${kind.hardware} · ${format.count(kind.workers)} worker${kind.workers === 1 ? '' : 's'} · ${format.count(kind.running)}/${format.count(kind.slots)} slots`;
    elements.push({
      group: 'nodes',
      classes: 'kind',
      data: {
        id: kindId,
        label: kindLabel,
        tip: [
          `Hardware kind ${kind.hardware}: ${format.count(kind.workers)} workers in ${kind.groups.length} group${kind.groups.length === 1 ? '' : 's'}`,
          countsText(kind),
          loadText(kind),
          `Tags they all have: ${kind.common_tags.length ? kind.common_tags.join(', ') : 'none'}`,
        ].join('\n'),
      },
    });
    const groups = [...kind.groups].sort((a, b) => a.id.localeCompare(b.id));
    const structureGroups = [];
    for (const group of groups) {
      const groupId = `g:${group.id}`;
      const opened = view.open.get(group.id);
      const diameter = GROUP_MIN + (GROUP_MAX - GROUP_MIN) * Math.sqrt(group.workers / largest);
      const groupName = groupLabel(group.id);
      const tagsText = group.id.endsWith('/(other)')
        ? 'The smaller groups of this kind, folded together'
        : group.tags.length
          ? `Tags beyond the kind's own: ${group.tags.join(', ')}`
          : 'No tags beyond the kind\'s own';
      elements.push({
        group: 'nodes',
        classes: `group load-${loadLevel(group.cpu_pct)}${opened ? ' open' : ''}`,
        data: {
          id: groupId,
          parent: kindId,
          groupId: group.id,
          d: diameter,
          ...(opened ? statusSizes({}) : statusSizes(group)),
          label: opened
            ? `${groupName} · ${format.count(group.workers)} worker${group.workers === 1 ? '' : 's'} (click to close)`
            : `${groupName}\n${format.count(group.workers)} · ${format.percent(group.cpu_pct)} CPU`,
          tip: [
            `Group ${group.id}: ${format.count(group.workers)} worker${group.workers === 1 ? '' : 's'}`,
            tagsText,
            countsText(group),
            loadText(group),
            opened ? 'Click to close it' : 'Click to show its workers',
          ].join('\n'),
        },
      });
      if (!opened) {
        structureGroups.push({ id: groupId, children: null });
        continue;
      }
      const byId = new Map(opened.items.map((worker) => [worker.worker_id, worker]));
      const children = [];
      for (const workerId of view.slots.get(group.id) ?? []) {
        const worker = byId.get(workerId);
        if (!worker) continue;
        const id = `w:${workerId}`;
        children.push(id);
        const capabilities = worker.capabilities ?? {};
        elements.push({
          group: 'nodes',
          classes: `worker status-${STATUSES.includes(worker.status) ? worker.status : 'unknown'} load-${loadLevel(worker.status === 'disconnected' ? null : worker.cpu_pct)}`,
          data: {
            id,
            parent: groupId,
            workerId,
            label: workerId,
            tip: [
              `Worker ${workerId}: ${worker.status}`,
              `CPU ${format.percent(worker.cpu_pct)}, memory ${format.percent(worker.memory_pct)}, network ${format.percent(worker.network_pct)}${worker.gpu_pct === undefined || worker.gpu_pct === null ? '' : `, GPU ${format.percent(worker.gpu_pct)}`}`,
              `${format.count(worker.active_tasks)} running, ${format.count(worker.queued_tasks)} waiting, ${format.count(capabilities.slots)} slots`,
              `${format.count(capabilities.cpu_cores)} cores, ${format.number(capabilities.memory_gb)} GB${capabilities.gpu_model ? `, ${capabilities.gpu_model}` : ''}`,
              `Health ${format.number(worker.health_score)}`,
              'Click to open its page',
            ].join('\n'),
          },
        });
      }
      const hidden = Math.max(0, opened.total - children.length);
      if (hidden > 0) {
        const id = `m:${group.id}`;
        children.push(id);
        elements.push({
          group: 'nodes',
          classes: 'more',
          data: {
            id,
            parent: groupId,
            groupId: group.id,
            label: `+${format.count(hidden)} more`,
            tip: `${format.count(hidden)} more worker${hidden === 1 ? '' : 's'} in ${group.id}, not drawn (the ${format.count(children.length)} busiest are).\nClick to list this kind's workers on the Workers page`,
          },
        });
      }
      structureGroups.push({ id: groupId, children });
    }
    // The label's width, roughly (14 px semibold): from its length, so figures that change
    // width do not move the map, only the number of characters in the kind's name does.
    structureKinds.push({ id: kindId, groups: structureGroups, labelWidth: (kind.hardware.length + 26) * 8 });
  }

  const families = [...view.families].sort((a, b) => a.family.localeCompare(b.family));
  const runsMost = Math.max(1, ...view.placements.map((placement) => placement.runs));
  for (const family of families) {
    elements.push({
      group: 'nodes',
      classes: 'family',
      data: {
        id: `f:${family.family}`,
        family: family.family,
        label: `${family.family}\n${format.count(family.running)} running · ${format.count(family.queued)} queued`,
        tip: [
          `Task family ${family.family}`,
          `${format.count(family.running)} running, ${format.count(family.queued)} waiting to start`,
          `${format.count(family.completed)} completed, ${format.count(family.failed)} failed since the stream began`,
          `${format.number(family.throughput_per_min)} completions in the last minute`,
          'Click to open its task type page',
        ].join('\n'),
      },
    });
  }
  const familyNames = new Set(families.map((family) => family.family));
  for (const placement of view.placements) {
    if (!hardwareShown.has(placement.hardware)) continue;
    if (!familyNames.has(placement.family)) continue;
    elements.push({
      group: 'edges',
      classes: `placement${placement.running > 0 ? ' running' : ''}${placement.runs === 0 ? ' unproven' : ''}`,
      data: {
        id: `e:${placement.family}>${placement.hardware}`,
        source: `f:${placement.family}`,
        target: `k:${placement.hardware}`,
        w: 1.5 + 6 * Math.sqrt(placement.runs / runsMost),
        label: placement.running > 0 ? `${format.count(placement.running)} running` : '',
        tip: [
          `${placement.family} on ${placement.hardware}`,
          `${format.count(placement.runs)} runs finished so far`,
          `compatibility score ${placement.score === null || placement.score === undefined ? '– (no runs yet)' : format.number(placement.score)} of 100`,
          `${format.count(placement.running)} running now`,
        ].join('\n'),
      },
    });
  }
  return { elements, structure: { kinds: structureKinds, families: families.map((family) => `f:${family.family}`) } };
}

/** The stylesheet, in the current theme's colours. */
function stylesheet() {
  const colour = (name, fallback) => themeColour(name) || fallback;
  const text = colour('--text', '#e6edf3');
  const muted = colour('--muted', '#9da7b3');
  const panel = colour('--panel', '#161b22');
  const panel2 = colour('--panel-2', '#21262d');
  const border = colour('--border', '#30363d');
  const accent = colour('--accent', '#58a6ff');
  const status = {
    idle: colour('--st-idle', '#4c8dd6'),
    busy: colour('--st-busy', '#2ea043'),
    overloaded: colour('--st-overloaded', '#f0883e'),
    disconnected: colour('--st-disconnected', '#6e7681'),
  };
  const load = { normal: colour('--ok', '#3fb950'), raised: colour('--warn', '#d29922'), high: colour('--bad', '#f85149'), none: border };
  const font = 'system-ui, -apple-system, "Segoe UI", sans-serif';
  return [
    {
      selector: 'node',
      style: { 'font-family': font, color: text, 'font-size': 11, 'text-wrap': 'wrap', 'min-zoomed-font-size': 5 },
    },
    {
      selector: 'node.kind',
      style: {
        shape: 'round-rectangle',
        'background-color': panel2,
        'background-opacity': 0.35,
        'border-color': border,
        'border-width': 1.5,
        padding: KIND_PAD,
        label: 'data(label)',
        'text-valign': 'top',
        'text-halign': 'center',
        'text-margin-y': -6,
        'font-size': 14,
        'font-weight': 600,
      },
    },
    {
      selector: 'node.group',
      style: {
        width: 'data(d)',
        height: 'data(d)',
        'background-color': panel2,
        'border-width': 3,
        'border-color': load.none,
        'pie-size': '100%',
        'pie-hole': '42%',
        'pie-1-background-color': status.idle,
        'pie-1-background-size': 'data(p_idle)',
        'pie-2-background-color': status.busy,
        'pie-2-background-size': 'data(p_busy)',
        'pie-3-background-color': status.overloaded,
        'pie-3-background-size': 'data(p_overloaded)',
        'pie-4-background-color': status.disconnected,
        'pie-4-background-size': 'data(p_disconnected)',
        label: 'data(label)',
        'text-valign': 'bottom',
        'text-halign': 'center',
        'text-margin-y': 5,
        'text-max-width': GROUP_CELL.w - 8,
        'text-justification': 'center',
      },
    },
    ...['normal', 'raised', 'high'].map((level) => ({ selector: `node.group.load-${level}`, style: { 'border-color': load[level] } })),
    {
      selector: 'node.group.open',
      style: {
        shape: 'round-rectangle',
        'pie-size': '0%',
        'background-color': panel,
        'background-opacity': 0.85,
        'border-color': accent,
        'border-style': 'dashed',
        'border-width': 1.5,
        padding: OPEN_PAD,
        'text-valign': 'top',
        'text-margin-y': -4,
        'text-max-width': 600,
        'font-weight': 600,
      },
    },
    {
      selector: 'node.worker',
      style: {
        width: WORKER_SIZE,
        height: WORKER_SIZE,
        'background-color': muted,
        'border-width': 2,
        'border-color': panel,
        label: 'data(label)',
        'font-size': 9,
        color: muted,
        'text-valign': 'bottom',
        'text-halign': 'center',
        'text-margin-y': 3,
        'text-wrap': 'ellipsis',
        'text-max-width': WORKER_CELL.w - 6,
      },
    },
    ...STATUSES.map((name) => ({ selector: `node.worker.status-${name}`, style: { 'background-color': status[name] } })),
    ...['raised', 'high'].map((level) => ({ selector: `node.worker.load-${level}`, style: { 'border-color': load[level] } })),
    { selector: 'node.worker.status-disconnected', style: { 'background-opacity': 0.55, 'border-style': 'dashed', 'border-color': muted } },
    {
      selector: 'node.more',
      style: {
        shape: 'round-rectangle',
        width: WORKER_CELL.w - 10,
        height: WORKER_SIZE + 4,
        'background-color': panel2,
        'border-color': accent,
        'border-width': 1,
        label: 'data(label)',
        color: accent,
        'font-size': 10,
        'text-valign': 'center',
        'text-halign': 'center',
      },
    },
    {
      selector: 'node.family',
      style: {
        shape: 'round-rectangle',
        width: FAMILY.w,
        height: FAMILY.h,
        'background-color': panel2,
        'border-color': colour('--series-2', '#d2a8ff'),
        'border-width': 2,
        label: 'data(label)',
        'text-valign': 'center',
        'text-halign': 'center',
        'text-max-width': FAMILY.w - 10,
        'font-size': 11,
      },
    },
    {
      selector: 'edge',
      style: {
        width: 'data(w)',
        'curve-style': 'bezier',
        'line-color': muted,
        'line-opacity': 0.55,
        'target-arrow-shape': 'triangle',
        'target-arrow-color': muted,
        'arrow-scale': 0.8,
        label: 'data(label)',
        'font-family': font,
        'font-size': 10,
        color: text,
        'text-background-color': panel,
        'text-background-opacity': 0.85,
        'text-background-padding': 2,
        'text-rotation': 'autorotate',
        'min-zoomed-font-size': 5,
      },
    },
    { selector: 'edge.running', style: { 'line-color': accent, 'target-arrow-color': accent, 'line-opacity': 0.9 } },
    { selector: 'edge.unproven', style: { 'line-style': 'dashed' } },
    { selector: 'node:active, node:selected', style: { 'overlay-opacity': 0.08, 'overlay-color': text } },
    { selector: '.hovered', style: { 'underlay-color': accent, 'underlay-opacity': 0.25, 'underlay-padding': 4 } },
  ];
}

/**
 * The map in `element` (the page appends it). `onGroup(id)` when a group is clicked,
 * `onWorker(id)`, `onMore(group id)`, `onFamily(family)`.
 */
export function topologyGraph({ onGroup, onWorker, onMore, onFamily }) {
  const canvasHolder = h('div', { class: 'topology-canvas', id: 'topology-graph', role: 'img', 'aria-label': 'Topology map' });
  const tip = h('div', { class: 'topology-tip', role: 'tooltip', hidden: true });
  const element = h('div', { class: 'topology-graph' }, canvasHolder, tip);
  let cy = null;
  let lastStructure = '';
  let lastView = null;
  let fitPending = true;

  function create() {
    cy = cytoscape({
      container: canvasHolder,
      style: stylesheet(),
      layout: { name: 'preset' },
      minZoom: 0.08,
      maxZoom: 3,
      autoungrabify: true,
      autounselectify: true,
      boxSelectionEnabled: false,
    });
    canvasHolder.dataset.theme = currentTheme();
    cy.on('tap', 'node.group', (event) => onGroup(event.target.data('groupId')));
    cy.on('tap', 'node.worker', (event) => onWorker(event.target.data('workerId')));
    cy.on('tap', 'node.more', (event) => onMore(event.target.data('groupId')));
    cy.on('tap', 'node.family', (event) => onFamily(event.target.data('family')));
    cy.on('mouseover', 'node, edge', (event) => {
      const target = event.target;
      if (target.hasClass('kind')) {
        showTip(target, event.renderedPosition);
        return;
      }
      target.addClass('hovered');
      element.classList.add('pointing');
      showTip(target, event.renderedPosition);
    });
    cy.on('mousemove', 'node, edge', (event) => moveTip(event.renderedPosition));
    cy.on('mouseout', 'node, edge', (event) => {
      event.target.removeClass('hovered');
      element.classList.remove('pointing');
      tip.hidden = true;
    });
    cy.on('viewport', () => {
      tip.hidden = true;
    });
  }

  function showTip(target, position) {
    setText(tip, target.data('tip') ?? '');
    tip.hidden = !target.data('tip');
    moveTip(position);
  }

  function moveTip(position) {
    if (tip.hidden || !position) return;
    const width = canvasHolder.clientWidth;
    const height = canvasHolder.clientHeight;
    const x = position.x + 14 + tip.offsetWidth > width ? Math.max(0, position.x - tip.offsetWidth - 14) : position.x + 14;
    const y = position.y + 14 + tip.offsetHeight > height ? Math.max(0, position.y - tip.offsetHeight - 14) : position.y + 14;
    tip.style.setProperty('--tip-x', `${Math.round(x)}px`);
    tip.style.setProperty('--tip-y', `${Math.round(y)}px`);
  }

  /** Draws `view` (see buildElements); keeps every element that stays, and the view. */
  function update(view) {
    lastView = view;
    if (!cy) {
      if (canvasHolder.clientWidth === 0) return; // not laid out yet: the resize observer draws it
      create();
    }
    const { elements, structure } = buildElements(view);
    const wanted = new Map(elements.map((item) => [item.data.id, item]));
    let changed = false;
    cy.batch(() => {
      cy.elements().forEach((existing) => {
        const item = wanted.get(existing.id());
        const gone = !item || (existing.isNode() && (existing.data('parent') ?? null) !== (item.data.parent ?? null));
        if (gone && existing.inside()) cy.remove(existing);
      });
      const adding = [];
      for (const item of elements) {
        const existing = cy.getElementById(item.data.id);
        if (existing.nonempty()) {
          existing.data(item.data);
          existing.classes(item.classes);
        } else {
          adding.push(item);
        }
      }
      // Parents before their children, nodes before edges.
      const order = (item) => (item.group === 'edges' ? 3 : item.classes.startsWith('kind') ? 0 : item.classes.startsWith('group') ? 1 : 2);
      adding.sort((a, b) => order(a) - order(b));
      if (adding.length) cy.add(adding);
      const key = JSON.stringify(structure);
      if (key !== lastStructure || adding.length) {
        changed = key !== lastStructure;
        lastStructure = key;
        const aspect = Math.max(0.5, Math.min(4, canvasHolder.clientWidth / Math.max(1, canvasHolder.clientHeight)));
        const positions = layout({ ...structure, aspect });
        cy.nodes().forEach((node) => {
          const position = positions.get(node.id());
          if (position && node.isChildless()) node.position(position);
        });
      }
    });
    const shownKinds = view.kinds.length;
    const shownGroups = view.kinds.reduce((sum, kind) => sum + kind.groups.length, 0);
    canvasHolder.setAttribute(
      'aria-label',
      `Topology map: ${shownKinds} hardware kind${shownKinds === 1 ? '' : 's'}, ${shownGroups} group${shownGroups === 1 ? '' : 's'}, ${view.families.length} task famil${view.families.length === 1 ? 'y' : 'ies'}, ${view.open.size} group${view.open.size === 1 ? '' : 's'} opened. The tables below give every figure.`,
    );
    canvasHolder.dataset.nodes = String(cy.nodes().length);
    canvasHolder.dataset.workers = String(cy.nodes('.worker').length);
    if (fitPending && changed && cy.elements().length) {
      fitPending = false;
      fit();
    }
  }

  function fit() {
    if (!cy) return;
    cy.fit(undefined, 24);
    if (cy.zoom() > 1.4) {
      cy.zoom(1.4);
      cy.center();
    }
  }

  const resizeObserver = new ResizeObserver(() => {
    if (canvasHolder.clientWidth === 0) return;
    if (!cy) {
      if (lastView) update(lastView);
      return;
    }
    cy.resize();
  });
  resizeObserver.observe(canvasHolder);

  const offTheme = onThemeChange((theme) => {
    if (!cy) return;
    cy.style(stylesheet());
    canvasHolder.dataset.theme = theme;
  });

  return {
    element,
    update,
    /** Fit the whole map at the next draw (after the person opened or closed something). */
    refit() {
      fitPending = true;
    },
    fit,
    destroy() {
      resizeObserver.disconnect();
      offTheme();
      cy?.destroy();
      cy = null;
    },
  };
}
