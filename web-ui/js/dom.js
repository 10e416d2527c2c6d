// Building the page without innerHTML: every piece of text from the gateway (names,
// locations, error messages) goes in through textContent, so a detector called
// "<script>" stays a name. Also the inline SVG icons, the toast line and the
// confirmation dialog shared by every page.

const SVG_NS = 'http://www.w3.org/2000/svg';

// h('div', {class: 'x', onclick: fn, dataset: {id: 1}}, child, 'text', [more]) -> element.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected')
        el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// Replace el's children with the given ones.
export function fill(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// Icons drawn on a 24x24 grid with strokes in currentColor, so they take the text colour.
const ICONS = {
  fire: ['M12 2c1 4 5 6 5 11a5 5 0 0 1-10 0c0-3 2-4 2-7 2 1 3 3 3 5 1-2 1-5 0-9z'],
  building: ['M4 21V3h10v18', 'M14 9h6v12', 'M2 21h20', 'M7 7h2M11 7h0M7 11h2M7 15h2M17 13h0M17 17h0'],
  health: ['M3 12h4l3-7 4 14 3-7h4'],
  list: ['M8 6h13M8 12h13M8 18h13', 'M3 6h1M3 12h1M3 18h1'],
  wrench: ['M14 7a4 4 0 0 0 5 5l-9 9-3-3 9-9a4 4 0 0 0-2-2z', 'M15 3l3 3'],
  users: ['M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M2 21c0-4 3-7 7-7s7 3 7 7', 'M17 4a4 4 0 0 1 0 7',
    'M19 14c2 1 3 3 3 7'],
  logout: ['M15 4h4v16h-4', 'M10 8l-4 4 4 4', 'M6 12h10'],
  globe: ['M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z', 'M3 12h18', 'M12 3c3 3 3 15 0 18c-3-3-3-15 0-18z'],
  check: ['M4 12l5 5L20 6'],
  cross: ['M6 6l12 12M18 6L6 18'],
  bell: ['M6 16V11a6 6 0 0 1 12 0v5l2 2H4z', 'M10 20a2 2 0 0 0 4 0'],
  mute: ['M4 9h4l5-4v14l-5-4H4z', 'M16 9l5 6M21 9l-5 6'],
  sound: ['M4 9h4l5-4v14l-5-4H4z', 'M16 8a5 5 0 0 1 0 8', 'M19 5a9 9 0 0 1 0 14'],
  reset: ['M4 12a8 8 0 1 0 3-6', 'M4 3v5h5'],
  flask: ['M9 3h6M10 3v6l-6 11h16L14 9V3'],
  link: ['M10 14a4 4 0 0 0 6 0l3-3a4 4 0 0 0-6-6l-1 1', 'M14 10a4 4 0 0 0-6 0l-3 3a4 4 0 0 0 6 6l1-1'],
  warn: ['M12 3l10 18H2z', 'M12 10v5M12 18h0'],
};

export function icon(name, cls) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon' + (cls ? ' ' + cls : ''));
  for (const d of ICONS[name] || ICONS.warn) {
    const p = document.createElementNS(SVG_NS, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
  }
  return svg;
}

let toastTimer = null;

// A short message at the bottom of the screen; kind 'ok' or 'error'.
export function toast(text, kind) {
  let el = document.getElementById('toast');
  if (!el) {
    el = h('div', { id: 'toast', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(el);
  }
  el.className = 'toast show ' + (kind || 'ok');
  el.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), kind === 'error' ? 8000 : 4000);
}

// A modal question with two buttons; resolves true when confirmed. Used instead of
// window.confirm so it reads well on a phone and in either language.
export function ask(question, yesText, noText, danger) {
  return new Promise((resolve) => {
    const done = (v) => {
      overlay.remove();
      document.removeEventListener('keydown', onKey);
      resolve(v);
    };
    const onKey = (e) => {
      if (e.key === 'Escape') done(false);
    };
    const yes = h('button', { class: danger ? 'btn danger' : 'btn primary', onclick: () => done(true),
      'data-test': 'confirm-yes' }, yesText);
    const overlay = h('div', { class: 'modal-overlay' },
      h('div', { class: 'modal', role: 'dialog', 'aria-modal': 'true' },
        h('p', { class: 'modal-text', text: question }),
        h('div', { class: 'modal-buttons' },
          h('button', { class: 'btn', onclick: () => done(false), 'data-test': 'confirm-no' }, noText),
          yes)));
    document.addEventListener('keydown', onKey);
    document.body.appendChild(overlay);
    yes.focus();
  });
}

// A labelled form field with a place for its own error message under it.
export function field(label, input, hint) {
  const err = h('div', { class: 'field-error', 'aria-live': 'polite' });
  const id = input.id || 'f-' + Math.random().toString(36).slice(2, 9);
  input.id = id;
  const wrap = h('div', { class: 'field' },
    h('label', { for: id, text: label }), input, hint ? h('div', { class: 'hint', text: hint }) : null, err);
  wrap.setError = (msg) => {
    err.textContent = msg || '';
    wrap.classList.toggle('invalid', !!msg);
    if (msg) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  };
  return wrap;
}

// A <select> from [value, label] pairs.
export function select(name, options, value) {
  const s = h('select', { name });
  for (const [v, label] of options) s.appendChild(h('option', { value: v, text: label, selected: v === value }));
  if (value !== undefined && value !== null) s.value = value;
  return s;
}
