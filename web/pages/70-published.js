'use strict';
// Published: what this daemon publishes and everseeds (issue #14), and a
// form that publishes paths on the daemon's machine as "btslave publish"
// does, with the hashing progress (GET /api/v1/publishing) while it runs.
btslave.page({
  id: 'published', title: 'Published', order: 70,
  apis: ['/api/v1/published'],
  mount(el) {
    const b = btslave, h = b.el;
    const field = (label, input, wide) => h('label', { class: wide ? 'wide' : null }, label, input);
    const sizes = [['', 'auto (about 1500 pieces)']];
    for (let k = 16; k <= 16384; k *= 2) sizes.push([String(k * 1024), k < 1024 ? k + ' KiB' : (k / 1024) + ' MiB']);
    this.msg = h('div', { id: 'pub-msg', role: 'status' });
    this.progress = h('div', { id: 'pub-progress' });
    this.results = h('div', { id: 'pub-results' });
    this.list = h('div', { id: 'pub-list' });
    this.form = h('form', { class: 'feed', id: 'pub-form' },
      field('Path(s) on the daemon\'s machine, absolute, one per line',
        h('textarea', { name: 'paths', id: 'pub-paths', rows: 2, required: true, placeholder: '/srv/share/my-dataset' }), true),
      field('Version', h('select', { name: 'version', id: 'pub-version' },
        h('option', { value: 'hybrid' }, 'hybrid v1+v2'), h('option', { value: 'v1' }, 'v1 (Transmission 3, aria2)'), h('option', { value: 'v2' }, 'v2'))),
      field('Piece size', h('select', { name: 'piece_length', id: 'pub-piece' }, sizes.map(([v, t]) => h('option', { value: v }, t)))),
      field('Name (one path only)', h('input', { name: 'name', id: 'pub-name', autocomplete: 'off' })),
      field('Comment', h('input', { name: 'comment', id: 'pub-comment', autocomplete: 'off' })),
      field('Trackers: one tier per line, URLs of a tier comma-separated (default: the embedded tracker)',
        h('textarea', { name: 'trackers', id: 'pub-trackers', rows: 2, placeholder: 'http://tracker.example/announce' }), true),
      field('Web seeds (BEP 19), one per line', h('textarea', { name: 'web_seeds', id: 'pub-webseeds', rows: 1 }), true),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'private', id: 'pub-private' }), ' Private (BEP 27: trackers only)'),
      h('div', { class: 'buttons wide' }, h('button', { type: 'submit', class: 'act', id: 'pub-btn' }, 'Publish'), this.msg),
      h('div', { class: 'wide' }, this.progress));
    this.form.addEventListener('submit', e => { e.preventDefault(); this.publish(); });
    el.append(h('h2', {}, 'Published'), this.list, h('h3', {}, 'Publish a file or directory'),
      h('div', { class: 'card' }, this.form), this.results);
  },
  lines(name) {
    return this.form.elements[name].value.split('\n').map(s => s.trim()).filter(s => s !== '');
  },
  request() {
    const f = this.form.elements, req = { version: f.version.value, private: f.private.checked };
    if (f.piece_length.value) req.piece_length = Number(f.piece_length.value);
    for (const k of ['name', 'comment']) if (f[k].value.trim()) req[k] = f[k].value.trim();
    const tiers = this.lines('trackers').map(l => l.split(',').map(s => s.trim()).filter(s => s));
    if (tiers.length) req.trackers = tiers;
    const ws = this.lines('web_seeds');
    if (ws.length) req.web_seeds = ws;
    return req;
  },
  async publish() {
    const b = btslave, h = b.el;
    if (!this.form.reportValidity()) return;
    const paths = this.lines('paths');
    const bad = paths.find(p => !p.startsWith('/'));
    if (bad) { this.say('err', 'path ' + JSON.stringify(bad) + ': give an absolute path on the daemon\'s machine'); return; }
    if (paths.length > 1 && this.form.elements.name.value.trim()) { this.say('err', 'a name needs a single path'); return; }
    const btn = this.form.querySelector('#pub-btn');
    btn.disabled = true;
    const timer = setInterval(() => this.showProgress(), 500);
    const done = [];
    try {
      for (const [i, path] of paths.entries()) {
        this.say('muted', 'hashing ' + path + (paths.length > 1 ? ' (' + (i + 1) + ' of ' + paths.length + ')' : '') + '… keep this page open');
        try {
          const p = await b.api('/api/v1/published', { body: Object.assign(this.request(), { path }) });
          done.push(p);
          this.showResults(done);
        } catch (e) {
          this.say('err', path + ': ' + e.message);
          return;
        }
      }
      this.say('ok', 'published ' + done.length + (done.length === 1 ? ' torrent' : ' torrents') + '; the everseed serves ' + (done.length === 1 ? 'it' : 'them') + ' now');
      this.form.elements.paths.value = '';
    } finally {
      clearInterval(timer);
      this.progress.replaceChildren();
      btn.disabled = false;
      b.refresh();
    }
  },
  say(cls, text) { this.msg.className = cls; this.msg.textContent = text; },
  async showProgress() {
    const b = btslave, h = b.el;
    let jobs = [];
    try { jobs = await b.api('/api/v1/publishing') || []; } catch (e) { return; }
    this.progress.replaceChildren(...jobs.map(j => {
      const pct = j.total > 0 ? 100 * j.done / j.total : 0;
      const bar = h('div', { class: 'bar' }, h('span'));
      bar.firstChild.style.width = pct.toFixed(1) + '%'; // CSSOM: the CSP allows no inline style
      return h('div', { class: 'job' }, h('span', { class: 'muted' }, j.path, ': ', b.bytes(j.done), ' of ', b.bytes(j.total), ' hashed'), bar);
    }));
  },
  showResults(done) {
    const b = btslave, h = b.el;
    this.results.replaceChildren(h('h3', {}, 'Just published'), b.table([
      { h: 'Name', v: r => r.name, wrap: true },
      { h: 'Version', v: r => r.version },
      { h: 'Size', num: true, v: r => b.bytes(r.size) },
      { h: 'Magnet', v: r => h('code', { class: 'magnet' }, r.magnet), wrap: true },
      { h: '.torrent', v: r => r.torrent_url ? h('a', { href: r.torrent_url }, r.torrent_url) : h('span', { class: 'muted', title: 'set [publish] listen to serve .torrent files' }, 'no public listener'), wrap: true },
    ], done, r => ({ 'data-infohash': r.infohash })));
  },
  update(el, list) {
    const b = btslave, h = b.el, rows = list || [];
    this.list.replaceChildren(rows.length ? b.table([
      { h: 'Name', v: r => r.name, wrap: true },
      { h: 'Version', v: r => r.version },
      { h: 'Size', num: true, v: r => b.bytes(r.size) },
      { h: 'Everseed', v: r => r.seeding ? 'seeding' : 'stopped: ' + (r.stopped || '?'), wrap: true },
      { h: 'Seeds', num: true, v: r => r.seeds },
      { h: 'Downloaders', num: true, v: r => r.downloaders },
      { h: 'Served', num: true, v: r => b.bytes(r.bytes_served) },
      { h: 'Magnet', v: r => h('code', { class: 'magnet' }, r.magnet), wrap: true },
      { h: '', v: r => h('button', { class: 'small', type: 'button', onclick: () => this.unpublish(r) }, 'Unpublish') },
    ], rows, r => ({ 'data-infohash': r.infohash })) : h('p', { class: 'muted' }, 'Nothing published yet. Publish a path below, or run "btslave publish PATH".'));
  },
  async unpublish(r) {
    if (!confirm('Stop seeding and listing ' + r.name + '? Your files are not touched.')) return;
    try { await btslave.api('/api/v1/published/' + r.infohash, { method: 'DELETE' }); } catch (e) { alert(e.message); }
    btslave.refresh();
  },
});
