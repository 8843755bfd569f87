// The Agora dashboard: plain JavaScript, served by the node, no framework, no CDN.
// Every value from the API is written with textContent, never as HTML.
'use strict';

const PAGE = 50;
const state = {
  token: sessionStorage.getItem('agora-token') || '',
  pageStarts: [null],
  actionPages: [null],
  actionsNext: null,
  next: null,
  community: null,
  timers: [],
  events: null,
};

function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'text') e.textContent = v;
    else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else e.setAttribute(k, v);
  }
  for (const kid of kids) if (kid != null) e.append(kid);
  return e;
}

function show(id, visible) { document.getElementById(id).hidden = !visible; }

class Unauthorized extends Error {}

async function api(path) {
  const headers = state.token ? { Authorization: 'Bearer ' + state.token } : {};
  const resp = await fetch(path, { headers });
  if (resp.status === 401) { askToken(); throw new Unauthorized(); }
  const body = await resp.json().catch(() => null);
  if (!resp.ok) {
    const msg = body && body.error ? body.error.code + ': ' + body.error.message : String(resp.status);
    throw new Error(msg);
  }
  return body;
}

function askToken(message) {
  show('token-section', true);
  document.getElementById('token-error').textContent = message || (state.token ? 'The token was refused (unknown or revoked).' : '');
  document.getElementById('token-input').focus();
}

function when(ts) {
  const n = Number(ts);
  return Number.isFinite(n) ? new Date(n * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : String(ts ?? '-');
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows.map(cells => el('tr', {}, ...cells.map(c => el('td', {}, c instanceof Node ? c : document.createTextNode(String(c ?? '-')))))));
}

// ----- cluster -----
async function loadCluster() {
  const c = await api('/api/v1/cluster');
  document.getElementById('node-line').textContent = c.mode === 'cluster'
    ? `Cluster of ${c.nodes.length} nodes; Redis ${c.redis_ok ? 'reachable' : 'UNREACHABLE'}; ${c.unowned.length} partitions unowned`
    : 'Single node';
  fill(document.getElementById('cluster-rows'), c.nodes.map(n => {
    const epochs = Object.values(n.epochs || {});
    const range = epochs.length ? `${Math.min(...epochs)}–${Math.max(...epochs)}` : '-';
    return [n.id || 'this node', n.advertise || '-', n.partitions.length, range];
  }));
}

// ----- communities -----
async function loadCommunities() {
  const after = state.pageStarts[state.pageStarts.length - 1];
  const q = after ? `&after=${encodeURIComponent(after)}` : '';
  let page;
  try { page = await api(`/api/v1/communities?limit=${PAGE}${q}`); }
  catch (e) {
    if (e instanceof Unauthorized) throw e;
    fill(document.getElementById('community-rows'), [[`Not shown: ${e.message}`, '', '']]);
    return;
  }
  state.next = page.next;
  document.getElementById('communities-next').disabled = !page.next;
  fill(document.getElementById('community-rows'), page.communities.map(c => [
    el('button', { type: 'button', 'data-slug': c.slug, on: { click: () => openCommunity(c.slug) } }, c.slug),
    c.readable_name || '-',
    c.plugins.join(', ') || '-',
  ]));
}

async function openCommunity(slug) {
  state.community = slug;
  show('community-section', true);
  document.getElementById('community-title').textContent = 'Community ' + slug;
  const plugins = await api(`/api/v1/communities/${encodeURIComponent(slug)}/plugins`);
  const rows = [];
  for (const p of plugins.plugins) {
    let health = '-';
    if (p.enabled) {
      try { health = (await api(`/api/v1/communities/${encodeURIComponent(slug)}/plugins/${encodeURIComponent(p.name)}/health`)).status; }
      catch (e) { if (e instanceof Unauthorized) throw e; health = 'unknown'; }
    }
    rows.push([p.name, p.enabled ? 'yes' : 'no', health]);
  }
  fill(document.getElementById('plugin-rows'), rows);
  // Votes run in every community: the vote plugin is never enabled per community.
  await loadWidgets(plugins.plugins.filter(p => p.enabled || p.name === 'vote').map(p => p.name));
  state.actionPages = [null];
  await loadActions();
  await loadVotes();
  document.getElementById('community-title').focus?.();
}

