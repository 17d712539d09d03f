'use strict';
// btslave.chart draws a line chart on a canvas: series of {label, color,
// values} over times (ms), the y axis from 0 to the largest value, a grid,
// the newest value of each series in the legend; floor is the least top of
// the y axis. It sets
// canvas.dataset.points to the points drawn (the browser test reads it).
btslave.chart = (canvas, times, series, fmt, floor) => {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300, h = canvas.clientHeight || 160;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const color = c => c.startsWith('--') ? css.getPropertyValue(c).trim() : c;
  const left = 64, right = 8, top = 8, bottom = 20;
  const pw = w - left - right, ph = h - top - bottom;
  let ymax = 0;
  for (const s of series) for (const v of s.values) if (isFinite(v)) ymax = Math.max(ymax, v);
  ymax = Math.max(ymax, floor || 0);
  if (ymax <= 0) ymax = 1;
  const t0 = times[0] || 0, t1 = times[times.length - 1] || 1;
  const x = t => left + (t1 > t0 ? (t - t0) / (t1 - t0) : 1) * pw;
  const y = v => top + ph - v / ymax * ph;
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#667';
  g.strokeStyle = '#e3e6ea';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4, yy = Math.round(y(v)) + .5;
    g.beginPath(); g.moveTo(left, yy); g.lineTo(w - right, yy); g.stroke();
    g.fillText(fmt ? fmt(v) : v.toFixed(2), 2, yy + 4);
  }
  if (t1 > t0) {
    g.fillText(new Date(t0).toLocaleTimeString(), left, h - 4);
    const l = new Date(t1).toLocaleTimeString();
    g.fillText(l, w - right - g.measureText(l).width, h - 4);
  }
  let points = 0;
  for (const s of series) {
    g.strokeStyle = color(s.color);
    g.lineWidth = 2;
    g.beginPath();
    let started = false;
    s.values.forEach((v, i) => {
      if (!isFinite(v)) return;
      const px = x(times[i]), py = y(v);
      if (started) g.lineTo(px, py); else { g.moveTo(px, py); started = true; }
      points++;
    });
    g.stroke();
  }
  canvas.dataset.points = String(points);
  return points;
};

// btslave.legend returns a legend for series with their newest values.
btslave.legend = (series, fmt) => btslave.el('div', { class: 'legend' }, series.map(s => {
  const i = btslave.el('i');
  i.style.background = s.color.startsWith('--') ? 'var(' + s.color + ')' : s.color;
  const last = s.values.length ? s.values[s.values.length - 1] : undefined;
  return btslave.el('span', {}, i, s.label + ' ' + (last === undefined || !isFinite(last) ? '-' : (fmt ? fmt(last) : last.toFixed(2))));
}));
