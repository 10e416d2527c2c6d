// Event history from the gateway's event log: filters by time range, kind, zone and
// detector, newest first, a link that downloads the same selection as CSV, and a notice
// when new events arrived since the list was loaded.

import { api } from './api.js';
import { h, fill, field, select } from './dom.js';
import { t, tWord, fmtTime, fmtValue } from './i18n.js';

const KINDS = ['fire_alarm', 'fire_confirmed', 'pre_alarm', 'alarm_pending', 'fault', 'restore', 'fault_restore',
  'acknowledged', 'silenced', 'reset', 'disabled', 'enabled', 'test_alarm', 'test_mode_on', 'test_mode_off',
  'gateway_start'];
const LIMITS = ['100', '500', '2000'];

// "2026-11-23T12:04" for a datetime-local input, in the browser's time zone.
function localInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function idOf(x) {
  return x && typeof x === 'object' ? x.id : x || '';
}

function nameOf(x) {
  return x && typeof x === 'object' ? x.name || x.id : x || '';
}

function eventList(data) {
  if (Array.isArray(data)) return data;
  return (data && (data.events || data.items)) || [];
}

function eventRow(ev) {
  const det = ev.detector;
  const zone = ev.zone || (det && typeof det === 'object' ? det.zone : null);
  const test = ev.test === true || ev.test === 1 || ev.real === false;
  const what = [];
  if (det) what.push(idOf(det));
  else if (ev.device) what.push(idOf(ev.device));
  else if (ev.bus) what.push(idOf(ev.bus));
  const place = [zone ? nameOf(zone) : '', det && typeof det === 'object' ? det.location : ''].filter(Boolean);
  const fault = ev.fault ? tWord('fault', ev.fault) : '';
  return h('tr', { class: 'ev kind-' + ev.kind + (test ? ' is-test' : ''), 'data-test': 'event-row',
    'data-kind': ev.kind || '', 'data-user': ev.user || '' },
  h('td', { 'data-label': t('events.col.time'), class: 'nowrap', text: fmtTime(ev.ts || ev.time_utc, true) }),
  h('td', { 'data-label': t('events.col.kind') },
    h('span', { class: 'chip kind kind-' + ev.kind, text: tWord('kind', ev.kind) }),
    test ? h('span', { class: 'chip st-test test-mark', text: t('banner.test.mark') }) : null),
  h('td', { 'data-label': t('events.col.what') }, h('strong', { text: what.join(' ') }),
    place.length ? h('div', { class: 'muted small', text: place.join(' · ') }) : null),
  h('td', { 'data-label': t('events.col.detail') },
    [fault, ev.value ? fmtValue(ev.value) : '', ev.detail || ''].filter(Boolean).join(' · ')),
  h('td', { 'data-label': t('events.col.user'), class: 'mono', text: ev.user || '' }),
  h('td', { 'data-label': t('events.col.seq'), class: 'mono muted', text: ev.seq !== undefined ? '#' + ev.seq : '' }));
}

export function historyView(main, ctx) {
  const now = new Date();
  const from = h('input', { type: 'datetime-local', name: 'from', value: localInput(new Date(now - 24 * 3600e3)),
    'data-test': 'ev-from' });
  const to = h('input', { type: 'datetime-local', name: 'to', 'data-test': 'ev-to' });
  const kind = select('kind', [['', t('events.any')]].concat(KINDS.map((k) => [k, tWord('kind', k)])), '');
  kind.dataset.test = 'ev-kind';
  const zone = h('select', { name: 'zone', 'data-test': 'ev-zone' });
  // The zone and detector choices come from the live snapshot, which may arrive after
  // this page is drawn.
  const fillZones = () => {
    const zones = (ctx.snapshot && ctx.snapshot.zones) || [];
    const keep = zone.value;
    fill(zone, h('option', { value: '', text: t('events.any') }),
      zones.map((z) => h('option', { value: z.id, text: (z.name || z.id) + ' (' + z.id + ')' })));
    zone.value = zones.some((z) => z.id === keep) ? keep : '';
  };
  fillZones();
  const detector = h('select', { name: 'detector', 'data-test': 'ev-detector' });
  const limit = select('limit', LIMITS.map((l) => [l, l]), '500');
  const fillDetectors = () => {
    const keep = detector.value;
    const dets = ((ctx.snapshot && ctx.snapshot.detectors) || []).filter((d) => !zone.value || d.zone === zone.value);
    fill(detector, h('option', { value: '', text: t('events.any') }),
      dets.map((d) => h('option', { value: d.id, text: d.id + (d.location ? ' — ' + d.location : '') })));
    detector.value = dets.some((d) => d.id === keep) ? keep : '';
  };
  zone.addEventListener('change', fillDetectors);
  fillDetectors();

  const csv = h('a', { class: 'btn', 'data-test': 'ev-csv', download: 'firegw-events.csv' }, t('events.csv'));
  const status = h('p', { class: 'muted', 'aria-live': 'polite' });
  const newer = h('button', { class: 'btn small notice', hidden: true, 'data-test': 'ev-newer', onclick: () => load() });
  const tbody = h('tbody');
  const tableWrap = h('div', { class: 'table-wrap' },
    h('table', { class: 'table events', 'data-test': 'events' },
      h('thead', {}, h('tr', {}, ['time', 'kind', 'what', 'detail', 'user', 'seq'].map((c) =>
        h('th', { text: t('events.col.' + c) })))), tbody));
  let newCount = 0;

  const query = (format) => {
    const q = new URLSearchParams();
    const iso = (input) => (input.value ? new Date(input.value).toISOString() : '');
    if (from.value) q.set('from', iso(from));
    if (to.value) q.set('to', iso(to));
    if (kind.value) q.set('kind', kind.value);
    if (zone.value) q.set('zone', zone.value);
    if (detector.value) q.set('detector', detector.value);
    q.set('limit', limit.value);
    q.set('format', format);
    return '/api/events?' + q.toString();
  };

  async function load() {
    newCount = 0;
    newer.hidden = true;
    csv.href = query('csv');
    status.textContent = t('common.loading');
    try {
      const list = eventList(await api('GET', query('json')));
      fill(tbody, list.map(eventRow));
      status.textContent = list.length ? t('events.count', { n: list.length }) : t('events.none');
    } catch (e) {
      status.textContent = t('events.error', { error: e.message });
    }
  }

  const form = h('form', { class: 'card filters', onsubmit: (e) => {
    e.preventDefault();
    load();
  } },
  h('div', { class: 'filter-grid' },
    field(t('events.from'), from), field(t('events.to'), to), field(t('events.kind'), kind),
    field(t('events.zone'), zone), field(t('events.detector'), detector), field(t('events.limit'), limit)),
  h('div', { class: 'form-buttons' },
    h('button', { type: 'submit', class: 'btn primary', 'data-test': 'ev-search' }, t('events.search')), csv));
  for (const input of [from, to, kind, zone, detector, limit]) input.addEventListener('change', () => {
    csv.href = query('csv');
  });
  fill(main, h('div', { class: 'page-head' }, h('h1', { text: t('nav.events') })), form,
    h('div', { class: 'list-head' }, status, newer), tableWrap);
  load();
  return {
    update(snap) {
      if (zone.options.length <= 1 && snap && (snap.zones || []).length) {
        fillZones();
        fillDetectors();
      }
    },
    onEvent() {
      newCount++;
      newer.hidden = false;
      newer.textContent = t('events.newer', { n: newCount });
    },
  };
}
