// Every time a view shows, in one form: the browser's local or relative time, or the exact
// instant in UTC once the top bar's "UTC times" is pressed. A hover text alone would keep the
// exact time from keyboards, touch screens and screen readers; a focus stop or a tap target
// on each time would put hundreds of them in a keyboard's way, on a live table that grows by
// the second. Both forms are in the page and the stylesheet shows one, so rows drawn before
// and after the switch agree, and a screen reader reads what is shown.

import { el } from './dom.js';
import { hover, utc } from './format.js';

const KEY = 'bond.times';

// `tag` and `props` make the element that holds the time, which keeps the hover text; `local`
// is what it says in the browser's time; `exact` puts the UTC instant in its words, for a
// time said as part of a sentence.
export function when(tag, props, ms, local, exact = (instant) => instant) {
  if (ms == null) return el(tag, props, '—');
  // The day and the clock each kept whole: a narrow column breaks the line between them.
  const [day, clock] = utc(ms).split(/ (.*)/);
  return el(tag, { ...props, title: hover(ms) },
    el('time', { datetime: new Date(ms).toISOString() },
      el('span', { class: 't-local' }, local),
      el('span', { class: 't-utc' }, exact([el('span', null, day), ' ', el('span', null, clock)]))));
}

function stored() {
  // A browser that keeps no storage (a private window's settings) just forgets the choice.
  try {
    return localStorage.getItem(KEY) === 'utc';
  } catch {
    return false;
  }
}

function store(inUtc) {
  try {
    localStorage.setItem(KEY, inUtc ? 'utc' : 'local');
  } catch {
    // As above: the choice lasts as long as the page.
  }
}

function show(button, inUtc) {
  document.documentElement.dataset.times = inUtc ? 'utc' : 'local';
  button.setAttribute('aria-pressed', String(inUtc));
}

// The top bar's toggle: its name stays "UTC times" and its pressed state says which form the
// page shows, read by a screen reader as a toggle button.
export function timesToggle(button) {
  show(button, stored());
  button.addEventListener('click', () => {
    const inUtc = button.getAttribute('aria-pressed') !== 'true';
    show(button, inUtc);
    store(inUtc);
  });
}
