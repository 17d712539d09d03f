'use strict';
// Visits: the stays in swarms, newest first, with the ratio of each.
btslave.page({
  id: 'visits', title: 'Visits', order: 30,
  apis: ['/api/v1/status'],
  update(el, st) {
    const b = btslave, h = b.el;
    const vs = st.visits || [];
    const cols = [
      { h: 'Name', wrap: true, v: v => v.name || v.infohash.slice(0, 12) },
      { h: 'Joined', v: v => b.when(v.joined) },
      { h: 'Stayed', num: true, v: v => b.dur((new Date(v.left) - new Date(v.joined)) / 1000) },
      { h: 'Up', num: true, v: v => b.bytes(v.uploaded) },
      { h: 'Down', num: true, v: v => b.bytes(v.downloaded) },
      { h: 'Ratio', num: true, v: v => b.num(v.ratio) },
      { h: 'Peers served', num: true, v: v => v.peers_served },
      { h: 'Why it ended', wrap: true, v: v => v.reason },
    ];
    el.replaceChildren(h('h2', {}, 'Visits'),
      vs.length ? b.table(cols, vs) : h('p', { class: 'muted' }, 'No visit has ended yet.'));
  },
});
