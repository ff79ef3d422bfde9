// Live stream: events as they arrive, newest on top, with pause and filter.

import { segmented } from '../controls.js';
import { el, replace, row, empty } from '../dom.js';
import { clock, money } from '../format.js';
import { when } from '../times.js';
import { who } from '../who.js';

const COLUMNS = [
  { label: 'Time' }, { label: 'Type' }, { label: 'Event' }, { label: 'Page' },
  { label: 'Person' }, { label: 'Detail' },
];
const SHOWN = 200;
const TYPES = [['all', 'All'], ['page', 'Pages'], ['track', 'Tracks'], ['identify', 'Identifies']];

// An order's value as the person page shows it (€28.00), else the product.
function detail(event) {
  return event.value != null ? money(event.value, event.currency) : event.detail;
}

function matches(event, type, text) {
  if (type !== 'all' && event.type !== type) return false;
  if (!text) return true;
  const haystack = [event.name, event.page, detail(event), event.anonymous_id, event.person && event.person.name]
    .filter(Boolean).join(' ').toLowerCase();
  return haystack.includes(text);
}

function eventRow(event, fresh) {
  return row(COLUMNS, [
    when('span', { class: 'time' }, event.received_at, clock(event.received_at)),
    el('span', { class: `badge type-${event.type}` }, event.type),
    event.name || (event.type === 'identify' ? 'Identified' : el('span', { class: 'faint' }, '—')),
    event.page ? el('span', { class: 'mono' }, event.page) : el('span', { class: 'faint' }, '—'),
    event.person ? who(event.person) : el('span', { class: 'anon-label' }, 'Not applied yet'),
    detail(event) || el('span', { class: 'faint' }, '—'),
  ], { class: fresh ? 'fresh' : null, 'data-seq': event.seq, 'data-identified': String(event.identified) });
}

export function render(main, { feed }) {
  let paused = false;
  let missed = 0;
  let type = 'all';
  let text = '';

  const tbody = el('tbody');
  const note = el('span', { class: 'live-meta' });
  // Its name says what pressing it does, Pause or Resume, so no pressed state besides: a screen
  // reader would read "Resume, pressed".
  const pause = el('button', { class: 'button', type: 'button', id: 'pause' }, 'Pause');
  const search = el('input', {
    class: 'input search', type: 'search', placeholder: 'Filter by event, page or person', 'aria-label': 'Filter events', id: 'live-filter',
  });
  const seg = segmented('Event type', TYPES, type, (value) => { type = value; draw(); });
  const body = el('div');

  const draw = () => {
    const shown = feed.events.filter((e) => matches(e, type, text)).slice(0, SHOWN);
    replace(tbody, shown.map((e) => eventRow(e, false)));
    if (shown.length) {
      replace(body, el('div', { class: 'table-wrap' }, el('table', { class: 'data', id: 'live-table' },
        el('thead', null, el('tr', null, COLUMNS.map((c) => el('th', null, c.label)))), tbody)));
    } else {
      replace(body, empty(feed.events.length ? 'No event matches the filter' : 'Waiting for events',
        feed.events.length ? 'Clear the filter to see everything.' : 'Open the storefront: page views appear here within a second.'));
    }
  };
  const drawNote = () => {
    replace(note, paused
      ? el('span', { class: 'paused-note' }, missed ? `Paused · ${missed} new` : 'Paused')
      : `${feed.events.length} recent events`);
  };

  search.addEventListener('input', () => { text = search.value.trim().toLowerCase(); draw(); });
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.classList.toggle('paused', paused);
    pause.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) { missed = 0; draw(); }
    drawNote();
  });

  const off = feed.on('events', (events) => {
    if (paused) { missed += events.length; drawNote(); return; }
    const fresh = events.filter((e) => matches(e, type, text));
    if (!fresh.length) { drawNote(); return; }
    if (!tbody.isConnected) { draw(); drawNote(); return; }
    tbody.prepend(...fresh.map((e) => eventRow(e, true)));
    while (tbody.children.length > SHOWN) tbody.lastElementChild.remove();
    drawNote();
  });

  replace(main,
    el('div', { class: 'page-head' },
      el('div', null, el('h1', null, 'Live stream'),
        el('p', null, 'Every event the collector accepts, as it arrives, with the person it belongs to.')),
      el('div', { class: 'toolbar' }, seg, search, pause)),
    el('section', { class: 'card' },
      el('div', { class: 'card-head' }, el('h2', null, 'Events'), note),
      body));
  draw();
  drawNote();
  return off;
}
