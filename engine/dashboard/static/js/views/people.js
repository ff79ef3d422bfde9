// People: find anyone by email, user id or anonymous id; below, everyone identified, most
// recently active first, a page at a time.

import { get } from '../api.js';
import { personSearch } from '../controls.js';
import { el, replace, empty, errorBanner, focusItem } from '../dom.js';
import { ago, dateTime, plural } from '../format.js';
import { when } from '../times.js';
import { personName, who } from '../who.js';

function personItem(person) {
  return el('li', { class: 'feed-item', 'data-person': person.id },
    when('span', { class: 'time' }, person.last_seen, ago(person.last_seen)),
    el('div', { class: 'feed-main' },
      el('div', { class: 'feed-title' }, who(person.label),
        person.verified ? el('span', { class: 'badge verified' }, 'verified') : null),
      el('div', { class: 'feed-facts' },
        el('span', null, el('b', null, plural(person.event_count, 'event', 'events'))),
        el('span', null, 'first seen ', when('span', null, person.first_seen, dateTime(person.first_seen))))),
    el('a', { class: 'button small', href: `#/people/${person.id}`, 'aria-label': `Open ${personName(person.label)}` }, 'Open'));
}

export function render(main) {
  const { form, input, message } = personSearch({
    placeholder: 'ada@example.com, a user id or an anonymous id',
    button: el('button', { class: 'button primary', type: 'submit' }, 'Find'),
    formClass: 'search-row',
    inputClass: 'input',
    route: (id) => `#/people/${id}`,
  });
  input.id = 'person-search';
  const list = el('ul', { class: 'feed-list', id: 'people-list' });
  const more = el('div', { class: 'more' });

  // Each page continues from the last one's `next`: nobody comes twice in one walk, and
  // whoever comes back meanwhile is at the top the next time the view opens.
  const load = async (before) => {
    const page = await get('people', { before });
    if (!before && !page.people.length) {
      replace(list, el('li', null,
        empty('Nobody identified yet', 'People appear here when they sign up, log in or check out.')));
    } else {
      const items = page.people.map(personItem);
      list.append(...items);
      // Load older's button goes with the page it read: the first person it brought takes the focus.
      if (before) focusItem(items[0]);
    }
    replace(more, page.next ? el('button', {
      class: 'button small', type: 'button', id: 'people-older',
      // Once: a second click would read the same page again.
      onclick: (event) => {
        event.currentTarget.disabled = true;
        load(page.next).catch((error) => replace(more, errorBanner(error)));
      },
    }, 'Load older') : null);
  };

  replace(main,
    el('div', { class: 'page-head' }, el('div', null, el('h1', null, 'People'),
      el('p', null, 'Everyone Bond knows, with every browser and every anonymous visit that led to them.'))),
    el('div', { class: 'stack' },
      el('section', { class: 'card search-hero' }, el('h2', null, 'Find a person'), form, message),
      el('section', { class: 'card' }, el('div', { class: 'card-head' }, el('h2', null, 'Identified people'),
        el('p', null, 'Most recently active first')), list, more)));
  load().catch((error) => replace(list, el('li', null, errorBanner(error))));
}
