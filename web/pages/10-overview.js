'use strict';
// Overview: upload/download rate and ratio over time, cache fill, peers,
// and what the daemon is doing and why.
btslave.page({
  id: 'overview', title: 'Overview', order: 10,
  apis: ['/api/v1/status'],
  mount(el) {
    const { el: h } = btslave;
    this.hint = h('div', { class: 'hint', hidden: true });
    this.rateCanvas = h('canvas', { class: 'chart', id: 'chart-rate' });
    this.ratioCanvas = h('canvas', { class: 'chart', id: 'chart-ratio' });
    this.rateLegend = h('div');
    this.ratioLegend = h('div');
    this.cards = h('div', { class: 'cards' });
    this.doing = h('div', { class: 'card', id: 'doing' });
    el.append(h('h2', {}, 'Overview'), this.hint,
      h('div', { class: 'cards' },
        h('div', { class: 'card' }, h('h3', {}, 'Upload and download'), this.rateCanvas, this.rateLegend),
        h('div', { class: 'card' }, h('h3', {}, 'Ratio (uploaded / downloaded)'), this.ratioCanvas, this.ratioLegend)),
      this.cards, this.doing);
  },
  update(el, st) {
    const b = btslave, h = b.el;
    const steps = st.next_steps || [];
    this.hint.hidden = steps.length === 0;
    this.hint.replaceChildren(h('strong', {}, 'Nothing to do yet. '), ...steps.map(s => h('div', {}, s)));

    // Rates from successive samples of the byte counters.
    const hs = b.history.slice(-300);
    const times = [], up = [], down = [], ratio = [];
    for (let i = 1; i < hs.length; i++) {
      const dt = (hs[i].t - hs[i - 1].t) / 1000;
      if (dt <= 0) continue;
      times.push(hs[i].t);
      up.push(Math.max(0, (hs[i].up - hs[i - 1].up) / dt));
      down.push(Math.max(0, (hs[i].down - hs[i - 1].down) / dt));
      ratio.push(hs[i].down > 0 ? hs[i].up / hs[i].down : NaN);
    }
    const rs = [{ label: 'up', color: '--up', values: up }, { label: 'down', color: '--down', values: down }];
    const qs = [{ label: 'ratio', color: '--ratio', values: ratio }];
    b.chart(this.rateCanvas, times, rs, b.rate, 4096);
    b.chart(this.ratioCanvas, times, qs, v => v.toFixed(2));
    this.rateLegend.replaceChildren(b.legend(rs, b.rate));
    this.ratioLegend.replaceChildren(b.legend(qs));

    const p = st.peer, c = st.cache;
    const fill = c.budget > 0 ? c.held / c.budget : 0;
    const bar = h('div', { class: 'bar', title: (100 * fill).toFixed(1) + '%' }, h('span'));
    bar.firstChild.style.width = (100 * Math.min(1, fill)).toFixed(1) + '%';
    const total = p.bytes_downloaded > 0 ? (p.bytes_uploaded / p.bytes_downloaded).toFixed(2) : '-';
    this.cards.replaceChildren(
      h('div', { class: 'card' }, h('h3', {}, 'Traffic since start'),
        h('div', { class: 'big' }, b.bytes(p.bytes_uploaded), ' up'),
        h('div', {}, b.bytes(p.bytes_downloaded), ' down · ratio ', total)),
      h('div', { class: 'card' }, h('h3', {}, 'Cache'),
        h('div', { class: 'big', id: 'cache-fill' }, (100 * fill).toFixed(0) + '%'), bar,
        h('div', { class: 'muted' }, b.bytes(c.held), ' of ', b.bytes(c.budget), ' · ', c.pieces, ' pieces · ', c.evictions, ' evictions')),
      h('div', { class: 'card' }, h('h3', {}, 'Peers'),
        h('div', { class: 'big', id: 'peers' }, p.peers),
        h('div', { class: 'muted' }, (st.torrents || []).length, ' swarms · uptime ', b.dur(st.uptime_seconds), ' · ', st.version)));

    // What the daemon does, and why.
    const a = st.autopilot || {};
    const lines = [];
    for (const t of st.torrents || []) {
      let why = t.error ? 'cannot serve: ' + t.error : t.quiet ? 'quiet: ' + t.quiet : 'serving ' + t.peers + ' peers';
      lines.push(h('li', {}, h('strong', {}, t.name || t.infohash.slice(0, 8)), ' (', t.origin || 'owner', '): ', why));
    }
    if (!a.enabled) lines.push(h('li', {}, 'autopilot ', a.note || 'off'));
    else {
      lines.push(h('li', {}, 'autopilot: ', a.auto_swarms, ' of ', a.slots, ' slots joined by itself; ranked ', a.ranked,
        ' swarms (', a.scored, ' with figures); next ranking ', b.when(a.next_rank), a.note ? ' · ' + a.note : ''));
      if (a.error) lines.push(h('li', { class: 'err' }, 'ranking failed: ', a.error));
    }
    const feeds = st.feeds || [];
    lines.push(h('li', {}, feeds.length, ' feeds, ', st.catalog_entries, ' torrents in the catalog',
      feeds.some(f => f.last_error) ? ' · some feeds fail: see Feeds' : ''));
    this.doing.replaceChildren(h('h3', {}, 'What btslave is doing'), h('ul', {}, lines));
  },
});
