// flux-edge local page: polls /status (the `flux-edge status --json` answer) and renders it, and /today for
// the chart of today (inline SVG). Read-only.
"use strict";
(function () {
  const REFRESH_MS = 2000;
  const CHART_REFRESH_MS = 10000;  // a period's row lands every 30 min; the live dots move with /status
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const $ = (name) => document.querySelectorAll(`[data-field="${name}"]`);

  function num(v, unit, digits) {
    if (v === null || v === undefined) return "-";
    return `${Number(v).toFixed(digits === undefined ? 1 : digits)} ${unit}`;
  }
  function clock(iso) {
    return iso ? iso.replace(/:\d\d(\.\d+)?(?=[+-]\d\d:\d\d$|Z$)/, "") : "-";
  }
  function gbp(v) { return v === null || v === undefined ? "-" : `${v < 0 ? "-" : ""}£${Math.abs(v).toFixed(2)}`; }
  function set(name, text, fresh) {
    for (const el of $(name)) {
      el.textContent = text;
      const f = fresh || {};
      if (f.stale) {
        el.classList.add("stale");
        el.setAttribute("data-stale", f.age_s === null ? "stale: never read" : `stale ${Math.round(f.age_s)} s`);
      } else {
        el.classList.remove("stale");
        el.removeAttribute("data-stale");
      }
    }
  }
  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }
  function ago(iso, now) {
    if (!iso) return "never";
    return `${clock(iso)} (${Math.max(0, Math.round((Date.parse(now) - Date.parse(iso)) / 1000))} s ago)`;
  }

  function render(v) {
    const fr = v.freshness || {};
    set("site_id", v.site_id);
    set("time", (v.time || "-").replace(/\.\d+/, ""));
    set("config_sha256", (v.config_sha256 || "").slice(0, 12));
    set("reason", v.reason || "no decision yet", fr.target_kw);
    const ov = v.override;
    let mode = (v.effective_modes || []).join(", ") || "idle";
    if (ov && ov.setpoint_kw !== null && ov.setpoint_kw !== undefined) mode = "manual setpoint";
    set("mode", `mode ${mode}`);
    set("dry_run", v.dry_run === null || v.dry_run === undefined ? "-" : (v.dry_run ? "on" : "off"));
    set("override", ov ? ` · override ${ov.setpoint_kw !== null && ov.setpoint_kw !== undefined
      ? ov.setpoint_kw + " kW" : "mode " + ov.mode} until ${clock(ov.until)} by ${ov.source}` : "");
    set("site_power_kw", num(v.site_power_kw, "kW"), fr.site_power_kw);
    set("battery_measured_kw", num(v.battery_measured_kw, "kW"), fr.battery_measured_kw);
    set("battery_commanded_kw", num(v.battery_commanded_kw, "kW"));
    set("target_kw", num(v.target_kw, "kW"), fr.target_kw);
    set("soe_kwh", num(v.soe_kwh, "kWh"), fr.soe_kwh);
    const battery = v.battery_measured_kw !== null && v.battery_measured_kw !== undefined
      ? v.battery_measured_kw : v.battery_commanded_kw;
    const load = v.site_power_kw === null || v.site_power_kw === undefined || battery === null || battery === undefined
      ? null : v.site_power_kw + battery;
    set("site_load_kw", num(load, "kW"));
    set("grid_arrow", v.site_power_kw > 0.05 ? "→" : v.site_power_kw < -0.05 ? "←" : "·");
    set("battery_arrow", battery > 0.05 ? "←" : battery < -0.05 ? "→" : "·");
    const fill = document.getElementById("soe-fill");
    const cap = v.soe_capacity_kwh || 0;
    fill.style.width = cap > 0 && v.soe_kwh !== null ? `${Math.min(100, 100 * v.soe_kwh / cap)}%` : "0";
    const m = v.market || {};
    const price = m.imbalance_price, volume = m.imbalance_volume;
    set("imbalance_price", price ? `${price.value.toFixed(2)} p/kWh for SP ${clock(price.settlement_period)}` : "-",
        fr.imbalance_price);
    set("imbalance_volume", volume ? `${volume.value > 0 ? "+" : ""}${volume.value.toFixed(0)} MWh (system ${
      volume.value > 0 ? "short" : volume.value < 0 ? "long" : "balanced"})` : "-", fr.imbalance_volume);
    const step = v.axle_step, next = v.axle_next;
    set("axle", (step ? `${step.action} until ${clock(step.end)}` : "no step now")
      + (next ? `; next ${next.action} at ${clock(next.start)}` : ""));
    const change = v.next_mode_change;
    set("next_mode_change", change ? `${change.mode} ${change.change} at ${clock(change.time)}` : "-");
    const t = v.today;
    set("today_since", t ? (t.from_midnight ? "midnight" : clock(t.since)) : "-");
    for (const k of ["charged_kwh", "discharged_kwh", "imported_kwh", "exported_kwh"]) {
      set(`today_${k}`, t ? num(t[k], "kWh") : "-");
    }
    set("today_battery_value_gbp", t ? gbp(t.battery_value_gbp) : "-");
    // The value expected today (status's value_today): earned in the ended periods + the plan's for the rest.
    const vt = v.value_today;
    const plural = (n, what) => `${n} ${what}${n === 1 ? "" : "s"}`;
    set("value_earned", vt ? `${gbp(vt.earned_gbp)} (${plural(vt.earned_periods, "ended period")}${
      vt.unrecorded_periods ? `, ${vt.unrecorded_periods} not recorded` : ""}${
      vt.setpoint_periods ? `, ${vt.setpoint_periods} at the setpoint` : ""})` : "-");
    set("value_expected", !vt ? "-" : vt.expected_gbp === null ? vt.no_plan || "no plan"
      : `${gbp(vt.expected_gbp)} (${plural(vt.expected_periods, "period")} left${
        vt.unplanned_periods ? `, ${vt.unplanned_periods} beyond the plan` : ""})`);
    set("value_total", !vt ? "-" : vt.total_gbp === null ? "- (no plan)" : gbp(vt.total_gbp));

    const devices = document.getElementById("devices");
    devices.replaceChildren();
    for (const d of v.devices || []) {
      const row = document.createElement("tr");
      row.setAttribute("data-device", d.name);
      cell(row, d.name);
      cell(row, d.kind);
      cell(row, d.state, `health-${d.state}`);
      cell(row, String(d.polls_ok));
      cell(row, String(d.polls_failed));
      cell(row, d.reading_age_s === null ? "-" : `${Math.round(d.reading_age_s)} s${d.stale ? " stale" : ""}`,
           d.stale ? "stale" : "");
      cell(row, d.last_error || "");
      devices.appendChild(row);
    }
    const sinks = document.getElementById("sinks");
    sinks.replaceChildren();
    for (const s of v.sinks || []) {
      const row = document.createElement("tr");
      row.setAttribute("data-sink", s.name);
      cell(row, s.name);
      cell(row, s.pending === null ? "-" : String(s.pending));
      cell(row, s.oldest_pending ? ago(s.oldest_pending, v.time) : "-");
      cell(row, ago(s.last_upload, v.time));
      sinks.appendChild(row);
    }
    const alerts = document.getElementById("alerts");
    alerts.replaceChildren();
    for (const a of (v.alerts || []).slice().reverse()) {
      const li = document.createElement("li");
      li.className = a.level;
      li.textContent = `${clock(a.time)} ${a.level} ${a.kind}: ${a.message}`;
      alerts.appendChild(li);
    }
    if (!alerts.children.length) {
      const li = document.createElement("li");
      li.textContent = "none";
      alerts.appendChild(li);
    }
  }

  // --- the chart of today (/today): inline SVG, drawn from scratch at each refresh -----------------------
  const SVGNS = "http://www.w3.org/2000/svg";
  const W = 1000, L = 56, R = 56, PT = 12, PB = 196, ST = 218, SB = 300, H = 322;
  function svg(parent, name, attrs, text) {
    const e = document.createElementNS(SVGNS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  }
  function ticks(lo, hi, n) {
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(Math.abs(t) < 1e-9 ? 0 : t);
    return out;
  }
  const ok = (v) => v !== null && v !== undefined && Number.isFinite(v);
  function stepPath(points, x, y, spMs) {  // [[t, v]] per period -> a step line, broken at gaps
    let d = "", prevEnd = null;
    for (const [t, v] of points) {
      if (!ok(v)) { prevEnd = null; continue; }
      d += `${prevEnd === t ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}H${x(t + spMs).toFixed(1)}`;
      prevEnd = t + spMs;
    }
    return d;
  }
  function drawChart(d, status) {
    const root = document.getElementById("chart");
    root.replaceChildren();
    const sp = (d.period_s || 1800) * 1000;
    const t0 = Date.parse(d.day_start), t1 = Date.parse(d.until), now = Date.parse(d.time);
    const x = (t) => L + (Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0) * (W - L - R);
    const hist = (d.history || []).map((h) => ({ ...h, t: Date.parse(h.start) }));
    const fc = ((d.forecast || {}).periods || []).map((p) => ({ ...p, t: Date.parse(p.start) }));
    const plan = ((d.plan || {}).periods || []).map((p) => ({ ...p, t: Date.parse(p.start) }));
    const liveSite = status ? status.site_power_kw : null;
    const liveBattery = status ? (ok(status.battery_measured_kw) ? status.battery_measured_kw
      : status.battery_commanded_kw) : null;
    const liveSoe = status ? status.soe_kwh : null;
    const powers = [0, liveSite, liveBattery];
    for (const h of hist) powers.push(h.site_kw, h.battery_kw);
    for (const p of fc) if (p.net_load_kw) powers.push(p.net_load_kw.lower, p.net_load_kw.upper);
    for (const p of plan) powers.push(p.battery_kw, p.site_kw);
    let lo = Math.min(...powers.filter(ok)), hi = Math.max(...powers.filter(ok));
    if (hi - lo < 1) { hi += 1; lo -= 1; }
    const padP = (hi - lo) * 0.08; lo -= padP; hi += padP;
    const yP = (v) => PT + (hi - v) / (hi - lo) * (PB - PT);
    const soes = [liveSoe, ...hist.map((h) => h.soe_end_kwh), ...plan.map((p) => p.soe_end_kwh)].filter(ok);
    const cap = d.soe_capacity_kwh || Math.max(1, ...soes) * 1.1;
    const yS = (v) => SB - Math.min(Math.max(v, 0), cap) / cap * (SB - ST);

    // ahead of now: shaded; the end of the local day, where the chart runs past it
    const ahead = svg(root, "g", { "data-series": "ahead" });
    svg(ahead, "rect", { x: x(now), y: PT, width: Math.max(0, x(t1) - x(now)), height: SB - PT, class: "ahead" });
    const grid = svg(root, "g", { class: "grid" });
    for (const v of ticks(lo, hi, 5)) {
      svg(grid, "line", { x1: L, x2: W - R, y1: yP(v), y2: yP(v), class: v === 0 ? "zero" : "" });
      svg(grid, "text", { x: L - 6, y: yP(v) + 4, "text-anchor": "end" }, `${v}`);
    }
    svg(grid, "text", { x: L - 6, y: PT - 2, "text-anchor": "end", class: "unit" }, "kW");
    for (const v of [0, 0.5, 1]) {
      svg(grid, "line", { x1: L, x2: W - R, y1: yS(v * cap), y2: yS(v * cap) });
      svg(grid, "text", { x: W - R + 6, y: yS(v * cap) + 4 }, `${Math.round(v * cap)}`);
    }
    svg(grid, "text", { x: W - R + 6, y: ST - 6, class: "unit" }, "SoE kWh");
    const fmt = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false,
      timeZone: d.timezone || undefined });
    for (let t = t0; t <= t1; t += 3 * 3600 * 1000) {
      svg(grid, "line", { x1: x(t), x2: x(t), y1: PT, y2: SB, class: "hour" });
      svg(grid, "text", { x: x(t), y: H - 6, "text-anchor": "middle" }, fmt.format(new Date(t)));
    }
    if (Date.parse(d.day_end) < t1) {
      svg(grid, "line", { x1: x(Date.parse(d.day_end)), x2: x(Date.parse(d.day_end)), y1: PT, y2: SB,
        class: "midnight" });
    }

    // the forecast's net load band and value, ahead
    const band = svg(root, "g", { "data-series": "forecast" });
    const fcb = fc.filter((p) => p.net_load_kw);
    if (fcb.length) {
      const up = fcb.map((p) => `${x(p.t).toFixed(1)},${yP(p.net_load_kw.upper).toFixed(1)} ${
        x(p.t + sp).toFixed(1)},${yP(p.net_load_kw.upper).toFixed(1)}`);
      const down = fcb.slice().reverse().map((p) => `${x(p.t + sp).toFixed(1)},${yP(p.net_load_kw.lower).toFixed(1)} ${
        x(p.t).toFixed(1)},${yP(p.net_load_kw.lower).toFixed(1)}`);
      svg(band, "polygon", { points: [...up, ...down].join(" "), class: "fc-band" });
      svg(band, "path", { d: stepPath(fcb.map((p) => [p.t, p.net_load_kw.value]), x, yP, sp), class: "fc-line" });
    }
    // battery power: bars per period (+ discharge), measured then planned
    const bars = (g, rows, cls) => {
      for (const r of rows) {
        if (!ok(r.battery_kw)) continue;
        const y0 = yP(0), y1 = yP(r.battery_kw);
        svg(g, "rect", { x: x(r.t) + 1, width: Math.max(1, x(r.t + sp) - x(r.t) - 2), y: Math.min(y0, y1),
          height: Math.max(0.5, Math.abs(y1 - y0)), class: cls });
      }
    };
    bars(svg(root, "g", { "data-series": "plan-battery" }), plan, "plan-battery");
    bars(svg(root, "g", { "data-series": "history-battery" }), hist, "battery");
    svg(svg(root, "g", { "data-series": "plan-site" }), "path",
      { d: stepPath(plan.map((p) => [p.t, p.site_kw]), x, yP, sp), class: "plan-site" });
    svg(svg(root, "g", { "data-series": "history-site" }), "path",
      { d: stepPath(hist.map((h) => [h.t, h.site_kw]), x, yP, sp), class: "site" });
    // SoE at each period's end: measured, then planned from the newest known point
    const soeLine = (rows, start) => {
      const pts = start ? [start] : [];
      for (const r of rows) if (ok(r.soe_end_kwh)) pts.push([r.t + sp, r.soe_end_kwh]);
      return pts.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${yS(v).toFixed(1)}`).join("");
    };
    svg(svg(root, "g", { "data-series": "history-soe" }), "path", { d: soeLine(hist, null), class: "soe" });
    svg(svg(root, "g", { "data-series": "plan-soe" }), "path",
      { d: soeLine(plan, ok(liveSoe) ? [now, liveSoe] : null), class: "plan-soe" });
    // now: a line and the live readings
    const live = svg(root, "g", { "data-series": "now" });
    svg(live, "line", { x1: x(now), x2: x(now), y1: PT, y2: SB, class: "now" });
    if (ok(liveSite)) svg(live, "circle", { cx: x(now), cy: yP(liveSite), r: 4, class: "site-dot" });
    if (ok(liveBattery)) svg(live, "circle", { cx: x(now), cy: yP(liveBattery), r: 4, class: "battery-dot" });
    if (ok(liveSoe)) svg(live, "circle", { cx: x(now), cy: yS(liveSoe), r: 4, class: "soe-dot" });
    root.setAttribute("data-periods", String(hist.length));
    const p = d.plan;
    set("chart_note", `${hist.length} periods recorded today · ${fc.length ? `forecast from ${clock(d.forecast.made_at)}`
      : "no forecast yet"} · ${p ? `plan ${p.status}, £${ok(p.expected_value_gbp)
      ? p.expected_value_gbp.toFixed(2) : "-"} expected over its horizon` : "no plan (rule-based modes)"}`);
  }

  async function refreshChart() {
    try {
      const r = await fetch("today", { cache: "no-store",
        headers: token ? { Authorization: `Bearer ${token}` } : {} });
      if (!r.ok) throw new Error(`today answered ${r.status}`);
      const d = await r.json();
      window.fluxLastToday = d;
      drawChart(d, window.fluxLastStatus || null);
      window.fluxChartUpdates = (window.fluxChartUpdates || 0) + 1;
    } catch (e) {
      set("chart_note", `chart: no answer from the daemon (${e.message})`);
    } finally {
      setTimeout(refreshChart, CHART_REFRESH_MS);
    }
  }

  async function refresh() {
    const conn = document.getElementById("conn");
    try {
      const r = await fetch("status", { cache: "no-store",
        headers: token ? { Authorization: `Bearer ${token}` } : {} });
      if (!r.ok) throw new Error(`status answered ${r.status}`);
      const v = await r.json();
      render(v);
      window.fluxLastStatus = v;
      if (window.fluxLastToday) drawChart({ ...window.fluxLastToday, time: v.time }, v);
      window.fluxUpdates = (window.fluxUpdates || 0) + 1;
      conn.textContent = "live";
      conn.classList.remove("down");
    } catch (e) {
      conn.textContent = `no answer from the daemon (${e.message})`;
      conn.classList.add("down");
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }
  refresh().then(refreshChart);
})();
