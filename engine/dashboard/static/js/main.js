// The dashboard shell: one page, a view per hash route, one live feed shared by all views.

import { get } from './api.js';
import { errorBanner, replace } from './dom.js';
import { Feed } from './feed.js';
import * as alerts from './views/alerts.js';
import * as health from './views/health.js';
import * as household from './views/household.js';
import * as households from './views/households.js';
import * as live from './views/live.js';
import * as people from './views/people.js';
import * as person from './views/person.js';
import * as stitches from './views/stitches.js';

const ROUTES = [
  [/^#\/live$/, live, 'live', 'Live'],
  [/^#\/stitches$/, stitches, 'stitches', 'Stitches'],
  [/^#\/people$/, people, 'people', 'People'],
  [/^#\/people\/(\d+)$/, person, 'people', 'Person'],
  [/^#\/households$/, households, 'households', 'Households'],
  [/^#\/households\/(\d+)$/, household, 'households', 'Household'],
  [/^#\/alerts$/, alerts, 'alerts', 'Alerts'],
  [/^#\/health$/, health, 'health', 'Health'],
];

const main = document.getElementById('main');
const feed = new Feed(document.getElementById('connection'));
let leave = null;

// On a phone the tabs scroll sideways: keep the current one in sight.
function showTab() {
  const current = document.querySelector('.tabs a[aria-current]');
  if (current) current.scrollIntoView({ block: 'nearest', inline: 'center' });
}

function route() {
  const match = ROUTES.map(([pattern, ...rest]) => [location.hash.match(pattern), ...rest]).find(([m]) => m);
  if (!match) {
    // Rewritten in place, not navigated: a navigation the user starts meanwhile must win.
    history.replaceState(null, '', '#/live');
    route();
    return;
  }
  const [found, view, tab, title] = match;
  if (leave) leave();
  for (const link of document.querySelectorAll('.tabs a')) {
    if (link.dataset.view === tab) {
      link.setAttribute('aria-current', 'page');
      showTab();
    } else {
      link.removeAttribute('aria-current');
    }
  }
  document.title = `${title} · Bond`;
  leave = view.render(main, { feed }, found.slice(1)) || null;
  window.scrollTo(0, 0);
}

async function start() {
  get('session').then((session) => { document.getElementById('csrf').value = session.csrf; });
  try {
    const initial = await get('live');
    feed.start(initial.events, initial.position);
  } catch (error) {
    replace(main, errorBanner(error));
    return;
  }
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', showTab);
  route();
}

start();