// ----- waiting governance actions, a page at a time -----
const ACTION_PAGE = 10;

function waitingOn(a) {
  const open = (a.conditions || []).filter(c => c && c.status === 'waiting');
  return open.map(c => `${text(c.type)} ${text(c.id)}`).join(', ') || '-';
}

async function loadActions() {
  const slug = state.community;
  if (!slug) return;
  const cursor = state.actionPages[state.actionPages.length - 1];
  const q = new URLSearchParams({ status: 'waiting', limit: String(ACTION_PAGE) });
  if (cursor) q.set('cursor', cursor);
  const rows = document.getElementById('action-rows');
  const note = document.getElementById('actions-note');
  let page;
  try { page = await api(`/api/v1/communities/${encodeURIComponent(slug)}/actions?${q}`); }
  catch (e) {
    if (e instanceof Unauthorized) throw e;
    if (state.community !== slug) return;
    fill(rows, []);
    note.textContent = e.message.startsWith('governance_not_found') ? 'This community has no governance.' : `Not shown: ${e.message}`;
    document.getElementById('actions-next').disabled = true;
    return;
  }
  if (state.community !== slug) return;
  state.actionsNext = page.next_cursor || null;
  document.getElementById('actions-next').disabled = !state.actionsNext;
  document.getElementById('actions-first').disabled = state.actionPages.length === 1;
  note.textContent = page.actions.length ? `Page ${state.actionPages.length}` : (state.actionPages.length === 1 ? 'No action is waiting.' : 'No more waiting actions.');
  fill(rows, page.actions.map(a => [a.id, a.actor, a.change, a.target, a.created_at, waitingOn(a)]));
}

// ----- plugin widgets: declared in plugin metadata, drawn here from their kind -----
// A plugin supplies data only (JSON), never markup: every value is written as text, and
// icons come from this page's own set.
const ICONS = { ballot: '\u2611', code: '\u2328', chart: '\u2587', list: '\u2630', people: '\u263A', bell: '\u266A' };

async function registry() {
  if (!state.registry) state.registry = (await api('/api/v1/plugins')).plugins.filter(p => p.status === 'loaded');
  return state.registry;
}

