// The live feed: one EventSource for the whole page. It keeps the newest events so that
// switching views does not lose them, and tells each view what arrives.

import { get } from './api.js';

const KEEP = 500;

export class Feed {
  constructor(status) {
    this.status = status;
    this.events = [];
    this.health = null;
    this.listeners = { events: new Set(), stitches: new Set(), health: new Set() };
  }

  start(initialEvents, position) {
    this.events = initialEvents.slice(0, KEEP);
    const url = new URL('api/stream', document.baseURI);
    url.searchParams.set('from', position);
    this.source = new EventSource(url);
    this.source.addEventListener('open', () => this.setStatus('live', 'Live'));
    this.source.addEventListener('error', () => {
      if (this.source.readyState !== EventSource.CLOSED) {
        this.setStatus('connecting', 'Reconnecting');
        return;
      }
      this.setStatus('down', 'Disconnected');
      // The browser gives up on an answer other than a stream, such as an ended session:
      // asking for the session sends the page back to the login when that is why.
      get('session').catch(() => {});
    });
    this.source.addEventListener('events', (e) => {
      const events = JSON.parse(e.data).reverse();
      this.events = events.concat(this.events).slice(0, KEEP);
      this.emit('events', events);
    });
    this.source.addEventListener('stitches', (e) => this.emit('stitches', JSON.parse(e.data)));
    this.source.addEventListener('health', (e) => {
      this.health = JSON.parse(e.data);
      this.emit('health', this.health);
    });
  }

  // The status is a polite live region: said once when the stream's state changes, not again.
  setStatus(state, text) {
    if (this.status.dataset.state === state && this.status.textContent === text) return;
    this.status.dataset.state = state;
    this.status.textContent = text;
  }

  on(kind, listener) {
    this.listeners[kind].add(listener);
    return () => this.listeners[kind].delete(listener);
  }

  emit(kind, data) {
    for (const listener of this.listeners[kind]) listener(data);
  }
}
