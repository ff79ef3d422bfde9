// Stitches: each identification as it happens (how much anonymous history it brought along)
// and each refusal with its reason.

import { get } from '../api.js';
import { segmented } from '../controls.js';
import { el, replace, empty, errorBanner, focusItem } from '../dom.js';
import { clock, duration, number, plural } from '../format.js';
import { when } from '../times.js';
import { personName, who } from '../who.js';

const KINDS = {
  identified: 'Identified',
  merged: 'Another device',
  aliased: 'Aliased',
  refused: 'Refused',
};
const FILTERS = [['all', 'All'], ['stitch', 'Stitches'], ['refused', 'Refusals']];

function keep(change, filter) {
  if (filter === 'all') return true;
  return filter === 'refused' ? change.kind === 'refused' : change.kind !== 'refused';
}

function stitchItem(change, fresh) {
  const refused = change.kind === 'refused';
  const facts = refused
    ? [el('span', null, change.explanation || change.reason)]
    : [
      el('span', null, el('b', null, plural(change.anonymous_events_stitched, 'anonymous event', 'anonymous events')), ' stitched'),
      el('span', null, el('b', null, plural(change.browsers_stitched, 'browser', 'browsers'))),
      el('span', null, change.after_first_visit_ms == null ? 'first visit'
        : [el('b', null, duration(change.after_first_visit_ms)), ' after the first visit']),
    ];
  const title = [el('span', { class: `badge ${change.kind}` }, KINDS[change.kind] || change.kind)];
  if (change.person) title.push(who(change.person));
  if (refused && change.other) title.push(el('span', { class: 'muted' }, 'kept apart from'), who(change.other));
  return el('li', { class: `feed-item${fresh ? ' fresh' : ''}`, 'data-kind': change.kind, 'data-id': change.id },
    when('div', { class: 'time' }, change.at, clock(change.at)),
    el('div', { class: 'feed-main' }, el('div', { class: 'feed-title' }, title), el('div', { class: 'feed-facts' }, facts)),
    change.person ? el('a', {
      class: 'button small', href: `#/people/${change.person.id}`, 'aria-label': `History of ${personName(change.person)}`,
    }, 'History') : null);
}

function tile(label, value, note) {
  return el('div', { class: 'card stat' },
    el('span', { class: 'stat-label' }, label),
    el('span', { class: 'stat-value' }, number(value)),
    el('span', { class: 'stat-note' }, note));
}

export function render(main, { feed }) {
  let filter = 'all';
  let items = [];
  let next = null;
  const list = el('ul', { class: 'feed-list', id: 'stitch-list' });
  const tiles = el('div', { class: 'grid cols-4' });
  const more = el('div', { class: 'more' });
  const seg = segmented('Show', FILTERS, filter, (value) => { filter = value; draw(); });

  const draw = () => {
    const shown = items.filter((c) => keep(c, filter));
    replace(list, shown.length ? shown.map((c) => stitchItem(c, false))
      : el('li', null, empty('Nothing yet', 'Identifications appear here the moment a visitor signs up, logs in or checks out.')));
    replace(more, next ? el('button', { class: 'button small', type: 'button', onclick: older }, 'Load older') : null);
  };
  const drawTiles = (counts) => replace(tiles,
    tile('Identified', counts.identified || 0, 'anonymous visitors who became someone'),
    tile('Other devices', counts.merged || 0, 'browsers joined to a known person'),
    tile('Aliased', counts.aliased || 0, 'ids linked by alias calls'),
    tile('Refused', counts.refused || 0, 'merges Bond would not make'));
  const older = async () => {
    const page = await get('stitches', { before: next });
    items = items.concat(page.stitches);
    next = page.next;
    draw();
    // Load older's button was drawn again: the first identification it brought takes the focus.
    const first = page.stitches.find((c) => keep(c, filter));
    if (first) focusItem(list.querySelector(`[data-id="${first.id}"]`));
  };

  replace(main,
    el('div', { class: 'page-head' },
      el('div', null, el('h1', null, 'Stitches'),
        el('p', null, 'Each identification as it happens: the anonymous history it brought along, and every merge Bond refused, with the reason.')),
      seg),
    el('div', { class: 'stack' }, tiles,
      el('section', { class: 'card' }, el('div', { class: 'card-head' }, el('h2', null, 'Identity events'),
        el('p', null, 'Newest first, live')), list, more)));

  const counts = {};
  get('stitches').then((page) => {
    items = page.stitches.concat(items.filter((c) => !page.stitches.some((p) => p.id === c.id)));
    next = page.next;
    Object.assign(counts, page.counts);
    drawTiles(counts);
    draw();
  }).catch((error) => replace(list, errorBanner(error)));

  return feed.on('stitches', (changes) => {
    const fresh = changes.filter((c) => !items.some((i) => i.id === c.id)).reverse();
    items = fresh.concat(items);
    for (const c of fresh) counts[c.kind] = (counts[c.kind] || 0) + 1;
    drawTiles(counts);
    const shown = fresh.filter((c) => keep(c, filter));
    if (!shown.length) return;
    if (list.querySelector('.empty')) list.replaceChildren();
    list.prepend(...shown.map((c) => stitchItem(c, true)));
  });
}
