// Building the page. Every string goes in as text (a text node or an attribute value), never
// as HTML, so whatever a browser sent us (a product name, an email) is shown literally.

const SVG_NS = 'http://www.w3.org/2000/svg';
// Bidi embeddings, overrides and isolates, and zero-width characters: invisible, yet they make
// one string read as another (an email shown backwards). Each is shown as U+FFFD instead. Not
// the bidi marks (U+200E, U+200F, U+061C): they reorder no letters, and Intl puts them in
// numbers and dates for right-to-left languages.
const HIDDEN = /[\u200b\u202a-\u202e\u2060\u2066-\u2069\ufeff]/g;

function visible(value) {
  return String(value).replace(HIDDEN, '\ufffd');
}

function build(node, props, children) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === 'class') node.setAttribute('class', value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : visible(value));
  }
  append(node, children);
  return node;
}

export function el(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

export function svg(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(visible(child)));
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

// A table whose cells carry their column name, so narrow screens can show rows as cards.
export function table(columns, rows) {
  return el('div', { class: 'table-wrap' },
    el('table', { class: 'data' },
      el('thead', null, el('tr', null, columns.map((c) => el('th', { class: c.class }, c.label)))),
      el('tbody', null, rows)));
}

export function row(columns, cells, props) {
  return el('tr', props, cells.map((cell, i) =>
    el('td', { 'data-label': columns[i].label, class: columns[i].class }, cell)));
}

export function empty(title, text) {
  return el('div', { class: 'empty' }, el('strong', null, title), text);
}

// Gives `node` the focus, a control or not (an item that Load older brought, a heading): a
// screen reader reads it, and Tab goes on from there.
export function focusItem(node) {
  if (!node) return;
  if (node.tabIndex < 0) node.tabIndex = -1;
  node.focus({ preventScroll: true });
}

const CONTROLS = 'a[href], button, input, [tabindex]';

// Draws `containers` again without losing the keyboard's place: what had the focus in them gets
// it back in the new drawing, found by its id, or by the `key` attribute of its item and its
// place among that item's controls. A view redrawn every few seconds would otherwise send a
// keyboard user back to the top of the page each time.
export function keepFocus(containers, key, draw) {
  const was = document.activeElement;
  if (!containers.some((c) => c !== was && c.contains(was))) {
    draw();
    return;
  }
  const item = was.closest(`[${key}]`);
  const value = item && item.getAttribute(key);
  const place = item ? [...item.querySelectorAll(CONTROLS)].indexOf(was) : -1;
  draw();
  if (was.isConnected) return;
  let again = was.id ? document.getElementById(was.id) : null;
  if (!again && item) {
    const found = containers.flatMap((c) => [...c.querySelectorAll(`[${key}]`)])
      .find((n) => n.getAttribute(key) === value);
    again = found && (was === item ? found : found.querySelectorAll(CONTROLS)[place]);
  }
  if (again && !again.disabled) focusItem(again);
}

export function errorBanner(error) {
  return el('div', { class: 'error-banner', role: 'alert' }, String(error.message || error));
}
