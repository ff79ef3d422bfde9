// A person: who they are, every identifier and browser, traits, orders and the stitched
// timeline, where the anonymous part that identification brought along is marked.

import { get } from '../api.js';
import { el, replace, empty, errorBanner, focusItem, keepFocus } from '../dom.js';
import { browser, dateTime, duration, money, number, plural, shortDate, text } from '../format.js';
import { when } from '../times.js';
import { avatar, personName, who } from '../who.js';

const PAGE = 50;

function title(event) {
  if (event.type === 'page') {
    const props = event.properties || {};
    const where = props.path ? `${props.path}${props.search || ''}` : props.url || props.name || 'a page';
    return ['Viewed ', el('span', { class: 'mono' }, where)];
  }
  if (event.type === 'identify') {
    const email = (event.traits || {}).email;
    return email ? ['Identified as ', el('span', null, String(email))] : 'Identified';
  }
  if (event.type === 'alias') return 'Alias';
  return event.event || event.type;
}

// An amount as the engine reads one: a number, or a string that holds one; never NaN or ∞.
function finite(value) {
  if (typeof value !== 'number' && !(typeof value === 'string' && value.trim())) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

function detail(event) {
  const props = event.properties || {};
  const parts = [];
  if (props.name && event.type === 'track') parts.push(text(props.name));
  // In the order the orders list and the alerts read an amount (engine/alerts/person.py).
  const amount = ['total', 'revenue', 'value'].map((key) => finite(props[key])).find((n) => n != null);
  if (amount != null) parts.push(money(amount, props.currency));
  if (props.order_id) parts.push(`order ${text(props.order_id)}`);
  if (props.category) parts.push(text(props.category));
  return parts.join(' · ');
}

function timelineItems(events) {
  const items = [];
  let previous = null;
  for (const event of events) {
    if (event.stitched && previous && !previous.stitched) {
      items.push(el('li', { class: 'tl-divider' }, 'Before this, the visitor was anonymous: stitched on identification'));
    }
    const classes = ['tl-item', event.stitched ? 'stitched' : '', event.type === 'identify' ? 'identify' : ''];
    items.push(el('li', { class: classes.join(' ').trim(), 'data-seq': event.seq, 'data-stitched': String(event.stitched) },
      when('div', { class: 'tl-when' }, event.timestamp, shortDate(event.timestamp)),
      el('div', { class: 'tl-rail' }),
      el('div', { class: 'tl-body' },
        el('div', { class: 'tl-title' }, title(event),
          event.stitched ? el('span', { class: 'badge stitched' }, 'anonymous · stitched') : null),
        el('div', { class: 'tl-detail' }, [detail(event),
          event.anonymous_id ? el('span', { class: 'faint', title: event.anonymous_id }, ` browser ${browser(event.anonymous_id)}`) : null]))));
    previous = event;
  }
  return items;
}

function chipList(label, values) {
  return el('div', null, el('div', { class: 'section-label' }, label),
    values.length ? el('div', { class: 'chips' }, values.map((v) => el('span', { class: 'chip' }, v)))
      : el('span', { class: 'faint' }, 'none'));
}

// The other side of a refusal, seen from this person's page.
function counterpart(change, personId) {
  if (change.kind !== 'refused') return null;
  const other = change.person && change.person.id === personId ? change.other : change.person;
  return other ? [el('span', { class: 'muted' }, 'kept apart from'), who(other)] : null;
}

// When a browser was identified, said from the first visit; in UTC, the instant as well.
function identifiedAt(ms, firstSeen) {
  const after = `identified ${duration(ms - firstSeen)} after the first visit`;
  return when('dd', null, ms, after, (instant) => [after, ', at ', instant]);
}

function fact(label, value) {
  return el('div', { class: 'fact' }, el('span', { class: 'fact-label' }, label), el('span', { class: 'fact-value' }, value));
}

export function render(main, { feed }, [id]) {
  const timeline = el('ol', { class: 'timeline', id: 'timeline' });
  const more = el('div', { class: 'more' });
  const orders = el('div', { class: 'card-body' }, el('span', { class: 'faint' }, 'Loading…'));
  const ordersValue = el('span', null, '…');
  let events = [];
  let next = null;
  let refresh = null;

  // Drawn again whenever this person's events arrive: the keyboard's place is kept.
  const drawTimeline = () => keepFocus([timeline, more], 'data-seq', () => {
    replace(timeline, events.length ? timelineItems(events) : el('li', null, empty('No events', '')));
    replace(more, next ? el('button', { class: 'button small', type: 'button', id: 'older', onclick: older }, 'Load older') : null);
  });
  const older = async () => {
    const page = await get(`persons/${id}/timeline`, { limit: PAGE, before: next });
    events = events.concat(page.events);
    next = page.next;
    drawTimeline();
    // The first event it brought takes the focus, as after every Load older.
    if (page.events.length) focusItem(timeline.querySelector(`[data-seq="${page.events[0].seq}"]`));
  };
  const reload = async () => {
    const page = await get(`persons/${id}/timeline`, { limit: Math.max(PAGE, events.length) });
    events = page.events;
    next = page.next;
    drawTimeline();
  };

  replace(main, el('div', { class: 'empty' }, 'Loading…'));
  get(`persons/${id}`).then((person) => {
    if (String(person.id) !== String(id)) {
      location.replace(`#/people/${person.id}`);
      return;
    }
    const traits = Object.entries(person.traits || {});
    replace(main,
      el('a', { class: 'crumb', href: '#/people' }, '← People'),
      el('div', { class: 'stack' },
        el('section', { class: 'card', id: 'profile' },
          el('div', { class: 'profile-head' }, avatar(person.label, 'large'),
            el('div', null, el('h1', null, personName(person.label)),
              el('div', { class: 'chips' },
                el('span', { class: `badge ${person.identified ? 'identified' : ''}` }, person.identified ? 'Identified' : 'Anonymous'),
                el('span', { class: 'muted' }, `person #${person.id}`)))),
          el('div', { class: 'facts' },
            fact('First seen', when('span', null, person.first_seen, dateTime(person.first_seen))),
            fact('Last seen', when('span', null, person.last_seen, dateTime(person.last_seen))),
            fact('Events', number(person.event_count)),
            fact('Order value', ordersValue))),
        el('div', { class: 'split' },
          el('section', { class: 'card' },
            el('div', { class: 'card-head' }, el('h2', null, 'Stitched timeline'),
              el('p', null, el('span', { class: 'badge stitched' }, 'anonymous · stitched'), ' happened before they identified')),
            timeline, more),
          el('div', { class: 'stack' },
            el('section', { class: 'card' }, el('div', { class: 'card-head' }, el('h2', null, 'Identifiers')),
              el('div', { class: 'card-body stack' },
                chipList('Emails', person.emails),
                chipList('User ids', person.user_ids),
                chipList(`Browsers (${person.anonymous_ids.length})`, person.anonymous_ids),
                person.browsers.length ? el('dl', { class: 'kv' }, person.browsers.map((b) => [
                  el('dt', { class: 'mono', title: b.anonymous_id }, browser(b.anonymous_id)),
                  b.identified_at == null ? el('dd', null, 'joined by stitching')
                    : identifiedAt(b.identified_at, person.first_seen),
                ])) : null)),
            el('section', { class: 'card', id: 'orders' }, el('div', { class: 'card-head' }, el('h2', null, 'Orders')), orders),
            el('section', { class: 'card' }, el('div', { class: 'card-head' }, el('h2', null, 'Traits')),
              el('div', { class: 'card-body' }, traits.length
                ? el('dl', { class: 'kv', id: 'traits' }, traits.map(([k, v]) => [el('dt', null, k), el('dd', null, text(v))]))
                : el('span', { class: 'faint' }, 'No traits sent'))),
            el('section', { class: 'card' }, el('div', { class: 'card-head' }, el('h2', null, 'Identity events')),
              person.identity_events.length ? el('ul', { class: 'feed-list' }, person.identity_events.map((c) =>
                el('li', { class: 'feed-item' }, when('span', { class: 'time' }, c.at, shortDate(c.at)),
                  el('div', { class: 'feed-main' }, el('div', { class: 'feed-title' },
                    el('span', { class: `badge ${c.kind}` }, c.kind), counterpart(c, person.id)),
                  el('div', { class: 'feed-sub' }, c.explanation || `${number(c.anonymous_events_stitched)} anonymous events stitched`)), null)))
                : el('div', { class: 'card-body faint' }, 'None')),
            person.household_members > 1 ? el('a', { class: 'button', href: `#/households/${person.id}` },
              `Household: ${plural(person.household_members, 'member', 'members')}`) : null))));
    reload().catch((error) => replace(timeline, errorBanner(error)));
    get(`persons/${id}/orders`).then((found) => {
      ordersValue.textContent = found.totals.length
        ? found.totals.map((t) => money(t.value, t.currency)).join(' + ') : 'none yet';
      replace(orders, found.orders.length ? el('ul', { class: 'feed-list' }, found.orders.map((o) =>
        // The time under the order id, not in a column of its own: beside it, the id had no
        // room in this side card and broke in two ("FK-" / "MX6CV8TY").
        el('li', { class: 'feed-item order' },
          el('div', { class: 'feed-main' }, el('div', { class: 'feed-title' }, o.order_id ? text(o.order_id) : 'Order'),
            el('div', { class: 'feed-sub' }, when('span', { class: 'time' }, o.timestamp, shortDate(o.timestamp)),
              o.products.length ? ` · ${o.products.join(', ')}` : null)),
          el('strong', { class: 'num' }, money(o.value, o.currency)))))
        : el('span', { class: 'faint' }, 'No orders yet'),
      found.complete ? null : el('p', { class: 'faint' }, `Only the newest ${plural(found.scanned, 'order', 'orders')}.`));
    }).catch((error) => replace(orders, errorBanner(error)));
  }).catch((error) => replace(main, el('a', { class: 'crumb', href: '#/people' }, '← People'), errorBanner(error)));

  return feed.on('events', (arrived) => {
    if (!arrived.some((e) => e.person && String(e.person.id) === String(id))) return;
    clearTimeout(refresh);
    refresh = setTimeout(() => reload().catch(() => {}), 300);
  });
}
