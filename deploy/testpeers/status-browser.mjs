// Loads the daemon's status page in Debian's headless Chromium (driven by
// playwright-core, never a browser build of Playwright's own), waits for
// the page to refresh itself from /status.json, reads every value it
// shows, takes a screenshot, and prints one JSON document to stdout:
//
//   {"url", "consoleErrors": [...], "pageErrors": [...], "failedRequests": [...],
//    "formatMismatches": [...] (a value the script shows otherwise than the server did),
//    "comparedFormats", "refreshes", "title", "process": {field: value}, "streams": {name: {field: value}},
//    "sparkPoints": {name: {path: n}}, "lists": {name: {path: [[cell, ...], ...]}}}
//
//   node status-browser.mjs URL SCREENSHOT.png [REFRESHES]
//
// Values are the elements' data-value attributes (numbers parsed, "" as
// null) as of the REFRESHES-th refresh (default 1) after the load. With
// SLUICE_ADMIN_TOKEN set, every request carries it as a bearer token.
import { chromium } from 'playwright-core';

const [url, shot, refreshesArg] = process.argv.slice(2);
if (!url || !shot) {
  console.error('usage: node status-browser.mjs URL SCREENSHOT.png [REFRESHES]');
  process.exit(2);
}
const want = Number(refreshesArg || 1);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const out = { url, consoleErrors: [], pageErrors: [], failedRequests: [] };
try {
  const headers = {};
  if (process.env.SLUICE_ADMIN_TOKEN) headers.Authorization = 'Bearer ' + process.env.SLUICE_ADMIN_TOKEN;
  const context = await browser.newContext({ extraHTTPHeaders: headers, viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') out.consoleErrors.push(msg.type() + ': ' + msg.text());
  });
  page.on('pageerror', (err) => out.pageErrors.push(String(err)));
  page.on('requestfailed', (req) => out.failedRequests.push(req.url() + ': ' + (req.failure()?.errorText ?? 'failed')));
  page.on('response', (resp) => {
    if (resp.status() >= 400) out.failedRequests.push(resp.url() + ': HTTP ' + resp.status());
  });

  const resp = await page.goto(url, { waitUntil: 'load' });
  out.status = resp.status();
  out.title = await page.title();
  // The server's rendering of each value, to compare with the script's.
  const rendered = await page.evaluate(() => Array.from(document.querySelectorAll('[data-field]'),
    (el) => [el.dataset.field, el.dataset.value, el.textContent]));
  await page.waitForFunction((n) => Number(document.body.dataset.refreshes) >= n, want, { timeout: 30000 });
  const refreshed = await page.evaluate(() => Array.from(document.querySelectorAll('[data-field]'),
    (el) => [el.dataset.field, el.dataset.value, el.textContent]));
  // Where a value did not change, the script must show it as the server did.
  out.formatMismatches = [];
  rendered.forEach(([field, value, text], i) => {
    const [f2, v2, t2] = refreshed[i] || [];
    if (f2 === field && v2 === value && t2 !== text) out.formatMismatches.push({ field, value, server: text, script: t2 });
  });
  out.comparedFormats = rendered.filter(([, value], i) => refreshed[i] && refreshed[i][1] === value).length;

  // Read everything in one evaluation, so every value is from the same refresh.
  Object.assign(out, await page.evaluate(() => {
    const val = (s) => (s === '' || s === undefined ? null : s === 'true' ? true : s === 'false' ? false
      : s.trim() !== '' && !isNaN(Number(s)) ? Number(s) : s);
    const fields = (root) => {
      const o = {};
      root.querySelectorAll('[data-field]').forEach((el) => {
        const v = val(el.dataset.value);
        if (el.dataset.field in o && JSON.stringify(o[el.dataset.field]) !== JSON.stringify(v)) {
          o[el.dataset.field + ' (differs)'] = v; // the same value shown twice must agree
        }
        o[el.dataset.field] = v;
      });
      return o;
    };
    const streams = {}, sparkPoints = {}, lists = {}, texts = {};
    document.querySelectorAll('[data-stream]').forEach((el) => {
      const name = el.dataset.stream;
      streams[name] = Object.assign(streams[name] || {}, fields(el));
      el.querySelectorAll('[data-spark]').forEach((svg) => {
        (sparkPoints[name] ||= {})[svg.dataset.spark] = Number(svg.dataset.points);
      });
      el.querySelectorAll('[data-list]').forEach((tbody) => {
        (lists[name] ||= {})[tbody.dataset.list] = Array.from(tbody.querySelectorAll('tr:not(.empty)'),
          (tr) => Array.from(tr.querySelectorAll('td'), (td) => val(td.dataset.value)));
      });
      if (el.tagName === 'SECTION') texts[name] = el.innerText;
    });
    return {
      refreshes: Number(document.body.dataset.refreshes),
      stale: document.body.dataset.stale === '1',
      problem: document.getElementById('problem').textContent,
      process: fields(document.querySelector('[data-root]')),
      streams, sparkPoints, lists, texts,
      scripts: document.scripts.length,
    };
  }));
  await page.screenshot({ path: shot, fullPage: true });
  await context.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
