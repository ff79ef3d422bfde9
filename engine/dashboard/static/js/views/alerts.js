// Alerts: the Discord alerts sales gets, with their delivery state and, when one failed, why.

import { get } from '../api.js';
import { segmented } from '../controls.js';
import { el, replace, row, table, empty, errorBanner } from '../dom.js';
import { number, shortDate } from '../format.js';
import { who } from '../who.js';

const REFRESH_MS = 3000;
const STATES = [['all', 'All'], ['pending', 'Pending'], ['sent', 'Sent'], ['failed', 'Failed']];
const COLUMNS = [
  { label: 'Created' }, { label: 'Rule' }, { label: 'Person' }, { label: 'Summary', class: 'wrap' },
  { label: 'State' }, { label: 'Attempts', class: 'right' }, { label: 'Delivery', class: 'wrap' },
];

function delivery(alert) {
  if (alert.state === 'sent') return el('span', { class: 'muted' }, `sent ${shortDate(alert.sent_at)}`);
  if (alert.last_error) return el('span', { class: alert.state === 'failed' ? 'failed-reason' : 'muted' }, alert.last_error);
  return el('span', { class: 'faint' }, 'waiting for its turn');
}

export function render(main) {
  let state = 'all';
  let latest = { alerts: [], counts: {} };
  const seg = segmented('Delivery state', STATES, state, (value) => { state = value; draw(); }, { counts: true });
  const body = el('div', { id: 'alerts' });

  const draw = () => {
    for (const button of seg.children) {
      const value = button.dataset.value;
      const count = value === 'all' ? Object.values(latest.counts).reduce((a, b) => a + b, 0) : latest.counts[value] || 0;
      button.querySelector('.count').textContent = number(count);
    }
    const shown = latest.alerts.filter((a) => state === 'all' || a.state === state);
    replace(body, shown.length ? table(COLUMNS, shown.map((a) => row(COLUMNS, [
      el('span', { class: 'time' }, shortDate(a.created_at)),
      a.rule,
      a.person ? who(a.person) : `#${a.person_id}`,
      a.summary,
      el('span', { class: `badge ${a.state}` }, a.state),
      el('span', { class: 'num' }, number(a.attempts)),
      delivery(a),
    ], { 'data-state': a.state, 'data-id': a.id })))
      : empty(state === 'all' ? 'No alerts yet' : `No ${state} alerts`,
        'Alerts are written when a rule in bond.toml ([[alerts.rules]]) matches, then delivered to Discord.'));
  };
  const refresh = () => get('alerts', { limit: 200 }).then((page) => { latest = page; draw(); })
    .catch((error) => replace(body, errorBanner(error)));

  replace(main,
    el('div', { class: 'page-head' },
      el('div', null, el('h1', null, 'Alerts'),
        el('p', null, 'Discord alerts for high-value people, as the worker wrote them and as Discord took them.')),
      seg),
    el('section', { class: 'card' }, body));
  draw();
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
