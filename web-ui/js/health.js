// Health of the gateway's paths: Modbus buses and devices, MQTT uplinks with the fire
// alarms their receiving centre has not acknowledged yet, and the detectors in fault.

import { h, fill, icon } from './dom.js';
import { t, tWord, fmtTime, fmtAge } from './i18n.js';

function upChip(up, yes, no) {
  return h('span', { class: 'chip ' + (up ? 'st-normal' : 'st-fault'), text: up ? yes : no });
}

function table(cls, testId, heads, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted', text: empty });
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'table ' + cls, 'data-test': testId },
      h('thead', {}, h('tr', {}, heads.map((x) => h('th', { text: x })))),
      h('tbody', {}, rows)));
}

// A cell that repeats its column's name before the value on narrow screens (see style.css).
function td(label, ...content) {
  return h('td', { 'data-label': label }, content);
}

function uplinkCard(u) {
  const unacked = u.unacknowledged || [];
  return h('div', { class: 'card uplink ' + (u.connected && !u.transmission_fault ? 'ok' : 'bad'),
    'data-test': 'uplink', 'data-id': u.id },
  h('div', { class: 'uplink-head' },
    h('h3', { text: u.id }),
    upChip(u.connected, t('health.connected'), t('health.disconnected')),
    u.transmission_fault ? h('span', { class: 'chip st-fault', text: t('health.transmission_fault') }) : null),
  unacked.length
    ? h('div', {},
      h('p', { class: 'warn-text' }, icon('warn'), ' ', t('health.unacked', { n: unacked.length })),
      h('ul', { class: 'plain' }, unacked.map((a) => h('li', { 'data-test': 'unacked' },
        h('span', { class: 'mono', text: '#' + a.seq }), ' ',
        h('span', { text: t('health.waiting', { time: fmtTime(a.since), age: fmtAge(a.since) }) }), ' ',
        h('span', { class: 'mono muted small', text: a.event_id })))))
    : h('p', { class: 'muted', text: t('health.all_acked') }));
}

export function healthView(main, ctx) {
  const body = h('div', { class: 'health' });
  fill(main, h('div', { class: 'page-head' }, h('h1', { text: t('nav.health') })), body);
  const render = (snap) => {
    if (!snap) {
      fill(body, h('p', { class: 'muted', text: t('common.loading') }));
      return;
    }
    const buses = snap.buses || [];
    const devices = snap.devices || [];
    const faulty = (snap.detectors || []).filter((d) => (d.faults && d.faults.length) || d.state === 'fault');
    const H = (k) => t('health.col.' + k);
    fill(body,
      h('section', { class: 'card' },
        h('h2', { text: t('health.uplinks') }),
        (snap.uplinks || []).length ? h('div', { class: 'uplinks' }, snap.uplinks.map(uplinkCard))
          : h('p', { class: 'muted', text: t('health.none') })),
      h('section', { class: 'card' },
        h('h2', { text: t('health.buses') }),
        table('buses', 'buses', [H('id'), H('type'), H('status'), H('polls_ok'), H('polls_failed')],
          buses.map((b) => h('tr', { 'data-id': b.id },
            td(H('id'), h('strong', { text: b.id })), td(H('type'), tWord('bus', b.type)),
            td(H('status'), upChip(b.up, t('health.up'), t('health.down'))),
            td(H('polls_ok'), String(b.polls_ok ?? '')), td(H('polls_failed'), String(b.polls_failed ?? '')))),
          t('health.none'))),
      h('section', { class: 'card' },
        h('h2', { text: t('health.devices') }),
        table('devices', 'devices', [H('id'), H('bus'), H('unit'), H('status')],
          devices.map((d) => h('tr', { 'data-id': d.id },
            td(H('id'), h('strong', { text: d.id })), td(H('bus'), d.bus), td(H('unit'), String(d.unit ?? '')),
            td(H('status'), upChip(d.up, t('health.up'), t('health.down'))))),
          t('health.none'))),
      h('section', { class: 'card' },
        h('h2', { text: t('health.faults') }),
        table('faults', 'faulty-detectors', [H('id'), H('location'), H('faults'), H('since')],
          faulty.map((d) => h('tr', { 'data-id': d.id },
            td(H('id'), h('strong', { text: d.id })), td(H('location'), d.location || ''),
            td(H('faults'), (d.faults || []).map((f) => tWord('fault', f)).join(', ') || tWord('state', d.state)),
            td(H('since'), d.since ? fmtTime(d.since) : ''))),
          t('health.no_faults'))),
      h('p', { class: 'muted small', text: t('health.footer', { seq: snap.seq ?? 0, time: fmtTime(snap.ts, true) }) }));
  };
  render(ctx.snapshot);
  return { update: render };
}
