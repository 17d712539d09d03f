'use strict';
// Master: the owner's client btslave serves (issue #10), the state of the
// connection to it and, per torrent helped, what went where.
btslave.page({
  id: 'master', title: 'Master', order: 60,
  apis: ['/api/v1/status'],
  update(el, st) {
    const b = btslave, h = b.el, m = st.master || {};
    const rows = m.torrents || [];
    const head = m.kind
      ? h('p', {}, 'Master ', h('code', {}, m.kind), ' · ', h('span', { id: 'master-state' }, m.state || 'unknown'),
          m.error ? h('span', { class: 'bad' }, ' · ' + m.error) : null,
          m.peer ? h('span', { class: 'muted' }, ' · peer ' + m.peer) : null,
          ' · ' + (m.downloading || 0) + ' torrents downloading')
      : h('p', { class: 'muted' }, 'No [master] configured; "btslave help-master --addr IP:PORT FILE" helps any client.');
    el.replaceChildren(h('h2', {}, 'Master'), head,
      rows.length ? b.table([
        { h: 'Torrent', v: r => r.name || r.infohash, wrap: true },
        { h: 'Master at', v: r => r.master },
        { h: 'Connected', v: r => r.connected ? 'yes' : 'no' },
        { h: 'Progress', num: true, v: r => r.progress < 0 ? '?' : b.num(100 * r.progress, 1) + '%' },
        { h: 'To master', num: true, v: r => b.bytes(r.to_master) },
        { h: 'From swarm', num: true, v: r => b.bytes(r.from_swarm) },
        { h: 'To swarm', num: true, v: r => b.bytes(r.to_swarm) },
        { h: 'Pinned', num: true, title: 'pieces held until the master has them', v: r => r.pinned },
      ], rows) : h('p', { class: 'muted' }, 'Helping no master torrent now.'));
  },
});
