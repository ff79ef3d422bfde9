// Controls several views share: a segmented choice and the find-a-person form.

import { get } from './api.js';
import { el } from './dom.js';

// Buttons of which one is pressed; `choose` hears the value picked. Each button may carry a
// count (`.count`), which the view fills in.
export function segmented(label, options, initial, choose, { counts = false } = {}) {
  const group = el('div', { class: 'seg', role: 'group', 'aria-label': label });
  for (const [value, text] of options) {
    group.append(el('button', {
      type: 'button', 'aria-pressed': String(value === initial), 'data-value': value,
      onclick: () => {
        for (const button of group.children) {
          button.setAttribute('aria-pressed', String(button.dataset.value === value));
        }
        choose(value);
      },
    // The space keeps the count a word of its own in the button's name ("Failed 1", not "Failed1").
    }, text, counts ? [' ', el('span', { class: 'count' }, '0')] : null));
  }
  return group;
}

// Find a person by email, user id or anonymous id, then go to `route(person id)`.
export function personSearch({ placeholder, button, formClass, inputClass, route }) {
  const input = el('input', {
    class: inputClass, type: 'search', name: 'q', autocomplete: 'off', placeholder, 'aria-label': placeholder,
  });
  const message = el('p', { class: 'form-error', role: 'alert' });
  const form = el('form', { class: formClass, role: 'search' }, input, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.textContent = '';
    try {
      const found = await get('people/search', { q: input.value });
      location.hash = route(found.person_id);
    } catch (error) {
      message.textContent = error.message;
    }
  });
  return { form, input, message };
}
