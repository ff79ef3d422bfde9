// A person as lists show them: an initial, their email or user id, a link to their page.

import { el } from './dom.js';
import { memberClass } from './charts.js';

export function personName(person) {
  return person.name || `Anonymous visitor #${person.id}`;
}

export function avatar(person, size = '') {
  if (!person.identified) return el('span', { class: `avatar anon ${size}`, 'aria-hidden': 'true' }, '?');
  const initial = Array.from(personName(person))[0] || '?';
  return el('span', { class: `avatar ${memberClass(person.id)} ${size}`, 'aria-hidden': 'true' }, initial);
}

export function who(person) {
  const name = personName(person);
  return el('a', { class: 'who', href: `#/people/${person.id}`, title: name },
    avatar(person), el('span', { class: `who-name${person.identified ? '' : ' anon-label'}` }, name));
}
