// The alarm banner on top of every page: real fire alarms in red, grouped by zone, with
// the detector, zone, floor, location and time, and acknowledge / silence / reset for the
// roles that may; pre-alarms in orange; test alarms apart, in blue stripes and marked
// TEST, so a walk test can never be mistaken for a fire. An optional alarm tone sounds
// while a real alarm is not acknowledged.

import { h, fill, icon } from './dom.js';
import { t, tWord, fmtTime, fmtAge, fmtFloor, fmtValue } from './i18n.js';

const SOUND_KEY = 'firegw.sound';

function isTestAlarm(d) {
  return !!d.test_alarm;
}

function isRealAlarm(d) {
  return d.state === 'fire_alarm' && !d.test_mode && !d.test_alarm;
}

function isPreAlarm(d) {
  return d.state === 'pre_alarm' && !d.test_mode && !d.test_alarm;
}

// Counts for the page title: real fire alarms, pre-alarms, test alarms.
export function alarmSummary(snap) {
  const dets = (snap && snap.detectors) || [];
  return {
    fire: dets.filter(isRealAlarm).length,
    pre: dets.filter(isPreAlarm).length,
    test: dets.filter(isTestAlarm).length,
    unacked: dets.filter((d) => isRealAlarm(d) && !d.acknowledged).length,
  };
}

function byZone(dets) {
  const groups = new Map();
  for (const d of dets) {
    if (!groups.has(d.zone)) groups.set(d.zone, []);
    groups.get(d.zone).push(d);
  }
  return groups;
}

function zoneTitle(ctx, zoneId, dets) {
  const z = ctx.zoneById(zoneId);
  const floor = z && z.floor !== undefined && z.floor !== null ? z.floor : dets[0] && dets[0].floor;
  const name = z && z.name ? z.name + ' (' + zoneId + ')' : zoneId;
  return name + ' · ' + fmtFloor(floor);
}

function flags(d) {
  return [
    d.acknowledged ? h('span', { class: 'flag', text: t('flag.acknowledged') }) : null,
    d.silenced ? h('span', { class: 'flag', text: t('flag.silenced') }) : null,
    d.pending ? h('span', { class: 'flag', text: t('flag.pending') }) : null,
  ];
}

function alarmRow(d, kind) {
  return h('li', { class: 'alarm-row', 'data-test': kind + '-row', 'data-detector': d.id },
    h('div', { class: 'alarm-where' },
      h('span', { class: 'alarm-det', text: d.id }),
      h('span', { class: 'alarm-loc', text: d.location || '' }),
      h('span', { class: 'alarm-floor', text: fmtFloor(d.floor) })),
    h('div', { class: 'alarm-what' },
      h('span', { class: 'alarm-type', text: tWord('type', d.type) }),
      h('span', { class: 'alarm-value', 'data-live': 'value', 'data-detector': d.id }),
      d.since ? h('span', { class: 'alarm-time', title: fmtTime(d.since, true),
        'data-live': 'since', 'data-since': d.since }) : null,
      flags(d)));
}

// Readings and ages change all the time during a fire; they are written into the banner
// in place, so its buttons are not rebuilt under the operator's finger.
function updateLiveText(root, dets) {
  const byId = new Map(dets.map((d) => [d.id, d]));
  for (const span of root.querySelectorAll('[data-live=value]')) {
    const d = byId.get(span.dataset.detector);
    span.textContent = d && d.value !== null && d.value !== undefined ? fmtValue(d.value, d.unit) : '';
  }
  for (const span of root.querySelectorAll('[data-live=since]')) {
    span.textContent = t('banner.since', { time: fmtTime(span.dataset.since), age: fmtAge(span.dataset.since) });
  }
}

function signature(ctx, dets) {
  return JSON.stringify([ctx.session && ctx.session.role, document.documentElement.lang, soundOn(),
    dets.map((d) => [d.id, d.state, d.zone, d.location, d.floor, d.acknowledged, d.silenced, d.pending,
      d.since, d.test_alarm, d.test_mode]),
    ((ctx.snapshot && ctx.snapshot.zones) || []).map((z) => [z.id, z.name, z.floor])]);
}

function actionButtons(ctx, scope, id, label) {
  if (!ctx.can('manager')) return null;
  const busy = (btn, p) => {
    btn.disabled = true;
    p.finally(() => {
      btn.disabled = false;
    });
  };
  const mk = (action, ic, cls) => {
    const b = h('button', { class: 'btn ' + cls, 'data-test': 'banner-' + action + (scope === 'all' ? '-all' : ''),
      'data-zone': id || null,
      onclick: () => {
        const p = action === 'reset'
          ? ctx.confirmAct(t('confirm.reset', { target: label }), 'reset', scope, id)
          : ctx.act(action, scope, id);
        busy(b, p);
      } }, icon(ic), h('span', { text: t(scope === 'all' ? 'action.' + action + '.all' : 'action.' + action) }));
    return b;
  };
  return h('div', { class: 'banner-actions' },
    mk('acknowledge', 'check', 'on-red'), mk('silence', 'mute', 'on-red'), mk('reset', 'reset', 'on-red strong'));
}

