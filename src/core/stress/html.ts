import type { StressReport } from './report.js';

/**
 * `--report-html`: one self-contained page (no network: inline CSS, SVG drawn by inline
 * JS from the report embedded in the page) to attach to a CI run: the SLO verdict, HDR's
 * latency percentile plot per sink (x: percentile on HDR's 1/(1-p) log scale) and the
 * rate and lag over time. Each plot's <svg> gets data-points="N" once drawn, which the
 * headless-Chromium test reads.
 */
export function renderHtml(report: StressReport): string {
  // </script> inside the JSON would end the script element early.
  const data = JSON.stringify(report).replace(/</g, '\\u003c');
  const verdict = report.ok ? 'all SLOs met' : `SLO missed: ${report.slo.missed.join('; ')}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>streamctl stress-test: ${escapeHtml(report.pipeline.pipeline_id)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.4em}.ok{color:#1a7f37}.bad{color:#cf222e}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}
svg{border:1px solid #ddd;background:#fff}.axis{stroke:#888}.grid{stroke:#eee}text{font-size:11px;fill:#444}
</style></head><body>
<h1>streamctl stress-test <span class="${report.ok ? 'ok' : 'bad'}">${escapeHtml(verdict)}</span></h1>
<p id="context"></p>
<table id="sinks"></table>
<h2>Latency by percentile (HDR)</h2>
<svg id="percentile-plot" width="820" height="360" role="img" aria-label="latency percentile distribution"></svg>
<h2>Rate and lag over time</h2>
<svg id="timeline-plot" width="820" height="300" role="img" aria-label="rate and lag over time"></svg>
<script type="application/json" id="report-data">${data}</script>
<script>
(function () {
  var r = JSON.parse(document.getElementById('report-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  var COLORS = { redis: '#d1242f', bigquery: '#0969da', http: '#1a7f37', rate: '#8250df', slot: '#bf8700' };
  function el(parent, name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  }
  var m = r.machine;
  document.getElementById('context').textContent = r.load.committed_events + ' events committed at ' + r.load.achieved_rate +
    ' events/s (offered ' + r.settings.rate + ') for ' + r.settings.duration_s + ' s, pipeline ' + r.pipeline.mode +
    (r.pipeline.layout ? ' (' + r.pipeline.layout + ')' : '') + '; machine ' + m.cpus + ' CPUs, load average ' + m.loadavg_start.join(' ') +
    ' -> ' + m.loadavg_end.join(' ') + '; CPU: ' + m.processes.map(function (p) { return p.name + ' ' + p.cpu_percent + '%'; }).join(', ') + (m.steal_percent == null ? '' : '; steal ' + m.steal_percent + '%');
  var t = document.getElementById('sinks');
  var head = ['sink', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'events', 'lost', 'dup', 'order', 'dlq', 'verify (final state)', 'method'];
  // verify: absent for HTTP (no state), null with --no-verify, else its verdict on the load table's rows.
  function verifyCell(f) {
    if (f === undefined) return '-';
    if (f === null) return 'off';
    if (f.not_run) return 'not run: ' + f.not_run;
    return (f.equal ? 'equal' : f.persistent + ' rows differ (missing ' + f.missing + ', extra ' + f.extra + ', differing ' + f.differing + ')') +
      ', ' + f.rows_compared + ' rows, transient ' + f.transient;
  }
  var tr = document.createElement('tr');
  t.appendChild(tr);
  head.forEach(function (h) { var th = document.createElement('th'); th.textContent = h; tr.appendChild(th); });
  Object.keys(r.sinks).forEach(function (s) {
    var x = r.sinks[s], c = x.counts || {};
    var row = document.createElement('tr');
    [s, x.latency.p50_ms, x.latency.p90_ms, x.latency.p99_ms, x.latency['p99.9_ms'], x.latency.max_ms, x.latency.count, c.lost, c.duplicates, c.out_of_order, c.dlq, verifyCell(x.verify), x.latency.method]
      .forEach(function (v) { var td = document.createElement('td'); td.textContent = v === undefined || v === null ? '-' : v; row.appendChild(td); });
    t.appendChild(row);
  });

  function plot(svg, series, xLabel, yLabel, xTicks) {
    var W = +svg.getAttribute('width'), H = +svg.getAttribute('height'), L = 60, R = 20, T = 20, B = 40;
    var xs = [], ys = [], points = 0;
    series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); }); });
    if (xs.length === 0) { el(svg, 'text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no data'); svg.setAttribute('data-points', '0'); return; }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y1 = Math.max.apply(null, ys) || 1;
    if (x1 === x0) x1 = x0 + 1;
    function X(v) { return L + ((v - x0) / (x1 - x0)) * (W - L - R); }
    function Y(v) { return H - B - (v / y1) * (H - T - B); }
    for (var i = 0; i <= 4; i++) {
      var yv = (y1 * i) / 4;
      el(svg, 'line', { x1: L, x2: W - R, y1: Y(yv), y2: Y(yv), class: 'grid' });
      el(svg, 'text', { x: L - 5, y: Y(yv) + 4, 'text-anchor': 'end' }, yv.toFixed(yv < 10 ? 1 : 0));
    }
    (xTicks || []).forEach(function (tk) { if (tk[0] >= x0 && tk[0] <= x1) el(svg, 'text', { x: X(tk[0]), y: H - B + 15, 'text-anchor': 'middle' }, tk[1]); });
    el(svg, 'line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' });
    el(svg, 'line', { x1: L, x2: L, y1: T, y2: H - B, class: 'axis' });
    el(svg, 'text', { x: W / 2, y: H - 5, 'text-anchor': 'middle' }, xLabel);
    el(svg, 'text', { x: 12, y: T + 10 }, yLabel);
    series.forEach(function (s, k) {
      el(svg, 'polyline', { fill: 'none', stroke: s.color, 'stroke-width': 2, 'data-series': s.name,
        points: s.points.map(function (p) { return X(p[0]).toFixed(1) + ',' + Y(p[1]).toFixed(1); }).join(' ') });
      el(svg, 'text', { x: L + 10, y: T + 14 * (k + 1), style: 'fill:' + s.color }, s.name);
      points += s.points.length;
    });
    svg.setAttribute('data-points', String(points));
  }
  // HDR's percentile axis: 1/(1-p), on a log scale, so the tail gets the room.
  function hx(p) { return Math.log10(1 / Math.max(1e-7, 1 - p / 100)); }
  plot(document.getElementById('percentile-plot'), Object.keys(r.sinks).map(function (s) {
    return { name: s, color: COLORS[s] || '#444', points: r.sinks[s].latency.distribution.filter(function (d) { return d.percentile < 100; }).map(function (d) { return [hx(d.percentile), d.ms]; }) };
  }), 'percentile', 'ms', [[0, '0%'], [1, '90%'], [2, '99%'], [3, '99.9%'], [4, '99.99%'], [5, '99.999%']]);
  var maxRate = Math.max.apply(null, r.timeline.map(function (p) { return p.rate; }).concat([1]));
  var maxLag = Math.max.apply(null, r.timeline.map(function (p) { return p.slot_lag_bytes || 0; }).concat([1]));
  plot(document.getElementById('timeline-plot'), [
    { name: 'rate (events/s)', color: COLORS.rate, points: r.timeline.map(function (p) { return [p.t_s, p.rate]; }) },
    { name: 'slot lag (scaled, max ' + Math.round(maxLag / 1024) + ' KiB)', color: COLORS.slot, points: r.timeline.map(function (p) { return [p.t_s, ((p.slot_lag_bytes || 0) / maxLag) * maxRate]; }) },
  ].concat(Object.keys(r.timeline.length ? r.timeline[r.timeline.length - 1].consumer_lag : {}).map(function (s) {
    return { name: s + ' consumer lag (events)', color: COLORS[s] || '#444', points: r.timeline.map(function (p) { return [p.t_s, p.consumer_lag[s] || 0]; }) };
  })), 'seconds since the load started', 'events/s');
  document.body.setAttribute('data-rendered', 'true');
})();
</script></body></html>
`;
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