function text(v) {
  if (v === null || v === undefined) return '-';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function drawWidget(kind, data) {
  if (data === null || typeof data !== 'object') throw new Error('the data is not an object');
  if (kind === 'stat') {
    return [el('p', { class: 'stat', text: text(data.value) }), data.label != null ? el('p', { text: text(data.label) }) : null];
  }
  if (kind === 'table') {
    if (!Array.isArray(data.columns) || !Array.isArray(data.rows)) throw new Error('a table needs columns and rows');
    const tbody = el('tbody');
    fill(tbody, data.rows.slice(0, 100).map(r => (Array.isArray(r) ? r : [r]).map(text)));
    if (!data.rows.length) fill(tbody, [['Nothing yet.']]);
    return [el('table', {}, el('thead', {}, el('tr', {}, ...data.columns.map(c => el('th', { scope: 'col', text: text(c) })))), tbody)];
  }
  if (kind === 'bars') {
    if (!Array.isArray(data.bars)) throw new Error('bars need a list of bars');
    const tally = {};
    for (const b of data.bars.slice(0, 50)) tally[text(b && b.label)] = Number(b && b.value) || 0;
    return [bars(tally)];
  }
  throw new Error('unknown widget kind');
}

async function loadWidgets(enabled) {
  const slug = state.community;
  if (!slug) return;
  if (enabled) state.enabled = enabled;
  const plugins = (await registry()).filter(p => (state.enabled || []).includes(p.name));
  const nav = plugins.flatMap(p => (p.navigation || []).map(n => ({ ...n, plugin: p.name })))
    .sort((a, b) => a.order - b.order);
  document.getElementById('plugin-nav-list').replaceChildren(...nav.map(n =>
    el('li', {}, el('a', { href: `#widgets-${n.plugin}` }, el('span', { 'aria-hidden': 'true', text: (ICONS[n.icon] || '\u2022') + ' ' }), text(n.label)))));
  const widgets = plugins.flatMap(p => (p.widgets || []).map(w => ({ ...w, plugin: p.name })))
    .sort((a, b) => a.order - b.order || byteCompare(a.plugin, b.plugin));
  const cards = [];
  const seen = new Set();
  for (const w of widgets) {
    const id = `widget-${w.plugin}-${w.name}`;
    const card = el('section', { class: 'widget', id, 'data-kind': w.kind, 'aria-label': text(w.title) },
      el('h4', { text: text(w.title) }));
    if (!seen.has(w.plugin)) { card.setAttribute('data-anchor', w.plugin); seen.add(w.plugin); }
    try {
      const r = await api(`/api/v1/communities/${encodeURIComponent(slug)}/plugins/${encodeURIComponent(w.plugin)}/widgets/${encodeURIComponent(w.name)}`);
      card.append(...drawWidget(w.kind, r.data).filter(Boolean));
    } catch (e) {
      if (e instanceof Unauthorized) throw e;
      card.append(el('p', { class: 'error', text: 'Not shown: ' + e.message }));
    }
    cards.push(card);
  }
  if (state.community !== slug) return;
  // The navigation's anchors: each plugin's first widget.
  for (const c of cards) if (c.dataset.anchor) c.prepend(el('a', { id: `widgets-${c.dataset.anchor}` }));
  document.getElementById('widgets').replaceChildren(...(cards.length ? cards : [el('p', { text: 'No plugin widgets.' })]));
}

// ----- votes -----
function countdown(closingAt) {
  const left = Number(closingAt) * 1000 - Date.now();
  if (!Number.isFinite(left)) return '';
  if (left <= 0) return 'closing now';
  const s = Math.floor(left / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return `closes in ${h}h ${String(m).padStart(2, '0')}m ${String(r).padStart(2, '0')}s`;
}

// Widths are set through the CSSOM: the page's Content-Security-Policy refuses style attributes.
function fillTo(pct) {
  const span = document.createElement('span');
  span.style.width = pct + '%';
  return span;
}

function bars(tally) {
  const values = Object.values(tally).map(Number);
  const max = Math.max(0, ...values);
  const total = values.reduce((a, b) => a + b, 0);
  return el('div', { class: 'bars' }, ...Object.entries(tally).map(([name, v]) => {
    const pct = max > 0 ? (Number(v) / max) * 100 : 0;
    const share = total > 0 ? ((Number(v) / total) * 100).toFixed(1) : '0.0';
    return el('div', { class: 'bar-row', 'data-option': name },
      el('span', { text: name }),
      el('div', { class: 'bar', role: 'img', 'aria-label': `${name}: ${v} (${share}%)` }, fillTo(pct)),
      el('span', { class: 'count', text: `${v} (${share}%)` }));
  }));
}

async function loadVotes() {
  const slug = state.community;
  if (!slug) return;
  const list = await api(`/api/v1/communities/${encodeURIComponent(slug)}/processes`);
  const box = document.getElementById('votes');
  const cards = [];
  for (const p of list.processes.filter(p => p.name.startsWith('vote.')).slice(0, 20)) {
    const v = await api(p.location);
    const card = el('article', { class: 'vote', id: `vote-${p.id}`, 'data-status': v.status, 'data-location': p.location, 'aria-label': `${p.name} ${p.id}` },
      el('h4', { text: `${p.name} ${p.id}: ${v.status}` }));
    if (v.outcome && v.outcome.tally) card.append(bars(v.outcome.tally));
    if (v.status !== 'completed') {
      card.append(el('p', { class: 'countdown', 'data-closing-at': p.closing_at ?? '', text: countdown(p.closing_at) }));
    } else {
      const o = v.outcome || {};
      card.append(el('p', { text: `Outcome: ${o.winner ?? o.decision ?? '-'}` }));
      card.append(el('p', {}, 'Commitment: ', el('span', { class: 'mono', text: o.commitment || '-' })));
      const result = el('p', { class: 'verify-result', 'aria-live': 'polite' });
      card.append(el('button', { type: 'button', class: 'verify', on: { click: () => verifyVote(p.location, o.commitment, result) } }, 'Verify'), result);
    }
    cards.push(card);
  }
  if (state.community !== slug) return;
  // Keep a verify result already shown: replace only what changed.
  for (const card of cards) {
    const old = document.getElementById(card.id);
    const oldResult = old && old.querySelector('.verify-result');
    if (oldResult && oldResult.textContent) card.querySelector('.verify-result').replaceWith(oldResult);
  }
  box.replaceChildren(...(cards.length ? cards : [el('p', { text: 'No votes.' })]));
}

// ----- verify: the commitment recomputed here, with Web Crypto -----
const utf8 = new TextEncoder();
function byteCompare(a, b) {
  const x = utf8.encode(a), y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}
function canonical(v) {
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']';
  if (v !== null && typeof v === 'object') {
    return '{' + Object.keys(v).sort(byteCompare).map(k => JSON.stringify(k) + ':' + canonical(v[k])).join(',') + '}';
  }
  return JSON.stringify(v);
}
function weightText(w) {
  let t = Number(w).toFixed(5);
  if (t.includes('.')) t = t.replace(/0+$/, '').replace(/\.$/, '');
  return t === '-0' ? '0' : t;
}
async function sha256hex(text) {
  const d = await crypto.subtle.digest('SHA-256', utf8.encode(text));
  return Array.from(new Uint8Array(d), b => b.toString(16).padStart(2, '0')).join('');
}

async function verifyVote(location, published, result) {
  result.className = 'verify-result';
  result.textContent = 'Verifying…';
  if (!window.crypto || !crypto.subtle) {
    result.textContent = 'This browser gives no Web Crypto here (it needs HTTPS or localhost).';
    return;
  }
  try {
    const list = await api(location + '/ballots');
    const problems = [];
    const entries = [];
    for (const b of list.ballots) {
      const text = '{"choice":' + canonical(b.choice) + ',"voter":' + JSON.stringify(b.voter) + ',"weight":' + weightText(b.weight) + '}';
      if (await sha256hex(text) !== b.receipt) problems.push(`the receipt of ${b.voter} does not match its ballot`);
      entries.push([b.voter, text]);
    }
    entries.sort((a, b) => byteCompare(a[0], b[0]) || byteCompare(a[1], b[1]));
    const canon = '[' + entries.map(e => e[1]).join(',') + ']';
    if (canon !== list.canonical) problems.push('the canonical list is not the listed ballots');
    const commitment = await sha256hex(list.method + '\n' + list.tally_version + '\n' + canon);
    if (commitment !== published) problems.push(`the ballots hash to ${commitment}, the outcome says ${published}`);
    if (problems.length) {
      result.className = 'verify-result mismatch';
      result.textContent = 'NOT verified: ' + problems.join('; ');
    } else {
      result.className = 'verify-result verified';
      result.textContent = `verified: ${entries.length} ballots hash to the published commitment`;
    }
  } catch (e) {
    result.className = 'verify-result mismatch';
    result.textContent = 'Could not verify: ' + e.message;
  }
}

// ----- audit log -----
async function loadAudit() {
  const q = new URLSearchParams({ limit: '50' });
  for (const f of ['plugin', 'community', 'action']) {
    const v = document.getElementById('audit-' + f).value.trim();
    if (v) q.set(f, v);
  }
  let log;
  try { log = await api('/api/v1/plugin-audit-log?' + q); }
  catch (e) {
    if (e instanceof Unauthorized) throw e;
    fill(document.getElementById('audit-rows'), [[`Not shown: ${e.message}`, '', '', '', '', '']]);
    return;
  }
  const newest = log.entries.slice().reverse();
  fill(document.getElementById('audit-rows'), newest.map(e => [when(e.at), e.who, e.community, e.plugin, e.action, e.outcome]));
}

// ----- live: driver events. A vote announces new ballots (`ballots_changed`, at most one per
// BALLOT_REREAD_MS per vote); the page re-reads that vote then and once more after that interval,
// so ballots the node coalesced into the announcement show too. Nothing is polled.
const BALLOT_REREAD_MS = 300;
const rereads = new Map();

function rereadVote(id) {
  const entry = rereads.get(id) || { busy: false, again: false, timer: null };
  rereads.set(id, entry);
  clearTimeout(entry.timer);
  entry.timer = setTimeout(() => rereadVote.now(id), BALLOT_REREAD_MS);
  rereadVote.now(id);
}
rereadVote.now = async id => {
  const entry = rereads.get(id);
  if (entry.busy) { entry.again = true; return; }
  entry.busy = true;
  try {
    const card = document.getElementById(`vote-${id}`);
    if (!card) { await loadVotes(); return; }
    const v = await api(card.dataset.location);
    card.dataset.status = v.status;
    card.querySelector('h4').textContent = `${v.name} ${v.id}: ${v.status}`;
    const old = card.querySelector('.bars');
    if (v.outcome && v.outcome.tally) {
      if (old) old.replaceWith(bars(v.outcome.tally)); else card.querySelector('h4').after(bars(v.outcome.tally));
    }
  } catch (_) { /* the next event or a reopen redraws it */ }
  finally {
    entry.busy = false;
    if (entry.again) { entry.again = false; rereadVote.now(id); }
  }
};

function liveLine(textValue) { document.getElementById('live-line').textContent = textValue; }

async function followEvents() {
  if (state.events) state.events.abort();
  const controller = new AbortController();
  state.events = controller;
  try {
    const headers = state.token ? { Authorization: 'Bearer ' + state.token } : {};
    const resp = await fetch('/api/internal/events', { headers, signal: controller.signal });
    if (!resp.ok || !resp.body) {
      // A token limited to some communities may not follow the node-wide stream: re-read
      // the open community's votes every second instead.
      liveLine(`Live updates unavailable (${resp.status}); votes are re-read every second`);
      state.timers.push(setInterval(() => { if (state.community) loadVotes().catch(() => {}); }, 1000));
      state.events = null;
      return;
    }
    liveLine('Live updates on');
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const chunk = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = chunk.split('\n').filter(l => l.startsWith('data:')).map(l => l.slice(5).trim()).join('\n');
        let ev;
        try { ev = JSON.parse(data); } catch (_) { continue; /* keep-alives and lag notes */ }
        if (!ev || typeof ev !== 'object') continue;
        liveLine(`Live updates on; last event: ${text(ev.event_type)} (${text(ev.community)}) at ${new Date().toISOString().slice(11, 19)} UTC`);
        if (ev.community !== state.community) { if (ev.source !== 'vote') loadAudit().catch(() => {}); continue; }
        if (ev.event_type === 'ballots_changed' && ev.data && ev.data.id != null) {
          rereadVote(String(ev.data.id));
        } else {
          loadVotes().catch(() => {});
          loadWidgets().catch(() => {});
          loadActions().catch(() => {});
          if (ev.source !== 'vote') loadAudit().catch(() => {});
        }
      }
    }
  } catch (_) { /* the stream closed */ }
  // Reconnect unless replaced (a new token) or the page is going away.
  if (state.events === controller && !controller.signal.aborted) {
    liveLine('Live updates reconnecting…');
    setTimeout(() => { if (state.events === controller) followEvents(); }, 2000);
  }
}

