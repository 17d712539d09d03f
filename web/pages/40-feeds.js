'use strict';
// Feeds: the feeds and their fetches; the items a feed put in the
// catalog (the feed just added, or the one whose Items button was
// pressed); a form that tests a feed (every item, kept or not, and why)
// and adds it. The daemon validates both as "btslave feeds test" and
// "btslave feeds add" do.
btslave.page({
  id: 'feeds', title: 'Feeds', order: 40,
  apis: ['/api/v1/feeds'],
  mount(el) {
    const b = btslave, h = b.el;
    const field = (name, label, attrs) => h('label', { class: attrs && attrs.wide ? 'wide' : null }, label,
      h('input', Object.assign({ name, id: 'feed-' + name, autocomplete: 'off' }, attrs || {}, { wide: null })));
    this.msg = h('div', { id: 'feed-msg', role: 'status' });
    this.result = h('div', { id: 'feed-test' });
    this.list = h('div', { id: 'feed-list' });
    this.items = h('div', { id: 'feed-items' });
    this.form = h('form', { class: 'feed', id: 'feed-form' },
      field('url', 'Feed URL (RSS, Atom, torznab or a list) or a folder to watch', { wide: true, required: true, placeholder: 'https://example.org/rss' }),
      field('name', 'Name (optional)'),
      field('include', 'Include (regexp)'),
      field('exclude', 'Exclude (regexp)'),
      field('category', 'Category'),
      field('min_size', 'Min size', { placeholder: '100MiB' }),
      field('max_size', 'Max size', { placeholder: '20GiB' }),
      field('max_age', 'Max age', { placeholder: '7d' }),
      field('schedule', 'Schedule', { placeholder: '@every 15m' }),
      h('div', { class: 'buttons wide' },
        h('button', { type: 'button', class: 'act alt', id: 'feed-test-btn', onclick: () => this.send('test') }, 'Test'),
        h('button', { type: 'submit', class: 'act', id: 'feed-add-btn' }, 'Add feed'), this.msg));
    this.form.addEventListener('submit', e => { e.preventDefault(); this.send('add'); });
    el.append(h('h2', {}, 'Feeds'), this.list, this.items, h('h3', {}, 'Test or add a feed'),
      h('div', { class: 'card' }, this.form), this.result);
  },
  request() {
    const req = {};
    for (const i of this.form.querySelectorAll('input')) {
      const v = i.value.trim();
      if (v !== '') req[i.name] = v;
    }
    // A local path is a watch folder, as on the command line.
    if (req.url && !/^[a-z][a-z0-9+.-]*:/i.test(req.url)) { req.dir = req.url; delete req.url; }
    return req;
  },
  async send(what) {
    const b = btslave, h = b.el;
    if (!this.form.reportValidity()) return;
    this.msg.className = 'muted';
    this.msg.textContent = what === 'test' ? 'fetching…' : 'adding…';
    try {
      if (what === 'test') {
        const t = await b.api('/api/v1/feeds/test', { body: this.request() });
        this.msg.textContent = '';
        this.showTest(t);
      } else {
        const f = await b.api('/api/v1/feeds', { body: this.request() });
        this.msg.className = 'ok';
        this.msg.textContent = 'added feed ' + f.name + ', fetching now';
        this.form.reset();
        this.selected = f.name;
        b.refresh();
      }
    } catch (e) {
      this.msg.className = 'err';
      this.msg.textContent = e.message;
    }
  },
  showTest(t) {
    const b = btslave, h = b.el;
    const items = t.items || [];
    const cols = [
      { h: '', v: i => i.kept ? 'kept' : i.error ? 'error' : 'skip' },
      { h: 'Title', wrap: true, v: i => i.title || '-' },
      { h: 'Size', num: true, v: i => i.size ? b.bytes(i.size) : '-' },
      { h: 'Info hash', v: i => (i.infohash || '-').slice(0, 8) },
      { h: 'Why', wrap: true, v: i => i.why },
    ];
    this.result.replaceChildren(h('h3', {}, 'Test of ', t.feed, ': ', items.length, ' items, ', t.kept, ' kept'),
      items.length ? b.table(cols, items, i => ({ class: i.kept ? 'serving' : null })) : h('p', { class: 'muted' }, t.not_modified ? 'not modified' : 'no items'));
  },
  update(el, feeds) {
    const b = btslave, h = b.el;
    feeds = feeds || [];
    if (!feeds.length) {
      this.list.replaceChildren(h('p', { class: 'muted' }, 'No feed yet. Add one below (or btslave feeds add URL).'));
      return;
    }
    const cols = [
      { h: 'Name', v: f => f.name },
      { h: 'Source', wrap: true, v: f => f.source },
      { h: 'Schedule', v: f => f.schedule },
      { h: 'Items', num: true, v: f => f.items },
      { h: 'Kept', num: true, v: f => f.kept },
      { h: 'New', num: true, v: f => f.new },
      { h: 'Last fetch', v: f => b.when(f.last_fetch) },
      { h: 'State', wrap: true, v: f => f.running ? 'fetching' : f.last_error ? 'failing (' + f.failures + '): ' + f.last_error : f.fetches ? 'ok' : 'waiting' },
      { h: '', v: f => h('span', { class: 'pending' },
        h('button', { class: 'small', type: 'button', onclick: () => { this.selected = f.name; this.showItems(); } }, 'Items'),
        f.added ? h('button', { class: 'small', type: 'button', onclick: () => this.remove(f.name) }, 'Remove') : h('span', { class: 'muted', title: 'from the configuration file' }, 'config')) },
    ];
    this.list.replaceChildren(b.table(cols, feeds, f => ({ 'data-feed': f.name })));
    if (this.selected && !feeds.some(f => f.name === this.selected)) this.selected = null;
    this.showItems();
  },
  async showItems() {
    const b = btslave, h = b.el, name = this.selected;
    if (!name) { this.items.replaceChildren(); return; }
    let items;
    try { items = await b.api('/api/v1/feeds/' + encodeURIComponent(name) + '/items'); } catch (e) {
      this.items.replaceChildren(h('p', { class: 'err' }, 'items of ' + name + ': ' + e.message));
      return;
    }
    if (name !== this.selected) return; // another feed was picked meanwhile
    items = items || [];
    this.items.replaceChildren(h('h3', {}, 'In the catalog from ', name, ': ', items.length, items.length === 1 ? ' item' : ' items'),
      items.length ? b.table([
        { h: 'Name', wrap: true, v: i => i.name || i.title },
        { h: 'Size', num: true, v: i => i.size ? b.bytes(i.size) : '-' },
        { h: 'Seeders', num: true, v: i => i.seeders === undefined ? '-' : i.seeders },
        { h: 'First seen', v: i => b.when(i.first_seen) },
        { h: 'Info hash', v: i => h('code', { title: i.infohash }, i.infohash.slice(0, 12)) },
      ], items, i => ({ 'data-infohash': i.infohash })) : h('p', { class: 'muted' }, 'nothing kept yet (the first fetch may still run)'));
  },
  async remove(name) {
    if (!confirm('Remove feed ' + name + '?')) return;
    try { await btslave.api('/api/v1/feeds/' + encodeURIComponent(name), { method: 'DELETE' }); } catch (e) { alert(e.message); }
    btslave.refresh();
  },
});
