/* heliod dashboard: draws each plant from the data sent with the page (or a loading state),
   then reads /dashboard/data.json every 10 s and redraws in place.
   Numbers stay decimal strings from the server to the screen: Intl.NumberFormat formats
   strings exactly, so no token amount ever passes through a binary float. Only the charts
   plot floats (they are pictures, not figures). Each figure has one format (fixed
   decimals), so it never changes width or precision from one refresh to the next. */
(function () {
  "use strict";

  var REFRESH_MS = 10000;
  var TOKEN_KEY = "heliod.token";
  var LANG_KEY = "heliod.lang";
  var SHOWN_BACKERS = 50; // more rows than this: the search box narrows them
  var DAY_S = 86400;
  var LABEL_GAP = 14; // px between two axis labels
  var RIGHT_PAD = 14; // px right of the plot, room for the last label's right half

  var TEXT = window.heliodText; // i18n.js: labels in English and French

  var lang = pickLanguage();
  var last = null; // the last data.json body drawn
  var views = {}; // plant id -> {el, power, energy, ...}
  window.heliodCharts = views; // read by the browser tests

  // Charts follow their card's width, however the page was opened (a resized window, a
  // headless screenshot, a phone turned sideways): the card decides, never the window.
  var sizer = typeof ResizeObserver === "function" ? new ResizeObserver(function (entries) {
    entries.forEach(function (entry) {
      var chart = entry.target.heliodChart;
      if (!chart) return;
      var size = chartSize(entry.target);
      if (size.width !== chart.width || size.height !== chart.height) chart.setSize(size);
    });
  }) : null;

  function pickLanguage() {
    var saved = null;
    try { saved = localStorage.getItem(LANG_KEY); } catch (e) { saved = null; }
    if (saved === "fr" || saved === "en") return saved;
    var nav = navigator.language || document.documentElement.lang || "en";
    return nav.toLowerCase().indexOf("fr") === 0 ? "fr" : "en";
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
    while (point > digits.length) { digits += "0"; }
    var out = digits.slice(0, point) + "." + digits.slice(point);
    return (neg ? "-" : "") + out.replace(/^0+(?=\d)/, "").replace(/\.$/, "");
  }

  // A decimal string with exactly `digits` decimals, in the page's locale.
  function fixed(plant, text, digits) {
    return new Intl.NumberFormat(localeOf(plant), {
      maximumFractionDigits: digits, minimumFractionDigits: digits
    }).format(text);
  }

  // A token amount: exact, every significant decimal and no trailing zeros (a balance
  // can have up to 18 decimals; padding them all would hide the figure).
  function amount(plant, text) {
    return new Intl.NumberFormat(localeOf(plant), {
      maximumFractionDigits: plant.minted.decimals
    }).format(text) + " " + plant.minted.symbol;
  }

  // Cut, not rounded: a goal never shows 100 % before it is reached (docs/milestones.md).
  function truncate(text, digits) {
    var point = text.indexOf(".");
    return point < 0 ? text : text.slice(0, point + 1 + digits);
  }

  function percent(plant, ratio) { return fixed(plant, truncate(shift(ratio, -2), 1), 1); }

  function dateTime(plant, iso) {
    return new Intl.DateTimeFormat(localeOf(plant), {
      timeZone: plant.timezone, dateStyle: "medium", timeStyle: "short"
    }).format(new Date(iso));
  }

  function dateOnly(plant, iso) {
    return new Intl.DateTimeFormat(localeOf(plant), {
      timeZone: plant.timezone, dateStyle: "medium"
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

  function progressBar(parent, ratio) {
    var bar = el("div", "bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    var fill = el("div", "fill");
    bar.appendChild(fill);
    parent.appendChild(bar);
    if (ratio !== undefined) setBar(bar, fill, ratio);
    return { bar: bar, fill: fill };
  }

  function setBar(bar, fill, ratio) {
    var pct = Math.min(100, Math.max(0, Number(shift(ratio, -2))));
    fill.style.width = pct + "%";
    bar.setAttribute("aria-valuenow", String(pct));
  }

  function applyStaticText() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach(function (n) {
      n.textContent = t(n.getAttribute("data-i18n"));
    });
    document.getElementById("token").placeholder = t("token_prompt");
    document.getElementById("lang").textContent = lang === "fr" ? "EN" : "FR";
    var loading = document.getElementById("loading");
    if (loading) loading.textContent = t("loading");
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

  // ---- charts (uPlot, sized from their card) ----

  function chartSize(node) {
    var w = Math.max(120, Math.floor(node.clientWidth));
    return { width: w, height: Math.round(Math.min(280, Math.max(170, w * 0.5))) };
  }

  function labelWidth(u, axis, text) {
    u.ctx.font = u.axes[axis].font[0];
    return u.ctx.measureText(text).width / uPlot.pxRatio;
  }

  // A y axis as wide as its widest label (+ ticks and gap), never a fixed guess.
  function ySize(u, values, axis, cycle) {
    var a = u.axes[axis];
    if (cycle > 1) return a._size;
    var widest = 0;
    (values || []).forEach(function (v) { widest = Math.max(widest, labelWidth(u, axis, String(v))); });
    return Math.ceil(widest + a.ticks.size + a.gap + 4);
  }

  function powerData(plant) {
    var pts = plant.power_today.points;
    return [pts.map(function (p) { return Date.parse(p.t) / 1e3; }),
      pts.map(function (p) { return Number(p.power_w) / 1000; })];
  }

  function makePower(v, plant) {
    var node = v.powerNode;
    var size = chartSize(node);
    var hourFmt = new Intl.DateTimeFormat(localeOf(plant), {
      timeZone: plant.timezone, hour: "2-digit", minute: "2-digit"
    });
    function day() {
      var p = v.plant || plant;
      return [Date.parse(p.power_today.from) / 1e3, Date.parse(p.power_today.to) / 1e3];
    }
    var chart = new uPlot({
      width: size.width, height: size.height,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), plant.timezone); },
      legend: { show: false }, cursor: { show: false },
      padding: [12, RIGHT_PAD, 0, 0],
      scales: { x: { time: true, range: function () { return day(); } },
        y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [{
        splits: function (u) {
          var d = day();
          var hours = Math.round((d[1] - d[0]) / 3600);
          var plotW = u.bbox.width / uPlot.pxRatio;
          var widest = labelWidth(u, 0, hourFmt.format(new Date((d[0] + 13 * 3600) * 1e3)));
          var steps = [1, 2, 3, 4, 6, 12];
          var step = 12;
          for (var i = 0; i < steps.length; i++) {
            if (plotW * steps[i] / hours >= widest + LABEL_GAP) { step = steps[i]; break; }
          }
          var out = [];
          for (var h = 0; h < hours; h += step) {
            var x = plotW * h / hours;
            if (x + widest / 2 <= plotW + RIGHT_PAD - 1) out.push(d[0] + h * 3600);
          }
          return out;
        },
        values: function (u, splits) {
          return splits.map(function (s) { return hourFmt.format(new Date(s * 1e3)); });
        }
      }, { size: ySize }],
      series: [{}, { label: t("power"), stroke: "#d97706", fill: "rgba(245,158,11,0.25)", width: 2,
        points: { show: false } }]
    }, powerData(plant), node);
    return chart;
  }

  // The 30-day chart starts at the first day with energy (a new plant shows its own days,
  // not weeks of empty bars); x is the day's index, each bar centred in its slot.
  function energyDays(plant) {
    var days = plant.energy_days;
    var first = 0;
    while (first < days.length - 1 && Number(days[first].energy_wh) === 0) first += 1;
    return days.slice(first);
  }

  function energyData(days) {
    return [days.map(function (d, i) { return i; }),
      days.map(function (d) { return Number(d.energy_wh) / 1000; })];
  }

  function makeEnergy(v, plant) {
    var node = v.energyNode;
    var size = chartSize(node);
    var dayFmt = new Intl.DateTimeFormat(localeOf(plant), {
      timeZone: plant.timezone, day: "numeric", month: "short"
    });
    function label(i) {
      var d = v.days[i];
      return d ? dayFmt.format(new Date(Date.parse(d.t) + DAY_S * 500)) : "";
    }
    return new uPlot({
      width: size.width, height: size.height,
      legend: { show: false }, cursor: { show: false },
      padding: [12, RIGHT_PAD, 0, 0],
      scales: {
        x: { time: false, range: function () { return [-0.5, v.days.length - 0.5]; } },
        y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } }
      },
      axes: [{
        splits: function (u) {
          var n = v.days.length;
          var plotW = u.bbox.width / uPlot.pxRatio;
          var slot = plotW / n;
          var widest = 0;
          for (var i = 0; i < n; i++) widest = Math.max(widest, labelWidth(u, 0, label(i)));
          var step = Math.max(1, Math.ceil((widest + LABEL_GAP) / slot));
          var out = [];
          // Counted back from today, so today's bar is always labelled when it fits.
          for (var j = n - 1; j >= 0; j -= step) {
            var x = slot * (j + 0.5);
            if (x + widest / 2 <= plotW + RIGHT_PAD - 1) out.unshift(j);
          }
          return out;
        },
        values: function (u, splits) { return splits.map(function (s) { return label(s); }); }
      }, { size: ySize }],
      series: [{}, { label: t("energy"), fill: "#0f766e", stroke: "#0f766e",
        points: { show: false }, paths: uPlot.paths.bars({ size: [0.7, 48], align: 0 }) }]
    }, energyData(v.days), node);
  }

  function watch(node, chart) {
    node.heliodChart = chart;
    if (sizer) sizer.observe(node);
  }

  function unwatch(node) {
    node.heliodChart = null;
    if (sizer) sizer.unobserve(node);
  }

  // ---- one plant ----

  function build(plant) {
    var root = el("article", "plant");
    root.setAttribute("data-plant", plant.id);
    var head = el("header", "plant-head");
    head.appendChild(el("h2", "plant-name", plant.name));
    var cap = el("span", "muted");
    cap.setAttribute("data-field", "capacity");
    head.appendChild(cap);
    root.appendChild(head);
    var v = { el: root, cap: cap, plant: plant };
    v.goalBanner = el("div", "goal-banner");
    v.goalBanner.setAttribute("role", "status");
    v.goalBanner.hidden = true;
    root.appendChild(v.goalBanner);
    var grid = el("div", "grid");
    root.appendChild(grid);
    var stats = el("section", "card stats");
    grid.appendChild(stats);
    v.lifetime = stat(stats, "lifetime", "energy_mwh");
    v.completed = stat(stats, "completed", "mwh_completed");
    v.minted = stat(stats, "minted", "minted");
    v.undistributed = stat(stats, "undistributed", "undistributed");
    var next = el("div", "stat wide");
    next.appendChild(el("div", "label", t("next")));
    var pb = progressBar(next);
    v.bar = pb.bar;
    v.fill = pb.fill;
    v.progress = el("div", "value small");
    v.progress.setAttribute("data-field", "next_mwh_progress");
    next.appendChild(v.progress);
    v.remaining = el("div", "muted");
    next.appendChild(v.remaining);
    stats.appendChild(next);

    v.impactCard = card(grid, "impact", "impact");
    var impactStats = el("div", "stats");
    v.impactCard.appendChild(impactStats);
    v.co2 = stat(impactStats, "co2", "co2_avoided_kg");
    v.households = stat(impactStats, "households", "households");
    v.source = el("p", "source muted");
    v.source.setAttribute("data-field", "impact_source");
    v.impactCard.appendChild(v.source);

    var pc = card(grid, "chart", "power_today");
    v.powerNode = el("div", "plot power");
    pc.appendChild(v.powerNode);
    v.powerEmpty = el("p", "muted", t("no_data"));
    pc.appendChild(v.powerEmpty);
    var ec = card(grid, "chart", "energy_days");
    v.energyNode = el("div", "plot energy");
    ec.appendChild(v.energyNode);

    v.milestoneCard = card(grid, "milestones", "milestones");
    v.timeline = el("ol", "timeline");
    v.milestoneCard.appendChild(v.timeline);
    v.challengeCard = card(grid, "challenges", "challenges");
    v.challengeList = el("div", "challenge-list");
    v.challengeCard.appendChild(v.challengeList);

    var dc = card(grid, "devices", "devices");
    v.devices = el("ul", "device-list");
    dc.appendChild(v.devices);

    v.ledgerCard = card(grid, "ledger", "ledger");
    v.ledger = el("div", "ledger-body");
    v.ledgerCard.appendChild(v.ledger);

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
    v.co2Head = el("th", "num co2", t("backer_co2"));
    hr.appendChild(v.co2Head);
    thead.appendChild(hr);
    table.appendChild(thead);
    v.tbody = el("tbody");
    table.appendChild(v.tbody);
    scroller.appendChild(table);
    v.more = el("p", "muted");
    bc.appendChild(v.more);
    document.getElementById("plants").appendChild(root);
    v.days = energyDays(plant);
    v.power = makePower(v, plant);
    v.energy = makeEnergy(v, plant);
    watch(v.powerNode, v.power);
    watch(v.energyNode, v.energy);
    return v;
  }

  function renderBalances(v, plant) {
    var q = v.search.value.trim().toLowerCase();
    var rows = plant.balances.filter(function (b) { return b.backer.toLowerCase().indexOf(q) >= 0; });
    var withCo2 = !!plant.impact;
    v.co2Head.hidden = !withCo2;
    v.tbody.textContent = "";
    rows.slice(0, SHOWN_BACKERS).forEach(function (b) {
      var tr = el("tr");
      tr.setAttribute("data-backer", b.backer);
      tr.appendChild(el("td", null, b.backer));
      var td = el("td", "num");
      setValue(td, b.amount, amount(plant, b.amount));
      tr.appendChild(td);
      if (withCo2 && b.co2_avoided_kg !== undefined) {
        var co2 = el("td", "num co2");
        setValue(co2, b.co2_avoided_kg, fixed(plant, b.co2_avoided_kg, 1) + " kg");
        tr.appendChild(co2);
      }
      v.tbody.appendChild(tr);
    });
    var hidden = rows.length - Math.min(rows.length, SHOWN_BACKERS);
    v.more.textContent = plant.balances.length === 0 ? t("none") : hidden > 0 ? t("more", { n: hidden }) : "";
  }

  function renderImpact(v, plant) {
    var impact = plant.impact;
    v.impactCard.hidden = !impact;
    if (!impact) return;
    setValue(v.co2, impact.co2_avoided_kg, fixed(plant, impact.co2_avoided_kg, 0) + " kg");
    v.households.parentNode.hidden = impact.households === null || impact.households === undefined;
    if (impact.households !== null && impact.households !== undefined) {
      setValue(v.households, impact.households, fixed(plant, impact.households, 1));
    }
    v.source.setAttribute("data-value", impact.source);
    v.source.textContent = t("source", {
      source: impact.source, factor: new Intl.NumberFormat(localeOf(plant)).format(impact.co2_g_per_kwh)
    });
  }

  function renderBanner(v, plant) {
    var b = plant.banner;
    v.goalBanner.hidden = !b;
    v.goalBanner.textContent = "";
    if (!b) return;
    v.goalBanner.setAttribute("data-goal", b.id);
    v.goalBanner.className = "goal-banner kind-" + b.kind;
    v.goalBanner.appendChild(el("strong", null,
      t(b.kind === "milestone" ? "banner_milestone" : "banner_challenge", { title: b.title })));
    var rest = " " + t("banner_when", { date: dateTime(plant, b.at) });
    if (b.kind === "challenge" && b.sponsor) rest += " · " + t("banner_sponsor", { sponsor: b.sponsor });
    v.goalBanner.appendChild(el("span", null, rest));
  }

  function renderMilestones(v, plant) {
    var list = plant.milestones || [];
    v.timeline.textContent = "";
    v.milestoneCard.hidden = list.length === 0;
    var nextMwh = plant.next_milestone ? plant.next_milestone.mwh : null;
    var energyMwh = shift(plant.energy_wh, 6);
    list.forEach(function (m) {
      var state = m.reached_at ? "reached" : m.mwh === nextMwh ? "next" : "future";
      var li = el("li", "milestone " + state);
      li.setAttribute("data-mwh", String(m.mwh));
      li.setAttribute("data-state", state);
      li.appendChild(el("span", "mark"));
      var body = el("div", "milestone-body");
      body.appendChild(el("strong", null, m.title));
      if (state === "reached") {
        var when = el("span", "muted when", t("reached_on", { date: dateOnly(plant, m.reached_at) }));
        when.setAttribute("data-value", m.reached_at);
        body.appendChild(when);
      } else if (state === "next") {
        var n = plant.next_milestone;
        progressBar(body, n.progress);
        var line = el("span", "muted progress-text", t("next_milestone", {
          done: fixed(plant, energyMwh, 3), goal: fixed(plant, String(n.mwh), 0),
          pct: percent(plant, n.progress)
        }));
        line.setAttribute("data-value", n.progress);
        body.appendChild(line);
      }
      li.appendChild(body);
      v.timeline.appendChild(li);
    });
  }

  function renderChallenges(v, plant) {
    var list = plant.challenges || [];
    v.challengeList.textContent = "";
    v.challengeCard.hidden = list.length === 0;
    list.forEach(function (c) {
      var box = el("div", "challenge status-" + c.status);
      box.setAttribute("data-challenge", c.id);
      box.setAttribute("data-status", c.status);
      var head = el("div", "challenge-head");
      head.appendChild(el("strong", null, c.title));
      head.appendChild(el("span", "badge", t("status_" + c.status)));
      box.appendChild(head);
      var meta = el("div", "muted");
      meta.appendChild(el("span", "sponsor", t("sponsor", { sponsor: c.sponsor })));
      meta.appendChild(document.createTextNode(" · "));
      meta.appendChild(el("span", "deadline", t("deadline", { date: dateTime(plant, c.deadline) })));
      box.appendChild(meta);
      progressBar(box, c.progress);
      var line = el("div", "muted progress-text", c.status === "open"
        ? t("challenge_progress", { pct: percent(plant, c.progress), goal: fixed(plant, String(c.goal_mwh), 0) })
        : t(c.status === "reached" ? "status_reached_on" : "status_missed_on", { date: dateTime(plant, c.at) }));
      line.setAttribute("data-value", c.progress);
      box.appendChild(line);
      v.challengeList.appendChild(box);
    });
  }

  // The verifiable ledger: shown when data.json carries the plant's log (docs/dashboard.md).
  // data.json's log: the newest checkpoint as its signed note (origin, size, base64 root),
  // with `tree_size` and `root` beside it; null before the plant's first mint.
  function checkpointOf(log) {
    var note = log.checkpoint;
    if (!note) return null;
    var lines = String(note).split("\n");
    return {
      tree_size: log.tree_size !== undefined && log.tree_size !== null ? log.tree_size : lines[1],
      root: log.root || lines[2]
    };
  }

  function renderLedger(v, plant) {
    var log = plant.log;
    var has = !!(log && log.vkey);
    v.ledgerCard.hidden = !has;
    v.ledger.textContent = "";
    if (!has) return;
    v.ledger.appendChild(el("div", "label muted", t("vkey")));
    var key = el("code", "wrap");
    setValue(key, log.vkey, log.vkey);
    key.setAttribute("data-field", "vkey");
    v.ledger.appendChild(key);
    var cp = checkpointOf(log);
    if (cp) {
      v.ledger.appendChild(el("div", "label muted", t("checkpoint")));
      var size = el("div", "value small");
      size.setAttribute("data-field", "tree_size");
      setValue(size, String(cp.tree_size),
        t("tree_size", { n: new Intl.NumberFormat(localeOf(plant)).format(String(cp.tree_size)) }));
      v.ledger.appendChild(size);
      if (cp.root) {
        var root = el("code", "wrap");
        root.setAttribute("data-field", "root");
        setValue(root, cp.root, t("root") + " " + cp.root);
        v.ledger.appendChild(root);
      }
    }
    var link = el("a", "verifier", t("verifier"));
    link.href = "/verify.py";
    link.setAttribute("download", "verify.py");
    v.ledger.appendChild(el("p")).appendChild(link);
    v.ledger.appendChild(el("p", "muted", t("verifier_help")));
  }

  function render(v, plant) {
    v.plant = plant;
    v.cap.textContent = t("capacity") + " " + fixed(plant, plant.capacity_kw, 1) + " kW";
    setValue(v.lifetime, plant.energy_wh, fixed(plant, shift(plant.energy_wh, 6), 3) + " MWh");
    setValue(v.completed, String(plant.mwh_completed), fixed(plant, String(plant.mwh_completed), 0));
    setValue(v.minted, plant.minted.amount, amount(plant, plant.minted.amount));
    setValue(v.undistributed, plant.undistributed.amount, amount(plant, plant.undistributed.amount));
    setValue(v.progress, plant.next_mwh_progress, percent(plant, plant.next_mwh_progress) + " %");
    setBar(v.bar, v.fill, plant.next_mwh_progress);
    // What remains of this MWh, in kWh: (1 − progress) × 1000 (a display figure only).
    var left = 1000 - Number(shift(plant.next_mwh_progress, -3));
    v.remaining.textContent = t("remaining", { kwh: fixed(plant, left.toFixed(3), 1) });
    v.power.setData(powerData(plant));
    v.powerEmpty.hidden = plant.power_today.points.length > 0;
    v.days = energyDays(plant);
    v.energy.setData(energyData(v.days));
    renderBanner(v, plant);
    renderImpact(v, plant);
    renderMilestones(v, plant);
    renderChallenges(v, plant);
    renderLedger(v, plant);
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

  function setTitle(plants) {
    var title = plants.length === 1 ? plants[0].name : t(plants.length ? "title_many" : "title");
    document.getElementById("title").textContent = title;
    document.title = title + " — heliod";
    document.getElementById("plants").classList.toggle("single", plants.length === 1);
  }

  function draw(body) {
    last = body;
    var loading = document.getElementById("loading");
    if (loading) loading.remove();
    var seen = {};
    setTitle(body.plants);
    body.plants.forEach(function (plant) {
      seen[plant.id] = true;
      if (!views[plant.id]) views[plant.id] = build(plant);
      render(views[plant.id], plant);
    });
    Object.keys(views).forEach(function (id) {
      if (!seen[id]) { drop(id); }
    });
    var first = body.plants[0];
    var when = first ? dateTime(first, body.generated_at) : body.generated_at;
    var up = document.getElementById("updated");
    up.setAttribute("data-value", body.generated_at);
    up.textContent = t("updated") + " " + when;
    document.body.setAttribute("data-generation", body.generated_at);
  }

  function drop(id) {
    var v = views[id];
    unwatch(v.powerNode);
    unwatch(v.energyNode);
    v.power.destroy();
    v.energy.destroy();
    v.el.remove();
    delete views[id];
  }

  function needsToken() {
    var meta = document.querySelector('meta[name="heliod-dashboard-public"]');
    return meta && meta.content === "false";
  }

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }

  function askToken(refused) {
    var loading = document.getElementById("loading");
    if (loading) loading.hidden = true;
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
    Object.keys(views).forEach(drop);
    if (last) draw(last);
  }

  document.getElementById("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var value = document.getElementById("token").value.trim();
    if (!value) return;
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (e) { /* private mode */ }
    document.getElementById("token").value = "";
    var loading = document.getElementById("loading");
    if (loading) loading.hidden = false;
    document.getElementById("login").hidden = true;
    refresh();
  });

  document.getElementById("lang").addEventListener("click", function () {
    lang = lang === "fr" ? "en" : "fr";
    try { localStorage.setItem(LANG_KEY, lang); } catch (e) { /* private mode */ }
    applyStaticText();
    rebuild();
  });

  applyStaticText();
  // The data sent with the page: drawn at once, before the first refresh.
  var seed = document.getElementById("heliod-data");
  var seeded = false;
  if (seed) {
    try { draw(JSON.parse(seed.textContent)); seeded = true; } catch (e) { seeded = false; }
  }
  if (!seeded) refresh();
  setInterval(refresh, REFRESH_MS);
})();
