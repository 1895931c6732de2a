package status

// pageTemplate is the status page. Elements showing a value carry
// data-field (its path in the JSON document, relative to the stream or,
// in the header, to the document), data-format and data-value (the raw
// value: what a test reads); the script refreshes them from /status.json.
// The sparkline geometry (160×32) is sparkW×sparkH in page.go.
const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice status</title>
<link rel="icon" href="data:,">
<style nonce="{{.Nonce}}">
:root { --fg: #1d232b; --muted: #5f6b7a; --bg: #f6f7f9; --card: #fff; --line: #dde1e6; --ok: #1a7f37; --bad: #c62828; --accent: #2f6fde; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e4e7eb; --muted: #98a2b3; --bg: #12161c; --card: #1b2028; --line: #2c333d; --ok: #4cc26b; --bad: #ff6b6b; --accent: #6ea1ff; }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; padding: 1rem 1.5rem 2rem; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 1.3rem; margin: 0 1.5rem 0 0; }
h2 { font-size: 1.1rem; margin: 0; overflow-wrap: anywhere; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 0; margin-bottom: 1rem; }
header dl { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; margin: 0; }
dl div { display: flex; gap: .4rem; }
dt { color: var(--muted); }
dd { margin: 0; font-variant-numeric: tabular-nums; }
#problem { flex-basis: 100%; margin: .5rem 0 0; color: var(--bad); }
#problem:empty { display: none; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { color: var(--muted); font-weight: 600; }
.summary { width: 100%; background: var(--card); border: 1px solid var(--line); margin-bottom: 1.25rem; }
.summary td:first-child { font-weight: 600; max-width: 24rem; overflow: hidden; text-overflow: ellipsis; }
.ok { color: var(--ok); }
.bad { color: var(--bad); font-weight: 600; }
.streams { display: grid; grid-template-columns: repeat(auto-fill, minmax(30rem, 1fr)); gap: 1rem; }
section.stream { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .9rem 1rem; min-width: 0; }
section.stream > .head { display: flex; flex-wrap: wrap; gap: .25rem .75rem; align-items: baseline; margin-bottom: .5rem; }
.reason { color: var(--bad); overflow-wrap: anywhere; }
.facts, .nums { display: grid; grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr)); gap: .15rem 1rem; margin: .4rem 0 .6rem; }
.sparks { display: flex; flex-wrap: wrap; gap: .75rem 1.25rem; margin: .5rem 0; }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: .85rem; }
figcaption span { color: var(--fg); font-variant-numeric: tabular-nums; }
svg.spark { display: block; width: 160px; height: 32px; background: var(--bg); border-radius: 3px; }
svg.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
.lasterr { margin: .5rem 0; overflow-wrap: anywhere; }
.lasterr .msg { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; white-space: pre-wrap; }
.lists { display: flex; flex-wrap: wrap; gap: 1rem; }
.lists table caption { text-align: left; color: var(--muted); padding-bottom: .2rem; }
.lists td:first-child { white-space: normal; overflow-wrap: anywhere; max-width: 18rem; }
tr.empty td { color: var(--muted); text-align: left; }
footer { margin-top: 1.5rem; color: var(--muted); }
a { color: var(--accent); }
</style>
</head>
<body data-refreshes="0" data-refresh="{{refresh .Doc}}">
{{define "cell"}}<span data-field="{{.Path}}" data-format="{{.Format}}" data-value="{{.Raw}}"{{if .Class}} class="{{.Class}}"{{end}}>{{.Text}}</span>{{end}}
{{define "spark"}}<svg class="spark" viewBox="0 0 160 32" preserveAspectRatio="none" role="img" aria-label="{{.Label}}" data-spark="{{.Path}}" data-points="{{npts (get .S .Path)}}"><polyline points="{{spark (get .S .Path)}}"/></svg>{{end}}
{{define "list"}}<tbody data-list="{{.Path}}" data-cols="{{.Cols}}">{{range .Rows}}<tr>{{range .}}<td data-format="{{.Format}}" data-value="{{.Raw}}">{{.Text}}</td>{{end}}</tr>{{else}}<tr class="empty"><td colspan="3">none</td></tr>{{end}}</tbody>{{end}}
<header data-root>
<h1>Sluice</h1>
<dl>
<div><dt>version</dt><dd>{{template "cell" (f .Doc "version" "text")}}</dd></div>
<div><dt>uptime</dt><dd>{{template "cell" (f .Doc "uptime_seconds" "seconds")}}</dd></div>
<div data-show="reloads"{{if not (get .Doc "reloads")}} hidden{{end}}><dt>config reloads</dt><dd>{{template "cell" (f .Doc "reloads.success_total" "count")}} ok, {{template "cell" (f .Doc "reloads.failure_total" "count")}} failed; last successful: {{template "cell" (f .Doc "reloads.last_successful" "bool")}}, at {{template "cell" (f .Doc "reloads.last_success_at" "time")}}</dd></div>
<div><dt>memory</dt><dd>{{template "cell" (f .Doc "process.resident_memory_bytes" "bytes")}}</dd></div>
<div><dt>goroutines</dt><dd>{{template "cell" (f .Doc "process.goroutines" "count")}}</dd></div>
<div><dt>updated</dt><dd>{{template "cell" (f .Doc "now" "time")}}</dd></div>
</dl>
<p id="problem" role="status"></p>
</header>
<main>
<table class="summary">
<thead><tr><th>stream</th><th>state</th><th>in records/s</th><th>in bytes/s</th><th>out records/s</th><th>out bytes/s</th><th>backlog</th><th>age</th><th>in flight</th><th>retries/s</th><th>dead letters</th></tr></thead>
<tbody>
{{range get .Doc "streams"}}<tr data-stream="{{get . "name"}}">
<td title="{{get . "name"}}">{{get . "name"}}</td>
<td>{{template "cell" (f . "ready" "ready")}}</td>
<td>{{template "cell" (f . "incoming.records_per_second" "rate")}}</td>
<td>{{template "cell" (f . "incoming.bytes_per_second" "bytesrate")}}</td>
<td>{{template "cell" (f . "delivered.records_per_second" "rate")}}</td>
<td>{{template "cell" (f . "delivered.bytes_per_second" "bytesrate")}}</td>
<td>{{template "cell" (f . "backlog_bytes" "bytes")}}</td>
<td>{{template "cell" (f . "backlog_age_seconds" "seconds")}}</td>
<td>{{template "cell" (f . "in_flight_batches" "count")}}</td>
<td>{{template "cell" (f . "retries.per_second" "rate")}}</td>
<td>{{template "cell" (f . "dead_letters.total" "count")}}</td>
</tr>
{{else}}<tr class="empty"><td colspan="11">no streams</td></tr>
{{end}}</tbody>
</table>
<div class="streams">
{{range get .Doc "streams"}}<section class="stream" data-stream="{{get . "name"}}">
<div class="head"><h2>{{get . "name"}}</h2>{{template "cell" (f . "ready" "ready")}}<span class="reason">{{template "cell" (f . "not_ready_reason" "opt")}}</span></div>
<dl class="facts">
<div><dt>source</dt><dd>{{template "cell" (f . "source" "text")}}</dd></div>
<div><dt>destination</dt><dd>{{template "cell" (f . "destination" "text")}}</dd></div>
<div><dt>error output</dt><dd>{{template "cell" (f . "error_output" "text")}}</dd></div>
</dl>
<div class="sparks">
<figure><figcaption>incoming records/s <span>{{template "cell" (f . "incoming.records_per_second" "rate")}}</span></figcaption>{{template "spark" (sparkOf . "history.incoming_records_per_second" "incoming records per second")}}</figure>
<figure><figcaption>delivered records/s <span>{{template "cell" (f . "delivered.records_per_second" "rate")}}</span></figcaption>{{template "spark" (sparkOf . "history.delivered_records_per_second" "delivered records per second")}}</figure>
<figure><figcaption>backlog <span>{{template "cell" (f . "backlog_bytes" "bytes")}}</span></figcaption>{{template "spark" (sparkOf . "history.backlog_bytes" "backlog bytes")}}</figure>
</div>
<dl class="nums">
<div><dt>incoming records</dt><dd>{{template "cell" (f . "incoming.records_total" "count")}}</dd></div>
<div><dt>incoming bytes</dt><dd>{{template "cell" (f . "incoming.bytes_total" "bytes")}}</dd></div>
<div><dt>delivered records</dt><dd>{{template "cell" (f . "delivered.records_total" "count")}}</dd></div>
<div><dt>delivered bytes</dt><dd>{{template "cell" (f . "delivered.bytes_total" "bytes")}}</dd></div>
<div><dt>in bytes/s</dt><dd>{{template "cell" (f . "incoming.bytes_per_second" "bytesrate")}}</dd></div>
<div><dt>out bytes/s</dt><dd>{{template "cell" (f . "delivered.bytes_per_second" "bytesrate")}}</dd></div>
<div><dt>backlog age</dt><dd>{{template "cell" (f . "backlog_age_seconds" "seconds")}}</dd></div>
<div><dt>in-flight batches</dt><dd>{{template "cell" (f . "in_flight_batches" "count")}}</dd></div>
<div><dt>retries</dt><dd>{{template "cell" (f . "retries.total" "count")}} ({{template "cell" (f . "retries.per_second" "rate")}}/s)</dd></div>
<div><dt>stalled retries</dt><dd>{{template "cell" (f . "stalled_retries.total" "count")}} ({{template "cell" (f . "stalled_retries.per_second" "rate")}}/s)</dd></div>
<div><dt>dead letters</dt><dd>{{template "cell" (f . "dead_letters.total" "count")}} ({{template "cell" (f . "dead_letters.per_second" "rate")}}/s)</dd></div>
</dl>
<div class="lasterr">last error: <span data-show="last_error"{{if not (get . "last_error")}} hidden{{end}}><span class="msg">{{template "cell" (f . "last_error.message" "text")}}</span> at {{template "cell" (f . "last_error.at" "time")}}</span><span data-hide="last_error"{{if get . "last_error"}} hidden{{end}}>none</span></div>
<div class="lists">
<table><caption>dead letters by code</caption><thead><tr><th>code</th><th>records</th><th>/s</th></tr></thead>{{template "list" (list . "dead_letters.by_code" "code:text,total:count,per_second:rate")}}</table>
<table><caption>stalled retries by operation</caption><thead><tr><th>operation</th><th>retries</th><th>/s</th></tr></thead>{{template "list" (list . "stalled_retries.by_operation" "operation:text,total:count,per_second:rate")}}</table>
</div>
</section>
{{end}}</div>
</main>
<footer>Data: <a href="status.json">status.json</a>, from the same registry as <a href="metrics">/metrics</a>. Rates are over the last sampling interval; sparklines cover the last {{template "cell" (f .Doc "history_seconds" "seconds")}}.</footer>
<script nonce="{{.Nonce}}">
(() => {
  'use strict';
  const NONE = '\u2013';
  const W = 160, H = 32;
  const body = document.body;
  const header = document.querySelector('[data-root]');
  const problem = document.getElementById('problem');
  const asked = Number(new URLSearchParams(location.search).get('refresh'));
  const every = Math.max(0.5, asked > 0 ? asked : (Number(body.dataset.refresh) || 5));

  const get = (o, path) => {
    for (const k of path.split('.')) {
      if (o === null || typeof o !== 'object') return null;
      o = o[k];
    }
    return o === undefined ? null : o;
  };
  const raw = (v) => v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const group = (n) => (n < 0 ? '-' : '') + Math.abs(n).toFixed(0).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const bytes = (v) => {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? v.toFixed(0) + ' B' : v.toFixed(1) + ' ' + units[i];
  };
  const secs = (v) => {
    const s = Math.floor(v);
    if (v < 60) return v.toFixed(1) + ' s';
    if (v < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (v < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor(s % 3600 / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor(s % 86400 / 3600) + 'h';
  };
  const fmt = (v, f) => {
    if (f === 'opt') return v === null ? '' : String(v);
    if (v === null) return NONE;
    switch (f) {
      case 'ready': return v ? 'ready' : 'not ready';
      case 'bool': return v ? 'yes' : 'no';
      case 'time': {
        const d = new Date(v);
        return isNaN(d.getTime()) ? String(v) : d.toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
      }
    }
    if (typeof v !== 'number') return typeof v === 'string' ? (v === '' ? NONE : v) : raw(v);
    switch (f) {
      case 'count': return group(Math.round(v));
      case 'rate': return v.toFixed(1);
      case 'bytes': return bytes(v);
      case 'bytesrate': return bytes(v) + '/s';
      case 'seconds': return secs(v);
      default: return String(v);
    }
  };
  const setCell = (el, v, f) => {
    el.dataset.value = raw(v);
    el.textContent = fmt(v, f);
    if (f === 'ready' || f === 'bool') {
      el.classList.toggle('ok', v === true);
      el.classList.toggle('bad', v === false);
    }
  };
  const points = (vals) => {
    if (!Array.isArray(vals) || vals.length === 0) return '';
    let top = 0;
    for (const x of vals) if (typeof x === 'number') top = Math.max(top, x);
    if (top <= 0) top = 1;
    const out = [];
    vals.forEach((x, i) => {
      if (typeof x !== 'number') return;
      const px = vals.length > 1 ? i * W / (vals.length - 1) : 0;
      const py = (H - 1 - x / top * (H - 2)).toFixed(1);
      out.push(px.toFixed(1) + ',' + py);
      if (out.length === 1 && i === vals.length - 1) out.push(Math.max(0, px - 4).toFixed(1) + ',' + py); // a lone point
    });
    return out.join(' ');
  };
  const fill = (root, obj) => {
    root.querySelectorAll('[data-field]').forEach((el) => setCell(el, get(obj, el.dataset.field), el.dataset.format));
    root.querySelectorAll('[data-show]').forEach((el) => { el.hidden = get(obj, el.dataset.show) === null; });
    root.querySelectorAll('[data-hide]').forEach((el) => { el.hidden = get(obj, el.dataset.hide) !== null; });
    root.querySelectorAll('[data-spark]').forEach((svg) => {
      const vals = get(obj, svg.dataset.spark);
      svg.dataset.points = String(Array.isArray(vals) ? vals.length : 0);
      svg.querySelector('polyline').setAttribute('points', points(vals));
    });
    root.querySelectorAll('[data-list]').forEach((tbody) => {
      const cols = tbody.dataset.cols.split(',').map((c) => c.split(':'));
      const items = get(obj, tbody.dataset.list) || [];
      const rows = items.map((it) => {
        const tr = document.createElement('tr');
        for (const [key, f] of cols) {
          const td = document.createElement('td');
          td.dataset.format = f;
          setCell(td, get(it, key), f);
          tr.append(td);
        }
        return tr;
      });
      if (rows.length === 0) {
        const tr = document.createElement('tr');
        tr.className = 'empty';
        const td = document.createElement('td');
        td.colSpan = cols.length;
        td.textContent = 'none';
        tr.append(td);
        rows.push(tr);
      }
      tbody.replaceChildren(...rows);
    });
  };
  const refresh = async () => {
    try {
      const r = await fetch('status.json', { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const doc = await r.json();
      const names = doc.streams.map((s) => s.name);
      const shown = Array.from(document.querySelectorAll('section[data-stream]'), (el) => el.dataset.stream);
      if (names.join('\n') !== shown.join('\n')) {
        location.reload(); // the streams changed (a configuration reload)
        return;
      }
      fill(header, doc);
      const byName = new Map(doc.streams.map((s) => [s.name, s]));
      document.querySelectorAll('[data-stream]').forEach((el) => fill(el, byName.get(el.dataset.stream)));
      problem.textContent = '';
      delete body.dataset.stale;
      body.dataset.refreshes = String(Number(body.dataset.refreshes) + 1);
    } catch (e) {
      const at = header.querySelector('[data-field="now"]');
      problem.textContent = 'Could not refresh: ' + e.message + '. The numbers shown are as of ' + (at ? at.textContent : 'the page load') + '.';
      body.dataset.stale = '1';
    }
    setTimeout(refresh, every * 1000);
  };
  setTimeout(refresh, every * 1000);
})();
</script>
</body>
</html>
`