async function start() {
  show('token-section', false);
  document.getElementById('forget-token').hidden = !state.token;
  try {
    await loadCluster();
    await loadCommunities();
    await loadAudit();
  } catch (e) {
    if (!(e instanceof Unauthorized)) document.getElementById('node-line').textContent = 'Error: ' + e.message;
    return;
  }
  for (const t of state.timers) clearInterval(t);
  followEvents();
  state.timers = [
    setInterval(() => loadCluster().catch(() => {}), 3000),
    setInterval(() => {
      for (const p of document.querySelectorAll('.countdown')) p.textContent = countdown(p.dataset.closingAt);
    }, 1000),
  ];
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('token-form').addEventListener('submit', ev => {
    ev.preventDefault();
    state.token = document.getElementById('token-input').value.trim();
    sessionStorage.setItem('agora-token', state.token);
    start();
  });
  document.getElementById('forget-token').addEventListener('click', () => {
    sessionStorage.removeItem('agora-token');
    state.token = '';
    location.reload();
  });
  document.getElementById('communities-next').addEventListener('click', () => {
    if (state.next) { state.pageStarts.push(state.next); loadCommunities().catch(() => {}); }
  });
  document.getElementById('communities-first').addEventListener('click', () => {
    state.pageStarts = [null];
    loadCommunities().catch(() => {});
  });
  document.getElementById('actions-next').addEventListener('click', () => {
    if (state.actionsNext) { state.actionPages.push(state.actionsNext); loadActions().catch(() => {}); }
  });
  document.getElementById('actions-first').addEventListener('click', () => {
    state.actionPages = [null];
    loadActions().catch(() => {});
  });
  document.getElementById('audit-form').addEventListener('submit', ev => { ev.preventDefault(); loadAudit().catch(() => {}); });
  start();
});
