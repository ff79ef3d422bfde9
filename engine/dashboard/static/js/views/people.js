// People: find anyone by email, user id or anonymous id; the recently identified below.

import { get } from '../api.js';
import { personSearch } from '../controls.js';
import { el, replace, empty, errorBanner } from '../dom.js';
import { ago } from '../format.js';
import { who } from '../who.js';

export function render(main) {
  const { form, input, message } = personSearch({
    placeholder: 'ada@example.com, a user id or an anonymous id',
    button: el('button', { class: 'button primary', type: 'submit' }, 'Find'),
    formClass: 'search-row',
    inputClass: 'input',
    route: (id) => `#/people/${id}`,
  });
  input.id = 'person-search';
  const recent = el('div');

  replace(main,
    el('div', { class: 'page-head' }, el('div', null, el('h1', null, 'People'),
      el('p', null, 'Everyone Bond knows, with every browser and every anonymous visit that led to them.'))),
    el('div', { class: 'stack' },
      el('section', { class: 'card search-hero' }, el('h2', null, 'Find a person'), form, message),
      el('section', { class: 'card' }, el('div', { class: 'card-head' }, el('h2', null, 'Recently identified')), recent)));
  input.focus();

  get('stitches', { limit: 100 }).then((page) => {
    const seen = new Set();
    const rows = [];
    for (const change of page.stitches) {
      if (change.kind === 'refused' || !change.person || seen.has(change.person.id)) continue;
      seen.add(change.person.id);
      rows.push(el('li', { class: 'feed-item' },
        el('span', { class: 'time' }, ago(change.at)),
        el('div', { class: 'feed-main' }, who(change.person)),
        el('a', { class: 'button small', href: `#/people/${change.person.id}` }, 'Open')));
    }
    replace(recent, rows.length ? el('ul', { class: 'feed-list' }, rows.slice(0, 12))
      : empty('Nobody identified yet', 'People appear here when they sign up, log in or check out.'));
  }).catch((error) => replace(recent, errorBanner(error)));
}
