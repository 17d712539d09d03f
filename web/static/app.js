'use strict';
// The dashboard's core: the page registry, navigation, polling, the API
// helper and small formatting and DOM helpers. A page (pages/*.js) calls
//
//   btslave.page({id, title, apis: ['/api/v1/...'], mount(el), update(el, ...data)})
//
// mount builds the page once; update runs after every poll with the JSON
// of each API path, in order (null for a path the server does not serve). Everything is drawn with textContent, never
// innerHTML, since names and titles come from feeds and peers.
const btslave = (() => {
  const pages = [];
  const POLL_MS = 2000;
  const HISTORY = 900; // samples of /api/v1/status kept (30 min at 2 s)
  let current = null, currentEl = null, timer = null, busy = false;
  const history = load();

  function load() {
    try { return JSON.parse(sessionStorage.getItem('btslave.history') || '[]'); } catch (e) { return []; }
  }

  function page(p) { pages.push(p); }

  async function api(path, opts) {
    opts = opts || {};
    const init = { credentials: 'same-origin', headers: {}, method: opts.method || 'GET' };
    if (opts.body !== undefined) {
      init.method = opts.method || 'POST';
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    const r = await fetch(path, init);
    if (r.status === 401) { location.href = '/login'; throw new Error('logged out'); }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
    if (!r.ok) {
      const e = new Error((data && data.error) || (r.status + ' ' + r.statusText));
      e.status = r.status;
      throw e;
    }
    return data;
  }

  // el('td', {class: 'num', title: 'x'}, 'text', child, ...)
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const k of kids.flat()) {
      if (k === undefined || k === null) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  // table([{h: 'Name', num: false, v: row => ...}], rows, rowAttrs)
  function table(cols, rows, rowAttrs) {
    const head = el('tr', {}, cols.map(c => el('th', { class: c.num ? 'num' : null, title: c.title }, c.h)));
    const body = rows.map(r => el('tr', rowAttrs ? rowAttrs(r) : {},
      cols.map(c => el('td', { class: c.num ? 'num' : (c.wrap ? 'wrap' : null) }, c.v(r)))));
    return el('div', { class: 'scroll' }, el('table', {}, el('thead', {}, head), el('tbody', {}, body)));
  }

  function bytes(n) {
    if (n === undefined || n === null) return '-';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0, v = Number(n);
    while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + u[i];
  }
  const rate = n => bytes(n) + '/s';
  function when(t) {
    if (!t || t.startsWith('0001')) return '-';
    const d = new Date(t);
    return isNaN(d) ? '-' : d.toLocaleString();
  }
  function dur(s) {
    s = Math.max(0, Math.round(Number(s) || 0));
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    if (m) return m + 'm ' + (s % 60) + 's';
    return s + 's';
  }
  const num = (v, d) => (v === undefined || v === null) ? '-' : Number(v).toFixed(d === undefined ? 2 : d);

  function live(text, bad) {
    const l = document.getElementById('live');
    l.textContent = text;
    l.className = bad ? 'live err' : 'live';
  }

  function record(st) {
    if (!st || !st.peer) return;
    history.push({ t: Date.now(), up: st.peer.bytes_uploaded, down: st.peer.bytes_downloaded, peers: st.peer.peers, held: st.cache.held });
    while (history.length > HISTORY) history.shift();
    try { sessionStorage.setItem('btslave.history', JSON.stringify(history)); } catch (e) { /* full */ }
  }

  async function poll() {
    if (busy) return;
    busy = true;
    try {
      const st = await api('/api/v1/status');
      record(st);
      if (current) {
        // An endpoint this server does not have (the demo's dashboard
        // serves no friends or publish API) reaches the page as null.
        const data = await Promise.all((current.apis || []).map(p => p === '/api/v1/status' ? st
          : api(p).catch(e => { if (e.status === 404) return null; throw e; })));
        current.update(currentEl, ...data);
      }
      live('live · ' + new Date().toLocaleTimeString());
    } catch (e) {
      live(e.message, true);
    } finally {
      busy = false;
    }
  }

  function route() {
    const id = location.hash.slice(1) || (pages[0] && pages[0].id);
    const p = pages.find(x => x.id === id) || pages[0];
    if (!p) return;
    for (const a of document.querySelectorAll('#nav a')) a.className = a.dataset.page === p.id ? 'on' : '';
    current = p;
    const main = document.getElementById('main');
    main.replaceChildren();
    currentEl = el('section', { id: 'page-' + p.id, class: 'page' });
    main.append(currentEl);
    document.title = 'btslave · ' + p.title;
    if (p.mount) p.mount(currentEl);
    poll();
  }

  function start() {
    pages.sort((a, b) => (a.order || 0) - (b.order || 0));
    const nav = document.getElementById('nav');
    nav.replaceChildren(...pages.map(p => el('a', { href: '#' + p.id, 'data-page': p.id }, p.title)));
    window.addEventListener('hashchange', route);
    route();
    timer = setInterval(poll, POLL_MS);
  }

  return { page, api, el, table, bytes, rate, when, dur, num, history, start, refresh: poll };
})();
