'use strict';
// Friends and ledger (issue #11): the friends with their balances, the
// pending requests of repeaters met in a swarm (Accept / Deny), invite
// codes both ways, and the ledger: each balance with the IOUs behind it
// and why, and the newest IOUs.
btslave.page({
  id: 'friends', title: 'Friends', order: 80,
  apis: ['/api/v1/friends', '/api/v1/ledger'],
  mount(el) {
    const b = btslave, h = b.el;
    this.head = h('div', { id: 'friends-head' });
    this.pending = h('div', { id: 'friends-pending' });
    this.friends = h('div', { id: 'friends-list' });
    this.ledger = h('div', { id: 'ledger' });
    this.msg = h('div', { id: 'friends-msg', role: 'status' });
    this.invite = h('div', { id: 'invite-out' });
    this.addForm = h('form', { class: 'feed', id: 'friend-add-form' },
      h('label', { class: 'wide' }, 'Invite code from another owner',
        h('input', { name: 'code', id: 'friend-code', required: true, autocomplete: 'off', placeholder: 'BTSF1-…' })),
      h('label', {}, 'Name (your label)', h('input', { name: 'name', id: 'friend-name', autocomplete: 'off' })),
      h('div', { class: 'buttons wide' },
        h('button', { type: 'submit', class: 'act', id: 'friend-add-btn' }, 'Add friend'),
        h('button', { type: 'button', class: 'act alt', id: 'invite-btn', onclick: () => this.makeInvite() }, 'Make an invite code'),
        this.msg),
      h('div', { class: 'wide' }, this.invite));
    this.addForm.addEventListener('submit', e => { e.preventDefault(); this.add(); });
    el.append(h('h2', {}, 'Friends'), this.head,
      h('h3', {}, 'Pending requests'), this.pending,
      h('h3', {}, 'Friends'), this.friends,
      h('h3', {}, 'Invite or add a friend'), h('div', { class: 'card' }, this.addForm),
      h('h2', {}, 'Ledger'), this.ledger);
  },
  say(cls, text) { this.msg.className = cls; this.msg.textContent = text; },
  async act(what, f) {
    const b = btslave;
    try {
      if (what === 'remove') {
        if (!confirm('Remove friend ' + (f.name || f.short) + '? The ledger keeps its IOUs.')) return;
        await b.api('/api/v1/friends/' + encodeURIComponent(f.id), { method: 'DELETE' });
      } else {
        await b.api('/api/v1/friends/' + encodeURIComponent(f.id) + '/' + what, { body: {} });
      }
      this.say('ok', { accept: 'accepted ', deny: 'denied ', remove: 'removed ' }[what] + f.short);
    } catch (e) {
      this.say('err', e.message);
    }
    b.refresh();
  },
  async makeInvite() {
    const b = btslave, h = b.el;
    try {
      const ic = await b.api('/api/v1/friends/invite', { body: {} });
      this.invite.replaceChildren(h('p', { class: 'muted' }, 'Give this code to the other owner (btslave friends add CODE, or this page). ',
        'Whoever holds it may become your friend until ', b.when(ic.expires), '; friends dial ', h('code', {}, ic.addr), '.'),
      h('pre', { class: 'invite', id: 'invite-code' }, ic.code));
      this.say('', '');
    } catch (e) {
      this.say('err', e.message);
    }
  },
  async add() {
    const b = btslave;
    if (!this.addForm.reportValidity()) return;
    const f = this.addForm.elements;
    try {
      const fr = await b.api('/api/v1/friends', { body: { code: f.code.value.trim(), name: f.name.value.trim() } });
      this.say('ok', 'added friend ' + (fr.name || fr.short) + ' at ' + fr.addr);
      this.addForm.reset();
    } catch (e) {
      this.say('err', e.message);
    }
    b.refresh();
  },
  update(el, list, ledger) {
    const b = btslave, h = b.el;
    if (!list) {
      this.head.replaceChildren(h('p', { class: 'hint' }, 'This server has no friends API (the demo\'s dashboard): run the daemon for friends.'));
    }
    list = list || { friends: [], pending: [], enabled: null };
    ledger = ledger || { accounts: [], recent: [] };
    if (list.enabled === false) {
      this.head.replaceChildren(h('p', { class: 'hint' }, 'Friends are off. Set ', h('code', {}, '[friends] enabled = true'),
        ' (and listen, address) in the configuration and restart the daemon; see docs/friends-protocol.md.'));
    } else if (list.enabled) {
      this.head.replaceChildren(h('p', {}, 'Our friend ID ', h('code', { id: 'our-id' }, list.id), ' · repeaters met in a swarm: ',
        h('code', {}, 'accept = ' + list.accept),
        list.accept === 'ask' ? h('span', { class: 'muted' }, ' (they wait below for you)') : null));
    }
    const balance = f => h('span', { class: f.balance > 0 ? 'ok' : f.balance < 0 ? 'err' : null,
      title: 'we helped ' + b.bytes(f.given) + ', it helped us ' + b.bytes(f.taken) }, (f.balance > 0 ? '+' : '') + b.bytes(f.balance));
    const seen = f => f.last_seen ? b.when(f.last_seen) : h('span', { class: 'muted', title: 'since the daemon started' }, 'not yet');
    const id = f => h('code', { title: f.id }, f.short);
    const pend = list.pending || [];
    this.pending.replaceChildren(pend.length ? b.table([
      { h: 'ID', v: id },
      { h: 'Address', v: f => f.addr || '-' },
      { h: 'Asked', v: f => b.when(f.added) },
      { h: 'Last seen', v: seen },
      { h: '', v: f => h('span', { class: 'pending' },
        h('button', { class: 'small accept', type: 'button', onclick: () => this.act('accept', f) }, 'Accept'),
        h('button', { class: 'small bad deny', type: 'button', onclick: () => this.act('deny', f) }, 'Deny')) },
    ], pend, f => ({ 'data-friend': f.id })) : h('p', { class: 'muted' }, 'No request waiting.'));
    const fs = list.friends || [];
    this.friends.replaceChildren(fs.length ? b.table([
      { h: 'Name', v: f => f.name || '-' },
      { h: 'ID', v: id },
      { h: 'Address', v: f => f.addr || '-' },
      { h: 'Via', v: f => f.via + (f.invite_unused ? ' (code not used yet)' : '') },
      { h: 'Since', v: f => b.when(f.added) },
      { h: 'Balance', num: true, title: 'what we delivered to its master minus what it delivered to ours, countersigned', v: balance },
      { h: 'Last seen', v: seen },
      { h: '', v: f => h('button', { class: 'small', type: 'button', onclick: () => this.act('remove', f) }, 'Remove') },
    ], fs, f => ({ 'data-friend': f.id })) : h('p', { class: 'muted' }, 'No friend yet. Make an invite code below, or accept a request.'));

    const accts = ledger.accounts || [];
    const open = new Set([...this.ledger.querySelectorAll('details[open]')].map(d => d.dataset.why));
    const lines = (rows, who) => b.table([
      who ? { h: 'Friend', v: l => h('code', {}, l.friend) } : null,
      { h: 'When', v: l => b.when(l.time) },
      { h: 'Bytes', num: true, v: l => (l.dir === 'given' ? '+' : '−') + b.bytes(l.delta) },
      { h: 'Way', v: l => l.dir === 'given' ? 'we helped' : 'it helped us' },
      { h: 'IOU', num: true, title: 'sequence number and running total of this direction', v: l => '#' + l.seq + ' · ' + b.bytes(l.total) },
      { h: 'Why', wrap: true, v: l => l.reason || '-' },
    ].filter(c => c), rows);
    this.ledger.replaceChildren(...(accts.length ? [
      b.table([
        { h: 'Friend', v: a => h('span', {}, a.name ? a.name + ' ' : '', h('code', { title: a.friend }, a.short), a.former ? h('span', { class: 'muted' }, ' (former friend)') : null) },
        { h: 'Balance', num: true, v: balance },
        { h: 'We helped', num: true, v: a => b.bytes(a.given) },
        { h: 'It helped us', num: true, v: a => b.bytes(a.taken) },
        { h: 'IOUs', num: true, v: a => (a.entries || []).length },
      ], accts, a => ({ 'data-account': a.friend })),
      ...accts.map(a => h('details', { class: 'card', 'data-why': a.friend, open: open.has(a.friend) }, h('summary', {}, 'Why ', a.name || a.short, ' stands at ', balance(a)),
        (a.entries || []).length ? lines(a.entries, false) : h('p', { class: 'muted' }, 'no IOU'))),
      h('h3', {}, 'Recent IOUs'), lines(ledger.recent || [], true),
    ] : [h('p', { class: 'muted', id: 'ledger-empty' }, 'No IOUs yet: a balance starts when a friend helps your master, or you help its master.')]));
  },
});
