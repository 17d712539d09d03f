'use strict';
// Published: what this daemon publishes and everseeds (issue #14).
btslave.page({
  id: 'published', title: 'Published', order: 70,
  apis: ['/api/v1/published'],
  update(el, list) {
    const b = btslave, h = b.el, rows = list || [];
    el.replaceChildren(h('h2', {}, 'Published'),
      rows.length ? b.table([
        { h: 'Name', v: r => r.name, wrap: true },
        { h: 'Version', v: r => r.version },
        { h: 'Size', num: true, v: r => b.bytes(r.size) },
        { h: 'Everseed', v: r => r.seeding ? 'seeding' : 'stopped: ' + (r.stopped || '?'), wrap: true },
        { h: 'Seeds', num: true, v: r => r.seeds },
        { h: 'Downloaders', num: true, v: r => r.downloaders },
        { h: 'Served', num: true, v: r => b.bytes(r.bytes_served) },
        { h: 'Magnet', v: r => h('code', {}, r.magnet), wrap: true },
      ], rows) : h('p', { class: 'muted' }, 'Nothing published; "btslave publish PATH" makes a torrent and seeds it.'));
  },
});
