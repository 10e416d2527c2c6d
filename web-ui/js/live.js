// The live building view: the building's state and counts, then its floors from the top
// down, each floor's zones, and each zone's detectors with reading, state colour and
// state words. Zone and detector actions (acknowledge, reset, disable, test mode) are in
// a menu per zone, shown only to the roles that may use them.

import { h, fill, icon } from './dom.js';
import { t, tWord, fmtTime, fmtAge, fmtFloor, fmtValue } from './i18n.js';

const TYPE_ICON = { smoke: 'fire', heat: 'fire', panel_zone: 'building', panel: 'building' };

function stateChip(state, testId) {
  return h('span', { class: 'chip st-' + (state || 'unknown'), 'data-test': testId || null,
    text: state ? tWord('state', state) : t('state.unknown') });
}

// Zones grouped by floor, top floor first; a zone's floor is its own, else its first
// detector's.
function floorsOf(snap) {
  const zones = snap.zones || [];
  const dets = snap.detectors || [];
  const zoneDets = new Map(zones.map((z) => [z.id, []]));
  for (const d of dets) {
    if (!zoneDets.has(d.zone)) zoneDets.set(d.zone, []);
    zoneDets.get(d.zone).push(d);
  }
  const floors = new Map();
  for (const [zid, list] of zoneDets) {
    const z = zones.find((x) => x.id === zid) || { id: zid, name: zid };
    let floor = z.floor;
    if (floor === undefined || floor === null) floor = list.length ? list[0].floor : null;
    const key = floor === undefined || floor === null ? 'none' : String(floor);
    if (!floors.has(key)) floors.set(key, { floor, zones: [] });
    floors.get(key).zones.push({ zone: z, dets: list });
  }
  return [...floors.values()].sort((a, b) => (b.floor ?? -99) - (a.floor ?? -99));
}

function detectorFlags(d) {
  const out = [];
  if (d.latched) out.push('latched');
  if (d.acknowledged) out.push('acknowledged');
  if (d.silenced) out.push('silenced');
  if (d.pending) out.push('pending');
  if (d.disabled && d.state !== 'disabled') out.push('disabled');
  if (d.test_mode && d.state !== 'test') out.push('test_mode');
  if (d.test_alarm) out.push('test_alarm');
  return out.map((f) => h('span', { class: 'flag flag-' + f, text: t('flag.' + f) }));
}

function detectorRow(d, ctx) {
  const faults = (d.faults || []).map((f) => tWord('fault', f)).join(', ');
  const hasValue = d.value !== null && d.value !== undefined;
  const menu = ctx.can('installer') ? detectorMenu(d, ctx) : null;
  return h('li', { class: 'det st-' + (d.state || 'unknown'), 'data-test': 'detector', 'data-id': d.id,
    'data-state': d.state || '' },
  h('span', { class: 'det-icon' }, icon(TYPE_ICON[d.type] || 'warn')),
  h('div', { class: 'det-main' },
    h('div', { class: 'det-id' }, h('span', { text: d.id }), h('span', { class: 'det-type', text: tWord('type', d.type) })),
    h('div', { class: 'det-loc', text: d.location || '' }),
    faults ? h('div', { class: 'det-faults', text: faults }) : null,
    h('div', { class: 'det-flags' }, detectorFlags(d))),
  h('div', { class: 'det-side' },
    h('span', { class: 'det-value', 'data-test': 'detector-value',
      text: hasValue ? fmtValue(d.value, d.unit) : (d.type === 'panel_zone' || d.type === 'panel' ? '' : '—') }),
    stateChip(d.state, 'detector-state'),
    d.since && d.state && d.state !== 'normal'
      ? h('span', { class: 'det-since', title: fmtTime(d.since, true), text: fmtAge(d.since) }) : null),
  menu);
}

// A button in an action menu; the menu closes when it is used, so the page updates again.
function menuButton(label, onclick, cls, testId) {
  return h('button', { class: 'btn small ' + (cls || ''), 'data-test': testId || null,
    onclick: (e) => {
      const menu = e.currentTarget.closest('details');
      if (menu) menu.open = false;
      onclick();
    } }, label);
}

function durationPicker() {
  return h('select', { class: 'small', 'aria-label': t('live.duration') },
    ['30min', '1h', '2h', '8h', '24h'].map((v) => h('option', { value: v, text: t('duration.' + v) })));
}

function detectorMenu(d, ctx) {
  const dur = durationPicker();
  const items = d.disabled
    ? [menuButton(t('action.enable'), () => ctx.act('enable', 'detector', d.id), '', 'det-enable')]
    : [dur, menuButton(t('action.disable'), () => ctx.confirmAct(t('confirm.disable', { target: d.id }),
      'disable', 'detector', d.id, { duration: dur.value }), 'warn', 'det-disable')];
  return h('details', { class: 'menu' },
    h('summary', { class: 'btn small ghost', 'aria-label': t('live.menu'), text: '⋯' }),
    h('div', { class: 'menu-body' }, items));
}

// The snapshot names a zone's own disablement and test mode zone_disabled and test_mode.
function zoneDisabled(z) {
  return !!(z.zone_disabled ?? z.disabled);
}

