'use strict';
// Tracker: the embedded tracker's figures.
btslave.page({
  id: 'tracker', title: 'Tracker', order: 50,
  apis: ['/api/v1/status'],
  update(el, st) {
    const b = btslave, h = b.el, t = st.tracker;
    if (!t) {
      el.replaceChildren(h('h2', {}, 'Tracker'), h('p', { class: 'muted' }, 'The embedded tracker is off; [tracker] enabled = true turns it on.'));
      return;
    }
    const card = (title, big, sub) => h('div', { class: 'card' }, h('h3', {}, title), h('div', { class: 'big' }, big), sub ? h('div', { class: 'muted' }, sub) : null);
    el.replaceChildren(h('h2', {}, 'Tracker'),
      h('p', {}, 'Announce URL ', h('code', { id: 'announce-url' }, t.announce_url), t.open ? ' · open: any torrent' : ' · whitelist of ' + t.whitelisted),
      h('div', { class: 'cards' },
        card('Torrents', t.torrents),
        card('Seeds', t.seeds, t.partial_seeds + ' partial seeds'),
        card('Downloaders', t.downloaders),
        card('Announces', b.num(t.announces_per_second, 1) + '/s', b.num(t.scrapes_per_second, 1) + ' scrapes/s')),
      (t.sync_peers || []).length ? h('p', {}, 'Synced with ', t.sync_peers.join(', ')) : h('p', { class: 'muted' }, 'No sync peers.'));
  },
});
