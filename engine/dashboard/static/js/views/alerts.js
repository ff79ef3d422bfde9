// Alerts: the Discord alerts sales gets, with their delivery state and, when one failed, why.

import { get } from '../api.js';
import { segmented } from '../controls.js';
import { el, replace, row, table, empty, errorBanner, focusItem, keepFocus } from '../dom.js';
import { number, shortDate } from '../format.js';
import { when } from '../times.js';
import { who } from '../who.js';

const REFRESH_MS = 3000;
const PAGE = 200;
const STATES = [['all', 'All'], ['pending', 'Pending'], ['sent', 'Sent'], ['failed', 'Failed']];
const COLUMNS = [
  { label: 'Created' }, { label: 'Rule' }, { label: 'Person' }, { label: 'Summary', class: 'wrap' },
  { label: 'State' }, { label: 'Attempts', class: 'right' }, { label: 'Delivery', class: 'wrap' },
];

// The worker's sender only runs with a webhook: without one a pending alert stays pending for
// good, and saying "waiting for its turn" would make the view look stuck.
const NO_WEBHOOK = 'no webhook configured: not sent';
const CONNECT = 'The worker has no Discord webhook, so alerts are kept here and not sent. '
  + 'Set BOND_DISCORD_WEBHOOK_URL (or [alerts] webhook_url in bond.toml) and restart the worker: '
  + 'it then delivers the pending ones.';

function delivery(alert, webhook) {
  if (alert.state === 'sent') return el('span', { class: 'muted' }, 'sent ', when('span', null, alert.sent_at, shortDate(alert.sent_at)));
  if (alert.last_error) return el('span', { class: alert.state === 'failed' ? 'failed-reason' : 'muted' }, alert.last_error);
  if (alert.state === 'pending' && webhook === false) return el('span', { class: 'no-webhook' }, NO_WEBHOOK);
  return el('span', { class: 'faint' }, 'waiting for its turn');
}

export function render(main) {
  let state = 'all';
  let counts = {};
  let webhook = null;
  let noticed;
  // Every alert read so far by id: the refresh rereads the newest page (their states change),
  // Load older adds the pages before it, and nothing read goes away while the view is open.
  const known = new Map();
  let next;
  let loading = false;
  const seg = segmented('Delivery state', STATES, state, (value) => { state = value; draw(); }, { counts: true });
  const body = el('div', { id: 'alerts' });
  const notice = el('div', { id: 'alerts-webhook' });
  const more = el('div', { class: 'more' });

  const keep = (page) => {
    for (const alert of page.alerts) known.set(alert.id, alert);
    counts = page.counts;
    webhook = page.webhook;
  };
  const total = (value) => (value === 'all' ? Object.values(counts).reduce((a, b) => a + b, 0) : counts[value] || 0);

  const showing = (alert) => state === 'all' || alert.state === state;
  // Drawn again at every refresh: the keyboard's place is kept, and the notice (a live region)
  // only changes, and so is only read, when the webhook comes or goes.
  const draw = () => keepFocus([body, more], 'data-id', () => {
    for (const button of seg.children) button.querySelector('.count').textContent = number(total(button.dataset.value));
    const shown = [...known.values()].sort((a, b) => b.id - a.id).filter(showing);
    if (webhook !== noticed) {
      noticed = webhook;
      replace(notice, webhook === false ? el('div', { class: 'notice', role: 'status' }, el('strong', null, 'No webhook configured. '), CONNECT) : null);
    }
    replace(body, shown.length ? table(COLUMNS, shown.map((a) => row(COLUMNS, [
      when('span', { class: 'time' }, a.created_at, shortDate(a.created_at)),
      a.rule,
      a.person ? who(a.person) : `#${a.person_id}`,
      a.summary,
      el('span', { class: `badge ${a.state}` }, a.state),
      el('span', { class: 'num' }, number(a.attempts)),
      delivery(a, webhook),
    ], { 'data-state': a.state, 'data-id': a.id })))
      : empty(state === 'all' ? 'No alerts yet' : `No ${state} alerts`,
        'Alerts are written when a rule in bond.toml ([[alerts.rules]]) matches, then delivered to Discord.'));
    replace(more, next == null ? null : [
      el('span', { class: 'faint', id: 'alerts-shown' }, `${number(shown.length)} of ${number(total(state))} shown`),
      el('button', {
        class: 'button small', type: 'button', id: 'alerts-older', disabled: loading,
        // Once until it answers (the refresh redraws the button meanwhile): a second click
        // would read the same page again.
        onclick: () => {
          loading = true;
          draw();
          get('alerts', { limit: PAGE, before: next })
            .then((page) => {
              keep(page);
              next = page.next;
              loading = false;
              draw();
              // The first alert it brought takes the focus, as after every Load older.
              const first = page.alerts.find(showing);
              if (first) focusItem(body.querySelector(`tr[data-id="${first.id}"]`));
            })
            .catch((error) => replace(more, errorBanner(error)));
        },
      }, 'Load older'),
    ]);
  });
  const refresh = () => get('alerts', { limit: PAGE }).then((page) => {
    // The first page sets where Load older starts; later refreshes only bring newer alerts.
    if (next === undefined) next = page.next;
    keep(page);
    draw();
  }).catch((error) => replace(body, errorBanner(error)));

  replace(main,
    el('div', { class: 'page-head' },
      el('div', null, el('h1', null, 'Alerts'),
        el('p', null, 'Discord alerts for high-value people, as the worker wrote them and as Discord took them.')),
      seg),
    notice,
    el('section', { class: 'card' }, body, more));
  draw();
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
