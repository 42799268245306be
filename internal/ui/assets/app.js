// Engram memory timeline (docs/timeline.md). Every datum on this page comes from the query API
// under /v1, asked with the credential the user types in; the page itself is a static shell
// that knows nothing about any user. The set of preferences shown is the API's answer to
// GET /v1/users/{identifier}/preferences with the controls' as_of, known_at and active_only,
// so the page cannot disagree with the API. Rows are windowed: only those in view are in the
// DOM, so a user with tens of thousands of preferences scrolls as one with three.
'use strict';
(function () {
  const SVG = 'http://www.w3.org/2000/svg';
  const CRED_KEY = 'engram.credential';
  const ROW = 24; // px per row
  const LABEL = 300; // px of the label column
  const PAD_R = 16;
  const OVERSCAN = 4; // rows drawn beyond the visible ones, each side
  const SLIDER_MAX = 10000;
  const LIST_LIMIT = 1000; // conversations and traces asked for (the API's default MAX_LIMIT)
  const BINS = 240; // overview histogram

  const $ = (id) => document.getElementById(id);

  // Load and render figures, read by the benchmark (test/e2e/timeline_bench_test.go).
  const timing = (window.engramTiming = { start: performance.now(), longTasks: 0, longestTaskMs: 0 });
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        timing.longTasks++;
        timing.longestTaskMs = Math.max(timing.longestTaskMs, e.duration);
      }
    }).observe({ type: 'longtask', buffered: true });
  } catch (_) {
    // long tasks are not observable in this browser
  }

  // A refusal of the page's own Content-Security-Policy is a bug of the page: say so loudly
  // (the browser test fails on console errors).
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error('Content-Security-Policy refused ' + e.violatedDirective + ': ' + e.blockedURI);
  });

  const st = {
    identifier: null,
    base: null,
    asOf: '',
    knownAt: '',
    activeOnly: false,
    all: [], // every preference, as known now (active_only=false): the extent and the total
    prefs: [], // the API's answer for the controls
    byID: new Map(),
    conversations: [],
    traces: [],
    rows: [],
    prefRow: new Map(),
    links: [],
    extent: [0, 1],
    view: [0, 1],
    bins: [],
    gen: 0,
    abort: null,
    timer: 0,
    frame: 0,
    detailGen: 0,
    selected: null,
  };

  class APIError extends Error {
    constructor(status, message, field) {
      super(message);
      this.status = status;
      this.field = field;
    }
  }

  // ---- credential -------------------------------------------------------------------------

  function credential() {
    try {
      return sessionStorage.getItem(CRED_KEY) || '';
    } catch (_) {
      return '';
    }
  }

  function setCredential(c) {
    try {
      if (c) sessionStorage.setItem(CRED_KEY, c);
      else sessionStorage.removeItem(CRED_KEY);
    } catch (_) {
      // storage disabled: the credential lives until the page is left
      window.__engramCredential = c;
    }
    showWho();
  }

  function showWho() {
    const c = credential();
    $('forget').hidden = !c;
    if (!c) {
      $('who').textContent = 'no credential';
      return;
    }
    let who = 'API key';
    if (c.includes('.')) {
      who = 'JWT';
      try {
        const seg = c.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
        const claims = JSON.parse(atob(seg + '==='.slice((seg.length + 3) % 4)));
        if (typeof claims.sub === 'string') who = 'JWT of ' + claims.sub;
      } catch (_) {
        // not decodable here; the API will say what it thinks of it
      }
    }
    $('who').textContent = who;
  }

  // ---- the API ----------------------------------------------------------------------------

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    }
    return q.toString();
  }

  async function api(path, params, signal) {
    const qs = query(params);
    const headers = { Accept: 'application/json' };
    const c = credential();
    if (c) headers.Authorization = 'Bearer ' + c;
    let resp;
    try {
      resp = await fetch(path + (qs ? '?' + qs : ''), {
        headers, signal, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
      });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new APIError(0, 'the query service did not answer (' + e.message + ')');
    }
    let body = null;
    try {
      body = await resp.json();
    } catch (_) {
      // not JSON: the status says enough
    }
    if (!resp.ok) {
      throw new APIError(resp.status, (body && body.error) || resp.statusText || 'HTTP ' + resp.status, body && body.field);
    }
    return body;
  }

  // list reads a collection with the largest page the service allows.
  async function list(path, key) {
    try {
      return (await api(path, { limit: LIST_LIMIT }))[key];
    } catch (e) {
      if (e.status === 400 && e.field === 'limit') return (await api(path))[key];
      throw e;
    }
  }

  // ---- time -------------------------------------------------------------------------------

  // ms reads an RFC 3339 instant as fractional Unix milliseconds, keeping the digits below the
  // millisecond that Date.parse drops: the seed scenario's events lie milliseconds apart.
  function ms(s) {
    if (!s) return NaN;
    const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$/.exec(s);
    if (!m) return Date.parse(s);
    return Date.parse(m[1] + m[3]) + (m[2] ? Number('0' + m[2]) * 1000 : 0);
  }
  const iso = (t) => new Date(t).toISOString();
  const STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5,
    9e5, 18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5, 1728e5, 6048e5, 12096e5, 2592e6, 7776e6, 15552e6, 31536e6];

  function ticks(g) {
    const span = st.view[1] - st.view[0];
    const want = Math.max(2, g.pw / 120);
    let step = STEPS.find((s) => span / s <= want);
    if (!step) step = STEPS[STEPS.length - 1] * Math.ceil(span / want / STEPS[STEPS.length - 1]);
    const out = [];
    for (let t = Math.ceil(st.view[0] / step) * step; t <= st.view[1]; t += step) out.push(t);
    return { step, ticks: out };
  }

  function tickLabel(t, step) {
    const s = iso(t);
    if (step < 1e3) return s.slice(11, 23);
    if (step < 6e4) return s.slice(11, 19);
    if (step < 864e5) return s.slice(5, 16).replace('T', ' ');
    return s.slice(0, 10);
  }

  // ---- page states ------------------------------------------------------------------------

  function setState(s) {
    document.body.dataset.state = s;
  }

  function clearData() {
    st.all = [];
    st.prefs = [];
    st.byID = new Map();
    st.conversations = [];
    st.traces = [];
    st.rows = [];
    st.links = [];
    $('timeline').hidden = true;
    $('plot').replaceChildren();
    closeDetail();
    delete document.body.dataset.prefsQuery;
  }

  function fail(e) {
    if (e && e.name === 'AbortError') return;
    clearData();
    $('problem').hidden = true;
    if (e.status === 401) {
      showAuth('The API answered 401: ' + e.message);
      setState('unauthenticated');
      return;
    }
    $('problem-text').textContent = (e.status ? e.status + ' — ' : '') + e.message;
    $('problem-retry').hidden = e.status !== 403;
    $('problem').hidden = false;
    setState(e.status === 403 ? 'forbidden' : 'error');
  }

  function showAuth(reason) {
    $('auth-reason').textContent = reason || '';
    $('auth').hidden = false;
    $('credential').value = '';
    $('credential').focus();
  }

  // ---- start ------------------------------------------------------------------------------

  function start() {
    showWho();
    $('forget').addEventListener('click', () => {
      setCredential('');
      if (st.identifier === null) return;
      clearData();
      $('problem').hidden = true;
      showAuth('Credential forgotten.');
      setState('unauthenticated');
    });
    $('auth').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const c = $('credential').value.trim();
      if (!c) return;
      setCredential(c);
      $('credential').value = '';
      $('auth').hidden = true;
      load();
    });
    $('problem-retry').addEventListener('click', () => {
      setCredential('');
      $('problem').hidden = true;
      showAuth('Enter a credential that may read ' + st.identifier + '.');
      setState('unauthenticated');
    });

    const m = location.pathname.match(/^\/ui\/users\/([^/]+)\/?$/);
    if (!m) {
      $('pick').hidden = false;
      $('pick').addEventListener('submit', (ev) => {
        ev.preventDefault();
        const id = $('pick-identifier').value.trim();
        if (id) location.assign('/ui/users/' + encodeURIComponent(id));
      });
      setState('pick');
      return;
    }
    try {
      st.identifier = decodeURIComponent(m[1]);
    } catch (_) {
      fail(new APIError(400, 'the identifier in the address is not valid percent-encoding'));
      return;
    }
    st.base = '/v1/users/' + encodeURIComponent(st.identifier);
    $('user').textContent = st.identifier;
    document.title = st.identifier + ' · Engram timeline';
    const p = new URLSearchParams(location.search);
    st.asOf = p.get('as_of') || '';
    st.knownAt = p.get('known_at') || '';
    st.activeOnly = p.get('active_only') === 'true';
    $('asof').value = st.asOf;
    $('knownat').value = st.knownAt;
    $('active-only').checked = st.activeOnly;
    wireTimeline();
    load();
  }

  async function load() {
    setState('loading');
    $('problem').hidden = true;
    $('auth').hidden = true;
    const t0 = performance.now();
    try {
      const user = api(st.base).catch((e) => {
        if (e.status === 404) return null;
        throw e;
      });
      const [u, conversations, traces, all] = await Promise.all([
        user,
        list(st.base + '/conversations', 'conversations'),
        list(st.base + '/traces', 'traces'),
        api(st.base + '/preferences', { active_only: 'false' }).then((b) => b.preferences),
      ]);
      timing.apiMs = performance.now() - t0;
      const t1 = performance.now();
      $('user').textContent = st.identifier + (u ? '' : ' (no such user)');
      st.conversations = conversations.slice().sort((a, b) => ms(a.created_at) - ms(b.created_at));
      st.traces = traces.slice().sort((a, b) => ms(a.started_at) - ms(b.started_at));
      st.all = all;
      parseTimes(all);
      computeExtent();
      st.view = st.extent.slice();
      $('timeline').hidden = false;
      if (!st.asOf && !st.knownAt && !st.activeOnly) {
        answer(all, query({ active_only: 'false' }));
      } else {
        await refresh();
      }
      timing.renderMs = performance.now() - t1;
      timing.readyMs = performance.now() - timing.start;
    } catch (e) {
      fail(e);
    }
  }

  function parseTimes(prefs) {
    for (const p of prefs) {
      p.$from = ms(p.valid_from);
      p.$until = ms(p.valid_until);
      p.$rec = ms(p.recorded_at);
      p.$srec = ms(p.superseded_recorded_at);
    }
  }

  function computeExtent() {
    let lo = Infinity;
    let hi = -Infinity;
    const add = (t) => {
      if (!isNaN(t)) {
        if (t < lo) lo = t;
        if (t > hi) hi = t;
      }
    };
    for (const p of st.all) {
      add(p.$from);
      add(p.$until);
      add(p.$rec);
      add(p.$srec);
    }
    for (const c of st.conversations) {
      add(ms(c.created_at));
      add(ms(c.updated_at));
      add(ms(c.recorded_at));
    }
    for (const t of st.traces) {
      add(ms(t.started_at));
      add(ms(t.completed_at));
      add(ms(t.recorded_at));
    }
    if (!isFinite(lo)) {
      hi = Date.now();
      lo = hi - 36e5;
    }
    if (hi - lo < 10) {
      // one instant (or a few milliseconds): show 10 ms around it
      const mid = (lo + hi) / 2;
      lo = mid - 5;
      hi = mid + 5;
    }
    const pad = (hi - lo) * 0.04;
    st.extent = [lo - pad, hi + pad];
    // The overview: how many preferences start in each bin of the whole extent.
    const bins = new Array(BINS).fill(0);
    const span = st.extent[1] - st.extent[0];
    for (const p of st.all) {
      const t = isNaN(p.$from) ? st.extent[0] : p.$from;
      bins[Math.min(BINS - 1, Math.max(0, Math.floor(((t - st.extent[0]) / span) * BINS)))]++;
    }
    st.bins = bins;
  }

  // answer shows the API's answer to the preferences read with query string qs.
  function answer(prefs, qs, problem) {
    st.prefs = prefs;
    if (prefs !== st.all) parseTimes(prefs);
    st.byID = new Map(prefs.map((p) => [p.id, p]));
    buildRows();
    showRequest(qs, problem ? null : prefs.length, problem);
    syncSliders();
    render();
    document.body.dataset.prefsQuery = qs;
    setState(problem ? 'invalid' : 'ready');
  }

  function showRequest(qs, count, problem) {
    $('request-text').textContent = 'GET ' + st.base + '/preferences' + (qs ? '?' + qs : '');
    if (problem) $('answer-count').textContent = '→ ' + problem.status + ': ' + problem.message;
    else if (count === null) $('answer-count').textContent = '→ …';
    else $('answer-count').textContent = '→ ' + count + ' of ' + st.all.length + ' preferences';
  }

  // ---- controls ---------------------------------------------------------------------------

  const controls = [
    { key: 'asOf', text: 'asof', range: 'asof-range', clear: 'asof-clear', box: 'asof-control' },
    { key: 'knownAt', text: 'knownat', range: 'knownat-range', clear: 'knownat-clear', box: 'knownat-control' },
  ];

  function sliderTime(v) {
    return st.view[0] + (Number(v) / SLIDER_MAX) * (st.view[1] - st.view[0]);
  }

  function syncSliders() {
    for (const c of controls) {
      const t = ms(st[c.key]);
      $(c.box).classList.toggle('unset', !st[c.key]);
      if (!st[c.key] || isNaN(t)) {
        $(c.range).value = SLIDER_MAX;
        continue;
      }
      const f = (t - st.view[0]) / (st.view[1] - st.view[0]);
      $(c.range).value = Math.round(Math.min(1, Math.max(0, f)) * SLIDER_MAX);
    }
  }

  function schedule(delay) {
    clearTimeout(st.timer);
    setState('loading');
    st.timer = setTimeout(refresh, delay);
  }

  function syncURL() {
    const qs = query({ as_of: st.asOf, known_at: st.knownAt, active_only: st.activeOnly ? 'true' : '' });
    history.replaceState(null, '', location.pathname + (qs ? '?' + qs : ''));
  }

  async function refresh() {
    const gen = ++st.gen;
    if (st.abort) st.abort.abort();
    const ctl = (st.abort = new AbortController());
    const params = { active_only: String(st.activeOnly), as_of: st.asOf, known_at: st.knownAt };
    const qs = query(params);
    syncURL();
    setState('loading');
    showRequest(qs, null);
    try {
      const body = await api(st.base + '/preferences', params, ctl.signal);
      if (gen !== st.gen) return;
      answer(body.preferences, qs);
    } catch (e) {
      if (gen !== st.gen || e.name === 'AbortError') return;
      if (e.status === 400) {
        answer([], qs, e); // the API refused the parameters: it answered no preference
        return;
      }
      fail(e);
    }
  }

  function wireTimeline() {
    for (const c of controls) {
      const text = $(c.text);
      const commit = () => {
        const v = text.value.trim();
        if (v === st[c.key] && document.body.dataset.state !== 'invalid') return;
        st[c.key] = v;
        syncSliders();
        scheduleRender();
        schedule(0);
      };
      $(c.range).addEventListener('input', () => {
        st[c.key] = iso(sliderTime($(c.range).value));
        text.value = st[c.key];
        $(c.box).classList.remove('unset');
        scheduleRender();
        schedule(150);
      });
      text.addEventListener('change', commit);
      text.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') commit();
      });
      $(c.clear).addEventListener('click', () => {
        text.value = '';
        commit();
      });
    }
    $('active-only').addEventListener('change', () => {
      st.activeOnly = $('active-only').checked;
      schedule(0);
    });
    $('zoom-in').addEventListener('click', () => zoom(0.5));
    $('zoom-out').addEventListener('click', () => zoom(2));
    $('pan-left').addEventListener('click', () => pan(-0.4));
    $('pan-right').addEventListener('click', () => pan(0.4));
    $('zoom-fit').addEventListener('click', () => {
      st.view = st.extent.slice();
      syncSliders();
      scheduleRender();
    });
    $('scroller').addEventListener('scroll', scheduleRender, { passive: true });
    window.addEventListener('resize', scheduleRender);
    $('plot').addEventListener('wheel', (ev) => {
      if (!ev.ctrlKey && !ev.metaKey) return;
      ev.preventDefault();
      const g = geometry();
      const x = ev.clientX - $('plot').getBoundingClientRect().left;
      const t = st.view[0] + ((x - g.x0) / g.pw) * (st.view[1] - st.view[0]);
      zoom(ev.deltaY > 0 ? 1.25 : 0.8, t);
    }, { passive: false });
    $('overview').addEventListener('click', (ev) => {
      const r = $('overview').getBoundingClientRect();
      const t = st.extent[0] + ((ev.clientX - r.left) / r.width) * (st.extent[1] - st.extent[0]);
      const half = (st.view[1] - st.view[0]) / 2;
      st.view = [t - half, t + half];
      syncSliders();
      scheduleRender();
    });
    $('plot').addEventListener('click', onPlotClick);
    $('detail-close').addEventListener('click', closeDetail);
    // The plot's width follows the page's (and the event panel's opening and closing).
    if (window.ResizeObserver) new ResizeObserver(scheduleRender).observe($('scroller'));
  }

  function zoom(factor, center) {
    const [a, b] = st.view;
    const c = center === undefined ? (a + b) / 2 : center;
    const span = (b - a) * factor;
    if (span < 1) return;
    st.view = [c - (c - a) * factor, c - (c - a) * factor + span];
    syncSliders();
    scheduleRender();
  }

  function pan(frac) {
    const d = (st.view[1] - st.view[0]) * frac;
    st.view = [st.view[0] + d, st.view[1] + d];
    syncSliders();
    scheduleRender();
  }

  // ---- rows -------------------------------------------------------------------------------

  function buildRows() {
    const rows = [];
    if (st.conversations.length) {
      rows.push({ type: 'section', label: 'Conversations (' + st.conversations.length + ')' });
      for (const c of st.conversations) rows.push({ type: 'conversation', item: c });
    }
    if (st.traces.length) {
      rows.push({ type: 'section', label: 'Traces (' + st.traces.length + ')' });
      for (const t of st.traces) rows.push({ type: 'trace', item: t });
    }
    rows.push({ type: 'section', label: 'Preferences: ' + st.prefs.length + ' of ' + st.all.length + ', as the API answers' });
    st.prefRow = new Map();
    for (const p of st.prefs) {
      st.prefRow.set(p.id, rows.length);
      rows.push({ type: 'preference', item: p });
    }
    st.links = [];
    for (const p of st.prefs) {
      if (p.superseded_by && st.prefRow.has(p.superseded_by)) {
        st.links.push({ from: st.prefRow.get(p.id), to: st.prefRow.get(p.superseded_by), old: p, repl: st.byID.get(p.superseded_by) });
      }
    }
    st.rows = rows;
    $('spacer').style.height = rows.length * ROW + 'px';
    // As tall as the rows, up to 70% of the window; beyond that the rows scroll (windowed).
    $('scroller').style.height = Math.max(5 * ROW, Math.min(rows.length * ROW, Math.round(window.innerHeight * 0.7))) + 'px';
  }

  // ---- drawing ----------------------------------------------------------------------------

  function node(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) {
      if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    }
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function geometry() {
    const W = $('scroller').clientWidth;
    return { W, x0: LABEL, pw: Math.max(50, W - LABEL - PAD_R) };
  }

  function xOf(t, g) {
    return g.x0 + ((t - st.view[0]) / (st.view[1] - st.view[0])) * g.pw;
  }

  const inView = (x, g) => x >= g.x0 && x <= g.x0 + g.pw;

  function scheduleRender() {
    if (!st.frame) {
      st.frame = requestAnimationFrame(() => {
        st.frame = 0;
        render();
      });
    }
  }

  function defs() {
    const d = node('defs');
    const grad = node('linearGradient', { id: 'open-fade', x1: 0, x2: 1, y1: 0, y2: 0 });
    grad.append(node('stop', { offset: '0', 'stop-color': '#4f7cd6' }), node('stop', { offset: '0.8', 'stop-color': '#4f7cd6', 'stop-opacity': '0.55' }),
      node('stop', { offset: '1', 'stop-color': '#4f7cd6', 'stop-opacity': '0.08' }));
    const arrow = node('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
    arrow.append(node('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#7a4fd6' }));
    d.append(grad, arrow);
    return d;
  }

  function render() {
    const t0 = performance.now();
    const sc = $('scroller');
    const plot = $('plot');
    const g = geometry();
    const top = sc.scrollTop;
    const h = sc.clientHeight;
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(st.rows.length, Math.ceil((top + h) / ROW) + OVERSCAN);
    const height = Math.max(0, (last - first) * ROW);
    plot.setAttribute('width', g.W);
    plot.setAttribute('height', height);
    plot.style.top = first * ROW + 'px';
    const ds = plot.dataset;
    ds.v0 = st.view[0];
    ds.v1 = st.view[1];
    ds.x0 = g.x0;
    ds.plotWidth = g.pw;
    ds.rows = st.rows.length;
    const frag = document.createDocumentFragment();
    frag.append(defs());
    const tk = ticks(g);
    for (const t of tk.ticks) {
      const x = xOf(t, g);
      frag.append(node('line', { class: 'grid', x1: x, x2: x, y1: 0, y2: height }));
    }
    for (let i = first; i < last; i++) frag.append(drawRow(st.rows[i], i, (i - first) * ROW, g));
    for (const l of st.links) {
      if (Math.max(l.from, l.to) < first || Math.min(l.from, l.to) >= last) continue;
      const link = drawLink(l, first, g);
      if (link) frag.append(link);
    }
    for (const [key, cls] of [['asOf', 'asof'], ['knownAt', 'knownat']]) {
      const t = ms(st[key]);
      if (!st[key] || isNaN(t)) continue;
      const x = xOf(t, g);
      if (inView(x, g)) frag.append(node('line', { class: cls, x1: x, x2: x, y1: 0, y2: height }));
    }
    plot.replaceChildren(frag);
    drawAxis(g, tk);
    drawOverview();
    timing.lastRenderMs = performance.now() - t0;
    timing.renderedRows = last - first;
  }

  function drawAxis(g, tk) {
    const axis = $('axis');
    axis.setAttribute('width', g.W);
    const frag = document.createDocumentFragment();
    frag.append(node('text', { x: 8, y: 19 }, 'UTC ' + iso(st.view[0]).slice(0, 10)));
    for (const t of tk.ticks) {
      const x = xOf(t, g);
      frag.append(node('line', { x1: x, x2: x, y1: 22, y2: 30 }));
      frag.append(node('text', { x: x + 3, y: 19 }, tickLabel(t, tk.step)));
    }
    axis.replaceChildren(frag);
  }

  function drawOverview() {
    const ov = $('overview');
    const W = ov.clientWidth || 1;
    const H = 36;
    const frag = document.createDocumentFragment();
    const top = Math.max(1, ...st.bins);
    const bw = W / BINS;
    st.bins.forEach((n, i) => {
      if (!n) return;
      const bh = Math.max(2, (Math.sqrt(n) / Math.sqrt(top)) * (H - 4));
      frag.append(node('rect', { class: 'bin', x: i * bw, y: H - bh, width: Math.max(1, bw - 0.5), height: bh }));
    });
    const span = st.extent[1] - st.extent[0];
    const a = ((st.view[0] - st.extent[0]) / span) * W;
    const b = ((st.view[1] - st.extent[0]) / span) * W;
    frag.append(node('rect', { class: 'window', x: Math.max(0, a), y: 0.5, width: Math.max(2, Math.min(W, b) - Math.max(0, a)), height: H - 1 }));
    ov.replaceChildren(frag);
  }

  function label(el, text, full) {
    const max = Math.floor((LABEL - 20) / 6.6);
    const t = node('text', { class: 'label', x: 8, y: ROW / 2 + 4 }, text.length > max ? text.slice(0, max - 1) + '…' : text);
    t.append(node('title', {}, full || text));
    el.append(t);
  }

  // bar draws [from, until) on the row; until Infinity is open. It returns the rect or null.
  function bar(el, from, until, g, attrs) {
    let x1 = isFinite(from) ? xOf(from, g) : g.x0;
    let x2 = isFinite(until) ? xOf(until, g) : g.x0 + g.pw;
    if (x2 < g.x0 || x1 > g.x0 + g.pw) return null;
    x1 = Math.max(x1, g.x0);
    x2 = Math.min(x2, g.x0 + g.pw);
    const r = node('rect', Object.assign({ x: x1, y: 5, width: Math.max(x2 - x1, 2), height: ROW - 10, rx: 2 }, attrs));
    el.append(r);
    return r;
  }

  function diamond(el, t, g, attrs) {
    const x = xOf(t, g);
    if (isNaN(t) || !inView(x, g)) return;
    const y = ROW - 6;
    el.append(node('path', Object.assign({ d: `M${x},${y - 5} L${x + 5},${y} L${x},${y + 5} L${x - 5},${y} Z` }, attrs)));
  }

  function square(el, t, g, attrs) {
    const x = xOf(t, g);
    if (isNaN(t) || !inView(x, g)) return;
    el.append(node('rect', Object.assign({ x: x - 4, y: ROW - 10, width: 8, height: 8 }, attrs)));
  }

  function laterThanKnownAt(recordedAt) {
    const k = ms(st.knownAt);
    return st.knownAt && !isNaN(k) && ms(recordedAt) > k;
  }

  function drawRow(row, i, y, g) {
    const el = node('g', { class: 'row ' + row.type, transform: `translate(0,${y})`, 'data-row': i });
    if (row.type === 'section') {
      el.classList.add('section');
      el.append(node('rect', { x: 0, y: 0, width: g.W, height: ROW }));
      el.append(node('text', { x: 8, y: ROW / 2 + 4 }, row.label));
      return el;
    }
    if (i % 2) el.append(node('rect', { class: 'stripe', x: 0, y: 0, width: g.W, height: ROW }));
    const it = row.item;
    el.dataset.kind = row.type;
    el.dataset.id = it.id;
    if (st.selected && st.selected.id === it.id) el.classList.add('selected');
    if (row.type === 'preference') {
      const applies = (it.applies_to || []).map((e) => e.name + (e.type ? '/' + e.type : '')).join(', ');
      label(el, it.category + ': ' + it.preference, it.category + ': ' + it.preference + (applies ? ' — applies to ' + applies : '') +
        '\nvalid ' + (it.valid_from || '…') + ' → ' + (it.valid_until || 'open') + '\nrecorded ' + (it.recorded_at || '?') +
        (it.superseded_by ? '\nsuperseded by ' + it.superseded_by + ', recorded ' + (it.superseded_recorded_at || '?') : ''));
      const open = isNaN(it.$until);
      bar(el, it.$from, open ? Infinity : it.$until, g, {
        class: open ? 'bar open' : 'bar', 'data-click': 'preference',
        'data-valid-from': it.valid_from || '', 'data-valid-until': it.valid_until || '',
      });
      diamond(el, it.$rec, g, { class: 'mark recorded', 'data-click': 'preference', 'data-at': it.recorded_at || '' });
      if (it.superseded_by && !isNaN(it.$srec)) {
        square(el, it.$srec, g, { class: 'mark superseded', 'data-click': 'supersede', 'data-at': it.superseded_recorded_at });
      }
    } else if (row.type === 'conversation') {
      label(el, 'session ' + it.session_id + (it.title ? ' — ' + it.title : ''));
      if (laterThanKnownAt(it.recorded_at)) el.classList.add('later');
      const from = ms(it.created_at);
      const until = Math.max(ms(it.updated_at) || from, from);
      bar(el, from, until, g, { class: 'bar', 'data-click': 'conversation' });
      diamond(el, ms(it.recorded_at), g, { class: 'mark recorded', 'data-click': 'conversation' });
    } else if (row.type === 'trace') {
      label(el, it.task + (it.outcome ? ' — ' + it.outcome : ''), it.task + '\n' + (it.outcome || '') + '\n' + it.step_count + ' steps, session ' + it.session_id);
      if (it.success === false) el.classList.add('failed');
      if (laterThanKnownAt(it.recorded_at)) el.classList.add('later');
      const from = ms(it.started_at);
      const until = it.completed_at ? ms(it.completed_at) : Infinity;
      bar(el, from, until, g, { class: it.completed_at ? 'bar' : 'bar open', 'data-click': 'trace' });
      diamond(el, ms(it.recorded_at), g, { class: 'mark recorded', 'data-click': 'trace' });
    }
    return el;
  }

  // drawLink draws old → replacement: down (or up) from the end of the old bar to the
  // replacement's row, then along it to where the replacement becomes valid when that is later.
  function drawLink(l, first, g) {
    const x1 = xOf(l.old.$until, g);
    if (isNaN(l.old.$until) || !inView(x1, g)) return null;
    const y1 = (l.from - first) * ROW + ROW / 2;
    const y2 = (l.to - first) * ROW + (l.to > l.from ? 5 : ROW - 5);
    let d = `M${x1},${y1} V${y2}`;
    const from = l.repl ? l.repl.$from : NaN;
    if (!isNaN(from) && from > l.old.$until) {
      d = `M${x1},${y1} V${(l.to - first) * ROW + ROW / 2} H${Math.min(xOf(from, g), g.x0 + g.pw)}`;
    }
    const el = node('g', { class: 'link', 'data-old': l.old.id, 'data-new': l.old.superseded_by });
    el.append(node('path', { class: 'line', d }));
    el.append(node('path', { class: 'hit', d, 'data-click': 'supersede' }));
    el.append(node('title', {}, 'superseded by ' + l.old.superseded_by + ' at ' + l.old.valid_until + ' (recorded ' + (l.old.superseded_recorded_at || '?') + ')'));
    return el;
  }

  // ---- the event panel --------------------------------------------------------------------

  function onPlotClick(ev) {
    const t = ev.target.closest('[data-click]');
    if (!t) return;
    const kind = t.getAttribute('data-click');
    let item;
    if (kind === 'supersede') {
      const link = t.closest('g.link');
      item = st.byID.get(link ? link.dataset.old : t.closest('g.row').dataset.id);
    } else {
      const id = t.closest('g.row').dataset.id;
      const pool = kind === 'preference' ? st.prefs : kind === 'conversation' ? st.conversations : st.traces;
      item = pool.find((x) => x.id === id);
    }
    if (item) showEvent(kind, item);
  }

  function closeDetail() {
    $('detail').hidden = true;
    document.querySelector('main').classList.remove('with-detail');
    st.selected = null;
    st.detailGen++;
    scheduleRender();
  }

  const detailFields = ['ev-id', 'ev-kind', 'ev-seq', 'ev-stored', 'ev-time', 'ev-actor', 'ev-source', 'ev-correlation',
    'ev-causation', 'ev-vouch', 'ev-fate', 'ev-data'];

  function itemJSON(item) {
    return JSON.stringify(item, (k, v) => (k.startsWith('$') ? undefined : v), 2);
  }

  async function showEvent(kind, item) {
    const d = $('detail');
    const gen = ++st.detailGen;
    st.selected = item;
    scheduleRender();
    d.hidden = false;
    document.querySelector('main').classList.add('with-detail');
    d.dataset.state = 'loading';
    d.dataset.kind = kind;
    delete d.dataset.eventId;
    delete d.dataset.sequence;
    for (const f of detailFields) $(f).textContent = '';
    $('detail-problem').hidden = true;
    const titles = {
      preference: 'Preference recorded: ' + item.preference,
      supersede: 'Supersede recorded: ' + item.preference + ' → ' + item.superseded_by,
      conversation: 'Conversation started: session ' + item.session_id,
      trace: 'Trace started: ' + item.task,
    };
    $('detail-title').textContent = titles[kind];
    $('item-data').textContent = itemJSON(item);
    try {
      const ev = await findEvent(kind, item);
      if (gen !== st.detailGen) return;
      const none = '—';
      $('ev-id').textContent = ev.event_id;
      $('ev-kind').textContent = ev.kind + (ev.type ? ' (' + ev.type + ')' : '');
      $('ev-seq').textContent = String(ev.sequence);
      $('ev-stored').textContent = ev.stored_at;
      $('ev-time').textContent = ev.time || none;
      $('ev-actor').textContent = ev.actor || none;
      $('ev-source').textContent = ev.source || none;
      $('ev-correlation').textContent = ev.correlation_id || none;
      $('ev-causation').textContent = ev.causation_id || none;
      $('ev-vouch').textContent = ev.vouch === 'claimed'
        ? 'claimed: no ingestor vouch, so actor and source are only what the publisher said'
        : 'carries the ingestor\'s vouch; not verified by this page (memctl audit --signing-key-file verifies it)';
      $('ev-data').textContent = JSON.stringify(ev.data, null, 2);
      if (ev.error) {
        $('detail-problem').textContent = 'This stored message does not decode as an event: ' + ev.error;
        $('detail-problem').hidden = false;
      }
      d.dataset.eventId = ev.event_id;
      d.dataset.sequence = String(ev.sequence);
      d.dataset.state = 'event';
      let fate;
      try {
        fate = await api(st.base + '/events/' + encodeURIComponent(ev.event_id), { sequence: ev.sequence });
      } catch (e) {
        fate = { status: 'unknown', error: e.message };
      }
      if (gen !== st.detailGen) return;
      $('ev-fate').textContent = fate.status + (fate.reason ? ': ' + fate.reason : '') + (fate.error ? ' — ' + fate.error : '');
      d.dataset.state = 'ready';
    } catch (e) {
      if (gen !== st.detailGen) return;
      if (e.status === 401) {
        fail(e);
        return;
      }
      $('detail-problem').textContent = (e.status ? e.status + ' — ' : '') + e.message;
      $('detail-problem').hidden = false;
      d.dataset.state = 'error';
    }
  }

  // findEvent reads the event that recorded the item from the log: by its stored sequence when
  // the API gives one (preferences), else by its recorded time, which is the stored time of the
  // event that created it, and the id in the event's data.
  async function findEvent(kind, item) {
    switch (kind) {
      case 'preference':
        return logEvent(item.recorded_seq, item.recorded_at, 'preference_added', (d) => d.preference_id === item.id);
      case 'supersede':
        return logEvent(item.superseded_seq, item.superseded_recorded_at, 'preference_superseded', (d) => d.old_id === item.id);
      case 'conversation':
        return logEvent(null, item.recorded_at, 'message_added', (d) => d.conversation_id === item.id);
      case 'trace':
        return logEvent(null, item.recorded_at, 'trace_started', (d) => d.trace_id === item.id);
    }
    throw new Error('nothing to look up for ' + kind);
  }

  async function logEvent(seq, at, kind, match) {
    if (seq) {
      const ev = await api(st.base + '/log/' + seq);
      if (ev.kind !== kind || !ev.data || !match(ev.data)) {
        throw new Error('the log holds a ' + ev.kind + ' event at sequence ' + seq + ' that is not this item\'s');
      }
      return ev;
    }
    if (!at) throw new Error('the API gives no recorded time for this item, so its event cannot be looked up');
    let after;
    for (let page = 0; page < 20; page++) {
      const r = await api(st.base + '/log', { kind, stored_from: at, stored_until: at, after, limit: 100 });
      const ev = r.events.find((e) => e.data && match(e.data));
      if (ev) return ev;
      if (!r.next_after) break;
      after = r.next_after;
    }
    throw new Error('the log holds no ' + kind + ' event of this item stored at ' + at);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
