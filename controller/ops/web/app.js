// flux-edge local page: polls /status (the `flux-edge status --json` answer) and renders it. Read-only.
"use strict";
(function () {
  const REFRESH_MS = 2000;
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

  async function refresh() {
    const conn = document.getElementById("conn");
    try {
      const r = await fetch("status", { cache: "no-store",
        headers: token ? { Authorization: `Bearer ${token}` } : {} });
      if (!r.ok) throw new Error(`status answered ${r.status}`);
      const v = await r.json();
      render(v);
      window.fluxLastStatus = v;
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
  refresh();
})();