let audio = null;
let beepTimer = null;

function soundOn() {
  try {
    return localStorage.getItem(SOUND_KEY) === 'on';
  } catch (e) {
    return false;
  }
}

function setSound(on) {
  try {
    localStorage.setItem(SOUND_KEY, on ? 'on' : 'off');
  } catch (e) {
    // kept for this page only
  }
  if (on && !audio && window.AudioContext) audio = new AudioContext();
  if (audio && audio.state === 'suspended') audio.resume();
}

function beep() {
  if (!audio) return;
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.type = 'square';
  osc.frequency.value = 880;
  gain.gain.value = 0.08;
  osc.connect(gain).connect(audio.destination);
  osc.start();
  osc.stop(audio.currentTime + 0.35);
}

// Tone while a real alarm is unacknowledged and the user turned sound on in this browser.
function updateTone(summary) {
  const want = summary.unacked > 0 && soundOn() && audio;
  if (want && !beepTimer) {
    beep();
    beepTimer = setInterval(beep, 1000);
  } else if (!want && beepTimer) {
    clearInterval(beepTimer);
    beepTimer = null;
  }
}

// Draw the banner into root from ctx.snapshot (empty when nothing is in alarm).
export function renderBanner(root, ctx) {
  const dets = (ctx.snapshot && ctx.snapshot.detectors) || [];
  const real = dets.filter(isRealAlarm);
  const pre = dets.filter(isPreAlarm);
  const test = dets.filter(isTestAlarm);
  const summary = alarmSummary(ctx.snapshot);
  updateTone(summary);
  const shown = real.concat(pre, test);
  const sig = signature(ctx, shown);
  if (sig === root.dataset.sig) {
    updateLiveText(root, shown);
    return;
  }
  root.dataset.sig = sig;
  if (!real.length && !pre.length && !test.length) {
    fill(root);
    root.className = 'banner-wrap';
    return;
  }
  const parts = [];
  if (real.length) {
    const groups = byZone(real);
    const soundBtn = h('button', { class: 'btn on-red small', 'data-test': 'sound-toggle',
      'aria-pressed': soundOn() ? 'true' : 'false',
      onclick: () => {
        setSound(!soundOn());
        renderBanner(root, ctx);
        updateTone(alarmSummary(ctx.snapshot));
      } }, icon(soundOn() ? 'sound' : 'mute'), h('span', { text: soundOn() ? t('banner.sound.off') : t('banner.sound.on') }));
    parts.push(h('section', { class: 'banner fire', role: 'alert', 'data-test': 'banner-fire' },
      h('div', { class: 'banner-head' },
        icon('fire', 'banner-icon'),
        h('div', { class: 'banner-title' },
          h('strong', { text: t('banner.fire.title') }),
          h('span', { text: t('banner.fire.count', { n: real.length, zones: groups.size }) })),
        soundBtn),
      [...groups].map(([zoneId, list]) => {
        const label = zoneTitle(ctx, zoneId, list);
        return h('div', { class: 'banner-zone', 'data-test': 'banner-zone', 'data-zone': zoneId },
          h('div', { class: 'banner-zone-head' },
            h('span', { class: 'banner-zone-name', text: t('banner.zone', { zone: label }) }),
            actionButtons(ctx, 'zone', zoneId, label)),
          h('ul', { class: 'alarm-list' }, list.map((d) => alarmRow(d, 'alarm'))));
      }),
      groups.size > 1 ? actionButtons(ctx, 'all', null, t('banner.all')) : null));
  }
  if (pre.length) {
    parts.push(h('section', { class: 'banner pre', 'data-test': 'banner-pre' },
      h('div', { class: 'banner-head' }, icon('warn', 'banner-icon'),
        h('div', { class: 'banner-title' },
          h('strong', { text: t('banner.pre.title') }),
          h('span', { text: t('banner.pre.count', { n: pre.length }) }))),
      h('ul', { class: 'alarm-list' }, pre.map((d) => alarmRow(d, 'pre')))));
  }
  if (test.length) {
    parts.push(h('section', { class: 'banner test', 'data-test': 'banner-test' },
      h('div', { class: 'banner-head' }, icon('flask', 'banner-icon'),
        h('div', { class: 'banner-title' },
          h('strong', { class: 'test-mark', text: t('banner.test.mark') }),
          h('span', { text: t('banner.test.title', { n: test.length }) }))),
      h('ul', { class: 'alarm-list' }, test.map((d) => alarmRow(d, 'test')))));
  }
  root.className = 'banner-wrap active';
  fill(root, parts);
  updateLiveText(root, shown);
}

// Empty the banner and stop the tone (on logout).
export function clearBanner(root) {
  fill(root);
  delete root.dataset.sig;
  root.className = 'banner-wrap';
  updateTone({ unacked: 0 });
}
