// Households: shared accounts whose behaviour shows more than one person.

import { get } from '../api.js';
import { personSearch } from '../controls.js';
import { el, replace, empty, errorBanner, focusItem } from '../dom.js';
import { memberClass } from '../charts.js';
import { number } from '../format.js';
import { avatar, personName } from '../who.js';

function householdCard(household) {
  const person = household.person;
  const fact = (n, what) => el('span', null, el('b', null, number(n)), ` ${what}`);
  return el('a', { class: 'card household-card', href: `#/households/${person.id}`, 'data-person': person.id },
    el('div', { class: 'member-head' }, avatar(person),
      el('strong', { class: 'who-name' }, personName(person)),
      el('span', { class: 'dots' }, Array.from({ length: household.members }, (_, i) => el('span', { class: `dot ${memberClass(i)}` })))),
    el('div', { class: 'feed-facts' },
      fact(household.members, 'members'), fact(household.sessions, 'sessions'), fact(household.orders, 'orders')));
}

export function render(main) {
  const grid = el('div', { class: 'household-grid', id: 'households' });
  const more = el('div', { class: 'more' });
  let next = null;

  const load = async (before) => {
    const page = await get('households', { before });
    if (!before && !page.households.length) {
      replace(grid, el('div', { class: 'card' }, empty('No shared accounts yet',
        'An account appears here once its sessions show more than one person behind it.')));
    } else {
      const cards = page.households.map(householdCard);
      grid.append(...cards);
      // Load more's button goes with the page it read: the first household it brought takes the focus.
      if (before) focusItem(cards[0]);
    }
    next = page.next;
    replace(more, next ? el('button', { class: 'button small', type: 'button', onclick: () => load(next) }, 'Load more') : null);
  };

  const { form, message } = personSearch({
    placeholder: 'Find by email or user id',
    button: el('button', { class: 'button', type: 'submit' }, 'Open'),
    formClass: 'toolbar',
    inputClass: 'input search',
    route: (id) => `#/households/${id}`,
  });
  form.append(message);

  replace(main,
    el('div', { class: 'page-head' },
      el('div', null, el('h1', null, 'Households'),
        el('p', null, 'Shared accounts: who the members are, when and how each of them shops, and who most likely placed each order.')),
      form),
    grid, more);
  load().catch((error) => replace(grid, errorBanner(error)));
}
