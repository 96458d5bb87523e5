/* heliod dashboard: reads /dashboard/data.json every 10 s and draws each plant.
   Numbers stay decimal strings from the server to the screen: Intl.NumberFormat formats
   strings exactly, so no token amount ever passes through a binary float. Only the charts
   plot floats (they are pictures, not figures). */
(function () {
  "use strict";

  var REFRESH_MS = 10000;
  var TOKEN_KEY = "heliod.token";
  var LANG_KEY = "heliod.lang";
  var SHOWN_BACKERS = 50; // more rows than this: the search box narrows them

  var TEXT = window.heliodText; // i18n.js: labels in English and French

  var lang = pickLanguage();
  var last = null; // the last data.json body drawn
  var views = {}; // plant id -> {el, power, energy, search}
  window.heliodCharts = views; // read by the browser tests

  function pickLanguage() {
    var saved = null;
    try { saved = localStorage.getItem(LANG_KEY); } catch (e) { saved = null; }
    if (saved === "fr" || saved === "en") return saved;
    return (navigator.language || "en").toLowerCase().indexOf("fr") === 0 ? "fr" : "en";
  }

  function t(key, vars) {
    var s = TEXT[lang][key] || TEXT.en[key] || key;
    Object.keys(vars || {}).forEach(function (k) { s = s.replace("{" + k + "}", vars[k]); });
    return s;
  }

  function localeOf(plant) {
    if (plant && plant.locale) return plant.locale;
    var nav = navigator.language || "";
    if (nav.toLowerCase().indexOf(lang) === 0) return nav;
    return lang === "fr" ? "fr-FR" : "en-GB";
  }

  // Exact decimal shift of a decimal string ("1234.5" , 3) -> "1.2345".
  function shift(text, places) {
    var neg = text.charAt(0) === "-";
    var s = neg ? text.slice(1) : text;
    var parts = s.split(".");
    var digits = parts[0] + (parts[1] || "");
    var point = parts[0].length - places;
    while (point <= 0) { digits = "0" + digits; point += 1; }
    var out = digits.slice(0, point) + "." + digits.slice(point);
    return (neg ? "-" : "") + out.replace(/^0+(?=\d)/, "");
  }

  function num(plant, text, maxDigits, minDigits) {
    return new Intl.NumberFormat(localeOf(plant), {
      maximumFractionDigits: maxDigits,
      minimumFractionDigits: minDigits || 0
    }).format(text);
  }

  function dateTime(plant, iso) {
    return new Intl.DateTimeFormat(localeOf(plant), {
      timeZone: plant.timezone, dateStyle: "medium", timeStyle: "medium"
    }).format(new Date(iso));
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function setValue(node, raw, shown) {
    node.setAttribute("data-value", raw);
    node.textContent = shown;
  }

  function applyStaticText() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach(function (n) {
      n.textContent = t(n.getAttribute("data-i18n"));
    });
    document.getElementById("token").placeholder = t("token_prompt");
    document.getElementById("lang").textContent = lang === "fr" ? "EN" : "FR";
  }

  function card(parent, cls, key) {
    var c = el("section", "card " + cls);
    c.appendChild(el("h3", null, t(key)));
    parent.appendChild(c);
    return c;
  }

  function stat(parent, key, field) {
    var box = el("div", "stat");
    box.appendChild(el("div", "label", t(key)));
    var v = el("div", "value");
    v.setAttribute("data-field", field);
    box.appendChild(v);
    parent.appendChild(box);
    return v;
  }

  function chartSize(node) {
    var w = Math.max(260, node.clientWidth - 8);
    return { width: w, height: Math.round(Math.min(280, Math.max(180, w * 0.45))) };
  }

  function tzDate(plant) {
    return function (ts) { return uPlot.tzDate(new Date(ts * 1e3), plant.timezone); };
  }

  function makePower(node, plant) {
    var size = chartSize(node);
    var hourFmt = new Intl.DateTimeFormat(localeOf(plant), {
      timeZone: plant.timezone, hour: "2-digit", minute: "2-digit"
    });
    return new uPlot({
      width: size.width, height: size.height, tzDate: tzDate(plant),
      legend: { show: false },
      scales: { x: { time: true, range: function () {
        return [Date.parse(plant.power_today.from) / 1e3, Date.parse(plant.power_today.to) / 1e3];
      } }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [{ values: function (u, splits) {
        return splits.map(function (s) { return hourFmt.format(new Date(s * 1e3)); });
      } }, { label: t("power"), size: 60 }],
      series: [{}, { label: t("power"), stroke: "#d97706", fill: "rgba(245,158,11,0.25)", width: 2 }]
    }, powerData(plant), node);
  }

  function makeEnergy(node, plant) {
    var size = chartSize(node);
    var dayFmt = new Intl.DateTimeFormat(localeOf(plant), {
      timeZone: plant.timezone, day: "numeric", month: "short"
    });
    return new uPlot({
      width: size.width, height: size.height, tzDate: tzDate(plant),
      legend: { show: false },
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [{ values: function (u, splits) {
        return splits.map(function (s) { return dayFmt.format(new Date(s * 1e3)); });
      } }, { label: t("energy"), size: 60 }],
      series: [{}, { label: t("energy"), fill: "#0f766e", stroke: "#0f766e",
        points: { show: false }, paths: uPlot.paths.bars({ size: [0.7, 40], align: 0 }) }]
    }, energyData(plant), node);
  }

  function powerData(plant) {
    var pts = plant.power_today.points;
    return [pts.map(function (p) { return Date.parse(p.t) / 1e3; }),
      pts.map(function (p) { return Number(p.power_w) / 1000; })];
  }

  function energyData(plant) {
    var days = plant.energy_days;
    return [days.map(function (d) { return Date.parse(d.t) / 1e3 + 43200; }),
      days.map(function (d) { return Number(d.energy_wh) / 1000; })];
  }

  function build(plant) {
    var root = el("article", "plant");
    root.setAttribute("data-plant", plant.id);
    var head = el("header", "plant-head");
    head.appendChild(el("h2", "plant-name", plant.name));
    var cap = el("span", "muted");
    cap.setAttribute("data-field", "capacity");
    head.appendChild(cap);
    root.appendChild(head);
    var grid = el("div", "grid");
    root.appendChild(grid);
    var stats = el("section", "card stats");
    grid.appendChild(stats);
    var v = {
      el: root,
      lifetime: stat(stats, "lifetime", "energy_mwh"),
      completed: stat(stats, "completed", "mwh_completed"),
      minted: stat(stats, "minted", "minted"),
      undistributed: stat(stats, "undistributed", "undistributed")
    };
    var next = el("div", "stat wide");
    next.appendChild(el("div", "label", t("next")));
    var bar = el("div", "bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    v.fill = el("div", "fill");
    bar.appendChild(v.fill);
    next.appendChild(bar);
    v.progress = el("div", "value small");
    v.progress.setAttribute("data-field", "next_mwh_progress");
    next.appendChild(v.progress);
    v.remaining = el("div", "muted");
    next.appendChild(v.remaining);
    stats.appendChild(next);
    v.bar = bar;
    v.cap = cap;
    var pc = card(grid, "chart", "power_today");
    v.powerNode = el("div", "plot power");
    pc.appendChild(v.powerNode);
    v.powerEmpty = el("p", "muted", t("no_data"));
    pc.appendChild(v.powerEmpty);
    var ec = card(grid, "chart", "energy_days");
    v.energyNode = el("div", "plot energy");
    ec.appendChild(v.energyNode);
    var dc = card(grid, "devices", "devices");
    v.devices = el("ul", "device-list");
    dc.appendChild(v.devices);
    var bc = card(grid, "backers", "backers");
    v.search = el("input", "search");
    v.search.type = "search";
    v.search.placeholder = t("search");
    v.search.setAttribute("aria-label", t("search"));
    v.search.addEventListener("input", function () { renderBalances(v, v.plant); });
    bc.appendChild(v.search);
    var scroller = el("div", "scroller");
    bc.appendChild(scroller);
    var table = el("table", "balances");
    var thead = el("thead");
    var hr = el("tr");
    hr.appendChild(el("th", null, t("backer")));
    hr.appendChild(el("th", "num", t("balance")));
    thead.appendChild(hr);
    table.appendChild(thead);
    v.tbody = el("tbody");
    table.appendChild(v.tbody);
    scroller.appendChild(table);
    v.more = el("p", "muted");
    bc.appendChild(v.more);
    document.getElementById("plants").appendChild(root);
    v.power = makePower(v.powerNode, plant);
    v.energy = makeEnergy(v.energyNode, plant);
    return v;
  }

  function renderBalances(v, plant) {
    var q = v.search.value.trim().toLowerCase();
    var rows = plant.balances.filter(function (b) { return b.backer.toLowerCase().indexOf(q) >= 0; });
    v.tbody.textContent = "";
    rows.slice(0, SHOWN_BACKERS).forEach(function (b) {
      var tr = el("tr");
      tr.setAttribute("data-backer", b.backer);
      tr.appendChild(el("td", null, b.backer));
      var td = el("td", "num");
      setValue(td, b.amount, num(plant, b.amount, plant.minted.decimals) + " " + plant.minted.symbol);
      tr.appendChild(td);
      v.tbody.appendChild(tr);
    });
    var hidden = rows.length - Math.min(rows.length, SHOWN_BACKERS);
    v.more.textContent = plant.balances.length === 0 ? t("none") : hidden > 0 ? t("more", { n: hidden }) : "";
  }

  function render(v, plant) {
    v.plant = plant;
    var sym = plant.minted.symbol;
    v.cap.textContent = t("capacity") + " " + num(plant, plant.capacity_kw, 1) + " kW";
    setValue(v.lifetime, plant.energy_wh, num(plant, shift(plant.energy_wh, 6), 3) + " MWh");
    setValue(v.completed, String(plant.mwh_completed), num(plant, String(plant.mwh_completed), 0));
    setValue(v.minted, plant.minted.amount, num(plant, plant.minted.amount, plant.minted.decimals) + " " + sym);
    setValue(v.undistributed, plant.undistributed.amount,
      num(plant, plant.undistributed.amount, plant.minted.decimals) + " " + sym);
    var pct = shift(plant.next_mwh_progress, -2);
    setValue(v.progress, plant.next_mwh_progress, num(plant, pct, 1, 1) + " %");
    v.fill.style.width = Math.min(100, Math.max(0, Number(pct))) + "%";
    v.bar.setAttribute("aria-valuenow", pct);
    // What remains of this MWh, in kWh: (1 − progress) × 1000 (a display figure only).
    var left = 1000 - Number(shift(plant.next_mwh_progress, -3));
    v.remaining.textContent = t("remaining", { kwh: num(plant, left.toFixed(3), 1) });
    v.power.setData(powerData(plant));
    v.powerEmpty.hidden = plant.power_today.points.length > 0;
    v.energy.setData(energyData(plant));
    renderBalances(v, plant);
    v.devices.textContent = "";
    Object.keys(plant.devices).sort().forEach(function (id) {
      var d = plant.devices[id];
      var li = el("li", "device state-" + d.state);
      li.setAttribute("data-device", id);
      li.setAttribute("data-state", d.state);
      li.appendChild(el("span", "dot"));
      li.appendChild(el("strong", null, id));
      li.appendChild(el("span", "badge", t("state_" + d.state)));
      li.appendChild(el("span", "muted", t("last_reading") +
        (d.last_reading_at ? dateTime(plant, d.last_reading_at) : t("never"))));
      v.devices.appendChild(li);
    });
  }

  function draw(body) {
    last = body;
    var seen = {};
    body.plants.forEach(function (plant) {
      seen[plant.id] = true;
      if (!views[plant.id]) views[plant.id] = build(plant);
      render(views[plant.id], plant);
    });
    Object.keys(views).forEach(function (id) {
      if (!seen[id]) { views[id].el.remove(); delete views[id]; }
    });
    var first = body.plants[0];
    var when = first ? dateTime(first, body.generated_at) : body.generated_at;
    var up = document.getElementById("updated");
    up.setAttribute("data-value", body.generated_at);
    up.textContent = t("updated") + " " + when;
    document.body.setAttribute("data-generation", body.generated_at);
  }

  function needsToken() {
    var meta = document.querySelector('meta[name="heliod-dashboard-public"]');
    return meta && meta.content === "false";
  }

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }

  function askToken(refused) {
    var form = document.getElementById("login");
    form.hidden = false;
    var err = document.getElementById("login-error");
    err.hidden = !refused;
    err.textContent = refused ? t("token_invalid") : "";
    document.getElementById("token").focus();
  }

  function banner(text) {
    var b = document.getElementById("banner");
    b.hidden = !text;
    b.textContent = text || "";
  }

  function refresh() {
    var headers = { Accept: "application/json" };
    var tok = token();
    if (needsToken()) {
      if (!tok) { askToken(false); return Promise.resolve(); }
      headers.Authorization = "Bearer " + tok;
    }
    return fetch("/dashboard/data.json", { headers: headers, cache: "no-store" }).then(function (r) {
      if (r.status === 401) {
        try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
        askToken(true);
        return null;
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (body) {
      if (!body) return;
      document.getElementById("login").hidden = true;
      banner("");
      draw(body);
    }).catch(function () { banner(t("offline")); });
  }

  function rebuild() {
    Object.keys(views).forEach(function (id) {
      views[id].power.destroy(); views[id].energy.destroy(); views[id].el.remove(); delete views[id];
    });
    if (last) draw(last);
  }

  document.getElementById("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var value = document.getElementById("token").value.trim();
    if (!value) return;
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (e) { /* private mode */ }
    document.getElementById("token").value = "";
    refresh();
  });

  document.getElementById("lang").addEventListener("click", function () {
    lang = lang === "fr" ? "en" : "fr";
    try { localStorage.setItem(LANG_KEY, lang); } catch (e) { /* private mode */ }
    applyStaticText();
    rebuild();
  });

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      Object.keys(views).forEach(function (id) {
        var v = views[id];
        v.power.setSize(chartSize(v.powerNode));
        v.energy.setSize(chartSize(v.energyNode));
      });
    }, 150);
  });

  applyStaticText();
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
