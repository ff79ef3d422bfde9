// Tracking that needs no code from the site: page views on load and on SPA navigation, clicks on
// elements marked data-bond-event, and identify from any submitted form with an email field.
import { d, w } from './dom.js';

const EMAIL = /^\S+@\S+\.\S+$/;

export const autotrack = (api, cfg, on, nav) => {
  if (cfg.trackPages !== false) {
    // A single-page app changes the URL first and renders the new view and its title after, in
    // the same task (a router) or on the hashchange that follows popstate: the page view waits
    // for that. A redirect (pushState, then replaceState at once) is one page view, the last.
    const later = () => setTimeout(nav);
    for (const k of ['replaceState', 'pushState']) {
      const orig = history[k];
      history[k] = function () {
        orig.apply(this, arguments);
        later();
      };
    }
    on(w, 'popstate', later);
    // A page restored from the back-forward cache runs no script again, yet it is a page view.
    on(w, 'pageshow', (e) => e.persisted && api.page());
    nav();
  }
  on(d, 'click', (e) => {
    const el = e.target.closest('[data-bond-event]');
    if (el) {
      const props = {};
      for (const a of el.attributes) if (a.name.startsWith('data-bond-prop-')) props[a.name.slice(15)] = a.value;
      api.track(el.dataset.bondEvent, props);
    }
  });
  // Only input[type=email] is ever read: never password fields, never other inputs.
  if (cfg.identifyForms !== false)
    on(d, 'submit', (e) => {
      const email = e.target.querySelector('input[type=email]')?.value.trim();
      if (EMAIL.test(email)) api.identify(null, { email });
    });
};