function zoneTest(z) {
  return !!(z.test_mode ?? z.test);
}

function zoneMenu(z, ctx) {
  if (!ctx.can('manager')) return null;
  const items = [
    menuButton(t('action.acknowledge'), () => ctx.act('acknowledge', 'zone', z.id), '', 'zone-acknowledge'),
    menuButton(t('action.silence'), () => ctx.act('silence', 'zone', z.id), '', 'zone-silence'),
    menuButton(t('action.reset'), () => ctx.confirmAct(t('confirm.reset', { target: z.name || z.id }),
      'reset', 'zone', z.id), 'danger', 'zone-reset'),
  ];
  if (ctx.can('installer')) {
    const dur = durationPicker();
    items.push(h('div', { class: 'menu-sep' }), dur);
    items.push(zoneDisabled(z)
      ? menuButton(t('action.enable'), () => ctx.act('enable', 'zone', z.id), '', 'zone-enable')
      : menuButton(t('action.disable'), () => ctx.confirmAct(t('confirm.disable', { target: z.name || z.id }),
        'disable', 'zone', z.id, { duration: dur.value }), 'warn', 'zone-disable'));
    items.push(zoneTest(z)
      ? menuButton(t('action.test_off'), () => ctx.act('test_off', 'zone', z.id), '', 'zone-test-off')
      : menuButton(t('action.test_on'), () => ctx.confirmAct(t('confirm.test_on', { target: z.name || z.id }),
        'test_on', 'zone', z.id, { duration: dur.value }), 'test', 'zone-test-on'));
  }
  return h('details', { class: 'menu', 'data-zone': z.id },
    h('summary', { class: 'btn small ghost', 'data-test': 'zone-menu', text: t('live.actions') }),
    h('div', { class: 'menu-body' }, items));
}

function zoneCard(z, dets, ctx) {
  const state = z.state || 'normal';
  return h('section', { class: 'zone st-' + state, 'data-test': 'zone', 'data-id': z.id },
    h('header', { class: 'zone-head' },
      h('div', { class: 'zone-title' },
        h('h3', { text: z.name || z.id }),
        h('span', { class: 'zone-id', text: z.id })),
      h('div', { class: 'zone-side' },
        z.fire_confirmed ? h('span', { class: 'chip st-fire_alarm', text: t('flag.fire_confirmed') }) : null,
        zoneTest(z) && state !== 'test' ? h('span', { class: 'chip st-test', text: t('banner.test.mark') }) : null,
        stateChip(state, 'zone-state'),
        zoneMenu(z, ctx))),
    dets.length
      ? h('ul', { class: 'det-list' }, dets.map((d) => detectorRow(d, ctx)))
      : h('p', { class: 'muted', text: t('live.zone.empty') }));
}

function buildingCard(snap, ctx) {
  const b = snap.building || {};
  const counts = b.counts || {};
  return h('section', { class: 'card building st-' + (b.state || 'normal'), 'data-test': 'building' },
    h('div', { class: 'building-head' },
      h('div', {},
        h('h2', { text: b.name || b.id || '' }),
        h('div', { class: 'muted', text: [b.address, b.district].filter(Boolean).join(' · ') })),
      stateChip(b.state || 'normal', 'building-state')),
    h('div', { class: 'counts' }, Object.entries(counts).map(([k, v]) =>
      h('div', { class: 'count count-' + k + (v ? ' nonzero' : '') },
        h('span', { class: 'count-n', text: String(v) }), h('span', { class: 'count-label', text: tWord('count', k) })))),
    h('div', { class: 'muted small', text: t('live.updated', { time: fmtTime(snap.ts) }) }));
}

export function liveView(main, ctx) {
  const head = h('div', { class: 'page-head' }, h('h1', { text: t('nav.live') }));
  const body = h('div', { class: 'live' });
  fill(main, head, body);
  let pending = null;
  const draw = (snap) => {
    fill(body, buildingCard(snap, ctx),
      floorsOf(snap).map((f) => h('section', { class: 'floor', 'data-test': 'floor', 'data-floor': String(f.floor) },
        h('h2', { class: 'floor-title', text: fmtFloor(f.floor) }),
        h('div', { class: 'zones' }, f.zones.map(({ zone, dets }) => zoneCard(zone, dets, ctx))))));
  };
  const render = (snap) => {
    if (!snap) {
      fill(body, h('p', { class: 'muted', text: t('common.loading') }));
      return;
    }
    // While an action menu is open the page stays as it is, so the menu is not pulled away
    // from under the operator; the newest snapshot is drawn when it closes. The alarm
    // banner above keeps updating meanwhile.
    if (body.querySelector('details[open]')) {
      pending = snap;
      return;
    }
    pending = null;
    draw(snap);
  };
  body.addEventListener('toggle', (e) => {
    if (e.target.open) {
      for (const d of body.querySelectorAll('details[open]')) if (d !== e.target) d.open = false;
    } else if (pending && !body.querySelector('details[open]')) {
      render(pending);
    }
  }, true);
  render(ctx.snapshot);
  return { update: render };
}
