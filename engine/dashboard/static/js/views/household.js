// One household: each member drawn as a picture (when in the day they are active, on which
// devices, in which categories), each order with its member probabilities, and drift events.

import { get } from '../api.js';
import { el, replace, row, table, errorBanner } from '../dom.js';
import { FORMER, activityCurves, bars, lineKey, memberLook, probabilityBar } from '../charts.js';
import { percent, plural, shortDate, text } from '../format.js';
import { when } from '../times.js';
import { personName } from '../who.js';

function hourLabel(hour) {
  const h = Math.floor(hour);
  const m = Math.round((hour - h) * 60 / 15) * 15;
  return `${String(h % 24).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

// What a member's card says under their name, and the activity chart's name says of them.
function habits(member) {
  return [`${percent(member.share)} of sessions`, `usually around ${hourLabel(member.typical_hour)}`];
}

// The member's card carries their number and the sample of their activity curve, as the
// chart's legend does: the card and the curve are matched without their colour.
function memberCard(member, index) {
  const { cls, color, dash, mark } = memberLook(index);
  return el('section', { class: 'card member', 'data-member': member.member },
    el('div', { class: 'member-head' }, el('span', { class: `avatar ${cls}`, 'aria-hidden': 'true' }, mark),
      el('div', null, el('h3', null, `Member ${mark}`, ' ', lineKey(color, dash)),
        el('span', { class: 'muted' }, habits(member).join(' · ')))),
    el('div', null, el('div', { class: 'section-label' }, 'When'),
      bars([
        { label: 'Weekdays', value: 1 - member.weekend_share, color },
        { label: 'Weekends', value: member.weekend_share, color },
      ])),
    el('div', null, el('div', { class: 'section-label' }, 'Devices'),
      member.devices.length ? bars(member.devices.map((d) => ({ label: `${d.type} …${d.device.slice(-6)}`, value: d.share, color })))
        : el('span', { class: 'faint' }, 'none yet')),
    el('div', null, el('div', { class: 'section-label' }, 'Categories'),
      member.top_categories.length ? bars(member.top_categories.map((c) => ({ label: c.category, value: c.share, color })))
        : el('span', { class: 'faint' }, 'none yet')));
}

// A change in who uses the account: a member who appeared or left, or (from detectors that do
// not say which) a change in behaviour.
function driftItem(change, indexOf) {
  const who = change.member_id == null ? null
    : indexOf.has(change.member_id) ? `Member ${indexOf.get(change.member_id) + 1}` : `Member ${change.member_id}`;
  const title = change.kind === 'join' ? `${who || 'A new member'} appeared`
    : change.kind === 'leave' ? `${who || 'A member'} left` : 'Behaviour changed';
  return el('li', { class: 'feed-item', 'data-kind': change.kind || 'change' },
    when('span', { class: 'time' }, change.at_ms, shortDate(change.at_ms)),
    el('div', { class: 'feed-main' },
      el('div', { class: 'feed-title' }, el('span', { class: `badge ${change.kind === 'leave' ? 'refused' : 'merged'}` }, change.kind || 'change'), title),
      el('div', { class: 'feed-sub' },
        `noticed ${plural(change.sessions_since_change, 'session', 'sessions')} after it began · p = ${change.p_value.toPrecision(2)} · ${plural(change.members_before, 'member', 'members')} before`)),
    null);
}

const ORDER_COLUMNS = [
  { label: 'When' }, { label: 'Order' }, { label: 'Most likely' }, { label: 'Member probabilities', class: 'wrap' },
];

function orderRow(attribution, indexOf) {
  const name = (id) => (indexOf.has(Number(id)) ? `Member ${indexOf.get(Number(id)) + 1}` : `Former member ${id}`);
  const parts = Object.entries(attribution.probabilities).map(([id, value]) => {
    const index = indexOf.get(Number(id));
    const said = `${name(id)} ${percent(value)}`;
    return { ...(index == null ? FORMER : memberLook(index)), name: name(id), value, said };
  });
  return row(ORDER_COLUMNS, [
    when('span', { class: 'time' }, attribution.timestamp, shortDate(attribution.timestamp)),
    attribution.order_id ? el('span', { class: 'mono' }, text(attribution.order_id)) : '—',
    el('strong', null, `${name(attribution.member)} · ${percent(attribution.probability)}`),
    el('div', { class: 'prob' }, probabilityBar(parts, 'Member probabilities'),
      el('div', { class: 'prob-legend' }, parts.map((p) => el('span', { 'data-member': p.name },
        el('span', { class: `mark ${p.cls}`, 'aria-hidden': 'true' }, p.mark), p.said)))),
  ], { 'data-order': attribution.order_id ? text(attribution.order_id) : '' });
}

export function render(main, _context, [id]) {
  replace(main, el('div', { class: 'empty' }, 'Loading…'));
  get(`households/${id}`).then((household) => {
    if (String(household.person_id) !== String(id)) {
      location.replace(`#/households/${household.person_id}`);
      return;
    }
    const members = household.members;
    const indexOf = new Map(members.map((m, i) => [m.member, i]));
    const curves = members.map((m, i) => {
      const look = memberLook(i);
      const name = `Member ${look.mark}`;
      return { ...m, ...look, name, said: [name, ...habits(m)].join(', ') };
    });
    const orders = household.attributions.slice().reverse();
    replace(main,
      el('a', { class: 'crumb', href: '#/households' }, '← Households'),
      el('div', { class: 'page-head' },
        el('div', null, el('h1', null, `Household of ${personName(household.person)}`),
          el('p', null, `${plural(members.length, 'member', 'members')} told apart by behaviour · ${plural(orders.length, 'order', 'orders')} attributed · `,
            el('a', { href: `#/people/${household.person.id}` }, 'account timeline')))),
      el('div', { class: 'stack' },
        el('section', { class: 'card' },
          el('div', { class: 'card-head' }, el('h2', null, 'Activity by local hour'),
            el('div', { class: 'legend' }, curves.map((c) => el('span', { 'data-series': c.name }, lineKey(c.color, c.dash), c.name)))),
          el('div', { class: 'card-body' }, members.length ? activityCurves(curves, 'Activity by local hour of day')
            : el('span', { class: 'faint' }, 'Not enough sessions to tell members apart yet.'))),
        el('div', { class: 'members', id: 'members' }, members.map(memberCard)),
        el('section', { class: 'card', id: 'conversions' },
          el('div', { class: 'card-head' }, el('h2', null, 'Conversions'), el('p', null, 'Who most likely placed each order, with every member\'s probability')),
          orders.length ? table(ORDER_COLUMNS, orders.map((a) => orderRow(a, indexOf)))
            : el('div', { class: 'card-body faint' }, 'No orders yet')),
        el('section', { class: 'card' },
          el('div', { class: 'card-head' }, el('h2', null, 'Drift'), el('p', null, 'When the household\'s behaviour changed (someone moved in or out)')),
          household.drift.length ? el('ul', { class: 'feed-list', id: 'drift' }, household.drift.slice().reverse().map((d) => driftItem(d, indexOf)))
            : el('div', { class: 'card-body faint' }, 'No change detected'))));
  }).catch((error) => replace(main, errorBanner(error)));
}
