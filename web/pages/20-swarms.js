'use strict';
// Swarms: the autopilot's ranking with every part of the score, whether
// each swarm is served, and the decision; then the swarms held now.
btslave.page({
  id: 'swarms', title: 'Swarms', order: 20,
  apis: ['/api/v1/ranking', '/api/v1/status'],
  update(el, rk, st) {
    const b = btslave, h = b.el;
    const head = [h('h2', {}, 'Swarms')];
    head.push(h('p', { class: 'muted' }, rk.enabled
      ? 'Ranked ' + b.when(rk.at) + ' in ' + b.num(rk.took_seconds, 1) + ' s; next ' + b.when(rk.next) + '. Slots ' + rk.slots +
        ' (owner ' + rk.owner_swarms + ', autopilot ' + rk.auto_swarms + '); min score ' + rk.min_score + ', hysteresis ' + rk.hysteresis + '.'
      : (rk.note || 'the autopilot is off')));
    if (rk.error) head.push(h('p', { class: 'err' }, rk.error));
    const cols = [
      { h: '#', num: true, v: s => s.rank },
      { h: 'Name', wrap: true, v: s => s.name || s.infohash.slice(0, 12) },
      { h: 'Score', num: true, title: 'need × reach × age', v: s => b.num(s.score, 3) },
      { h: 'Need', num: true, v: s => b.num(s.need, 3) },
      { h: 'Reach', num: true, v: s => b.num(s.reach, 3) },
      { h: 'Age', num: true, v: s => b.num(s.age, 3) },
      { h: 'Seeds', num: true, v: s => s.seeders },
      { h: 'Down', num: true, title: 'downloaders', v: s => s.downloaders },
      { h: 'Source', v: s => s.source || '-' },
      { h: 'Served', v: s => s.serving ? 'yes (' + (s.origin || '') + ')' : 'no' },
      { h: 'Decision', wrap: true, v: s => s.state + (s.error ? ' · ' + s.error : '') },
    ];
    const ranked = (rk.swarms || []).length
      ? b.table(cols, rk.swarms, s => ({ class: s.serving ? 'serving' : null, 'data-infohash': s.infohash }))
      : h('p', { class: 'muted' }, 'No swarm ranked yet: add a feed, or wait for the next ranking.');
    const tcols = [
      { h: 'Name', wrap: true, v: t => t.name || t.infohash.slice(0, 12) },
      { h: 'Origin', v: t => t.origin || '-' },
      { h: 'Held', num: true, v: t => t.pieces_held + ' / ' + t.pieces },
      { h: 'Peers', num: true, v: t => t.peers },
      { h: 'Up', num: true, v: t => b.bytes(t.bytes_uploaded) },
      { h: 'Down', num: true, v: t => b.bytes(t.bytes_downloaded) },
      { h: 'Ratio', num: true, v: t => t.bytes_downloaded > 0 ? b.num(t.bytes_uploaded / t.bytes_downloaded) : '-' },
      { h: 'State', wrap: true, v: t => t.error ? 'error: ' + t.error : t.quiet ? 'quiet: ' + t.quiet : 'busy' },
    ];
    const held = (st.torrents || []).length
      ? b.table(tcols, st.torrents, t => ({ 'data-infohash': t.infohash }))
      : h('p', { class: 'muted' }, 'No swarm joined. btslave repeat FILE joins one.');
    el.replaceChildren(...head, h('h3', {}, 'Ranking'), ranked, h('h3', {}, 'Joined now'), held);
  },
});
