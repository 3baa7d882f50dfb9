// The study page's script (study/ui.py passes it to launch(head=...)).
// - sessions: {study id: rater token} in localStorage, so a reload, a reopened tab or a
//   second tab continues the same session (the server resumes at the unanswered pair);
// - the pair at native size: each image's CSS size is its pixel size / devicePixelRatio,
//   so one image pixel is one device pixel; when the row does not fit, a toggle view;
// - a vote names the pair the page shows and is sent once (double presses are dropped);
// - keyboard shortcuts; the admin login posted to /study-admin/login (never a Gradio event).
(() => {
  if (window.__miscStudy) return;
  const KEY = 'misc-study-sessions';
  const S = window.__miscStudy = {shownAt: {}, pending: null, seen: null};
  const sessions = () => {
    try {
      const d = JSON.parse(localStorage.getItem(KEY) || '{}');
      return d && typeof d === 'object' && !Array.isArray(d) ? d : {};
    } catch (e) { return {}; }
  };
  S.link = () => JSON.stringify({params: Object.fromEntries(new URLSearchParams(location.search)),
                                 sessions: sessions()});
  S.remember = (text) => {
    let d = null;
    try { d = JSON.parse(text || 'null'); } catch (e) { return; }
    if (!d || !d.key || !d.token) return;
    const all = sessions();
    all[d.key] = d.token;
    try { localStorage.setItem(KEY, JSON.stringify(all)); } catch (e) { /* private mode: no resume */ }
    if (d.redirect && !S.redirecting) {
      S.redirecting = true;
      setTimeout(() => { location.href = d.redirect; }, 3000);
    }
  };
  const stage = () => document.querySelector('#study-stage .misc-stage');
  S.trial = (fallback) => { const s = stage(); return s ? s.dataset.trial : (fallback || ''); };
  S.client = () => {
    const s = stage();
    const t0 = s ? S.shownAt[s.dataset.shown] : undefined;
    return JSON.stringify({t: Date.now(), vw: window.innerWidth, vh: window.innerHeight,
                           dpr: window.devicePixelRatio || 1,
                           view_ms: t0 === undefined ? null : Math.round(performance.now() - t0),
                           mode: s && s.classList.contains('misc-toggle') ? 'toggle' : 'side'});
  };

  // ---- native size, and the toggle view when the row does not fit
  const show = (s, side) => {
    s.querySelectorAll('.misc-fig').forEach((f) => f.classList.toggle('misc-on', f.dataset.side === side));
    s.querySelectorAll('.misc-show').forEach((b) => b.classList.toggle('misc-on', b.dataset.show === side));
  };
  const fit = (s) => {
    const dpr = window.devicePixelRatio || 1;
    const imgs = [...s.querySelectorAll('img')];
    let need = 0;
    for (const img of imgs) {
      if (!img.naturalWidth) return;  // not loaded yet: the load listener calls again
      img.style.width = (img.naturalWidth / dpr) + 'px';
      img.style.height = (img.naturalHeight / dpr) + 'px';
      need += img.naturalWidth / dpr + 16;
    }
    const have = s.clientWidth || window.innerWidth;
    const toggle = need > have;
    s.classList.toggle('misc-toggle', toggle);
    s.dataset.fit = toggle ? 'toggle' : 'side';
    const note = s.querySelector('.misc-fit-note');
    if (note) {
      note.hidden = !toggle;
      note.textContent = toggle
        ? `Your window is too narrow to show the ${imgs.length} images side by side at their real size ` +
          `(${Math.ceil(need)} px needed, ${Math.floor(have)} px available). Enlarge the window if you can; ` +
          'otherwise compare them one at a time at full size here: the buttons (or the F key) switch between them. ' +
          'A is the left one, B the right one.'
        : '';
    }
    if (toggle && !s.querySelector('.misc-fig.misc-on')) show(s, 'A');
  };
  document.addEventListener('load', (e) => {
    const s = e.target && e.target.closest && e.target.closest('.misc-stage');
    if (s) fit(s);
  }, true);
  window.addEventListener('resize', () => { const s = stage(); if (s) fit(s); });
  new MutationObserver(() => {
    const s = stage();
    const key = s ? s.dataset.shown : null;
    if (key === S.seen) return;
    S.seen = key;
    if (key) { S.shownAt[key] = performance.now(); fit(s); }
    S.pending = null;
    document.body.classList.remove('misc-pending');
  }).observe(document.documentElement, {childList: true, subtree: true});
  document.addEventListener('click', (e) => {
    const b = e.target && e.target.closest && e.target.closest('.misc-show');
    if (b) show(b.closest('.misc-stage'), b.dataset.show);
  });

  // ---- one vote per shown pair
  const VOTE = ['study-btn-a', 'study-btn-b', 'study-btn-tie'];
  document.addEventListener('click', (e) => {
    const btn = e.target && e.target.closest && e.target.closest('button');
    if (!btn || !VOTE.includes(btn.id)) return;
    const s = stage();
    const key = s ? s.dataset.shown : '';
    if (S.pending === key) { e.preventDefault(); e.stopImmediatePropagation(); return; }
    S.pending = key;
    document.body.classList.add('misc-pending');
    setTimeout(() => {  // the answer never came back (network): let the rater try again
      if (S.pending === key) { S.pending = null; document.body.classList.remove('misc-pending'); }
    }, 15000);
  }, true);

  // ---- keys
  const map = {a: 'study-btn-a', arrowleft: 'study-btn-a', '1': 'study-btn-a',
               b: 'study-btn-b', arrowright: 'study-btn-b', '2': 'study-btn-b',
               t: 'study-btn-tie', arrowdown: 'study-btn-tie', '0': 'study-btn-tie', '=': 'study-btn-tie'};
  document.addEventListener('keydown', (e) => {
    const tag = (e.target && e.target.tagName || '').toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select' || e.ctrlKey || e.metaKey || e.altKey) return;
    const key = (e.key || '').toLowerCase();
    const s = stage();
    if (key === 'f' && s && s.classList.contains('misc-toggle')) {
      const sides = [...s.querySelectorAll('.misc-fig')].map((f) => f.dataset.side);
      const on = s.querySelector('.misc-fig.misc-on');
      show(s, sides[(sides.indexOf(on ? on.dataset.side : 'B') + 1) % sides.length]);
      e.preventDefault();
      return;
    }
    const id = map[key];
    if (!id) return;
    const btn = document.getElementById(id);
    if (btn && btn.offsetParent !== null && !btn.disabled) { e.preventDefault(); btn.click(); }
  });

  // ---- admin login: the password goes to this route only, never into a Gradio event
  S.login = async (password) => {
    try {
      const r = await fetch('study-admin/login', {
        method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/x-www-form-urlencoded'},
        body: new URLSearchParams({password})});
      const d = await r.json().catch(() => ({}));
      return r.ok && d.ok ? '' : '⚠️ ' + (d.error || ('login failed: HTTP ' + r.status));
    } catch (e) { return '⚠️ login failed: ' + e; }
  };
  S.logout = async () => {
    try { await fetch('study-admin/logout', {method: 'POST', credentials: 'same-origin'}); } catch (e) { /* offline */ }
  };
})();
