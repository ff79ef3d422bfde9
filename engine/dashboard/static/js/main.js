// The dashboard shell: one page, a view per hash route, one live feed shared by all views.

import { get } from './api.js';
import { errorBanner, focusItem, replace } from './dom.js';
import { Feed } from './feed.js';
import { timesToggle } from './times.js';
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

timesToggle(document.getElementById('utc-times'));
const main = document.getElementById('main');
const feed = new Feed(document.getElementById('connection'));
let leave = null;
let waiting = null;

// On a phone the tabs scroll sideways: keep the current one in sight.
function showTab() {
  const current = document.querySelector('.tabs a[aria-current]');
  if (current) current.scrollIntoView({ block: 'nearest', inline: 'center' });
}

// After a navigation the view's heading takes the focus, so that a screen reader says where the
// user now is and Tab goes on from the top of the view. A view that fetches before drawing gets
// it once its heading appears, unless the user has moved the focus meanwhile.
function focusHeading(from) {
  if (waiting) waiting.disconnect();
  const take = () => {
    const heading = main.querySelector('h1');
    if (!heading) return false;
    if ([from, document.body].includes(document.activeElement)) focusItem(heading);
    return true;
  };
  if (take()) return;
  waiting = new MutationObserver(() => { if (take()) waiting.disconnect(); });
  waiting.observe(main, { childList: true, subtree: true });
}

function route(event) {
  const match = ROUTES.map(([pattern, ...rest]) => [location.hash.match(pattern), ...rest]).find(([m]) => m);
  if (!match) {
    // Rewritten in place, not navigated: a navigation the user starts meanwhile must win.
    history.replaceState(null, '', '#/live');
    route(event);
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
  const from = document.activeElement;
  leave = view.render(main, { feed }, found.slice(1)) || null;
  window.scrollTo(0, 0);
  // Not on the first view: the page's title is read as it opens, and Tab starts at the top.
  if (event) focusHeading(from);
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
