"""The backtest's day as a PNG: SoE, setpoint and battery power, site power, price. matplotlib is imported
here only (Agg backend), so nothing else in flux-edge, the daemon least of all, loads it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from controller.backtest.run import BacktestResult
from controller.engine.schedule import zone

DPI = 110


def effective_runs(result: BacktestResult) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per mode (priority order), the spans of consecutive ticks in which it was effective."""
    runs: dict[str, list[tuple[datetime, datetime]]] = {name: [] for name in result.mode_names}
    open_at: dict[str, datetime] = {}
    ends = [s.time for s in result.samples[1:]] + [result.end]
    for sample, end in zip(result.samples, ends, strict=True):
        for name in sample.effective:
            open_at.setdefault(name, sample.time)
        for name in [n for n in open_at if n not in sample.effective]:
            runs.setdefault(name, []).append((open_at.pop(name), sample.time))
        last_end = end
    for name, start in open_at.items():
        runs.setdefault(name, []).append((start, last_end))
    return {name: spans for name, spans in runs.items() if spans}


def draw_chart(result: BacktestResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    c = result.site.controller
    assert c is not None
    tz = zone(result.site.site.timezone)
    times = [s.time.astimezone(tz) for s in result.samples]
    fig, (ax_soe, ax_bess, ax_site, ax_price, ax_modes) = plt.subplots(
        5, 1, figsize=(11, 12), sharex=True, dpi=DPI, gridspec_kw={"height_ratios": [3, 3, 3, 2, 2]})
    try:
        s = result.summary()
        fig.suptitle(f"flux-edge backtest: {result.site.site.name}, {result.day.isoformat()} "
                     f"({result.day.strftime('%A')})\n"
                     f"charged {s['charged_kwh']:.0f} kWh, discharged {s['discharged_kwh']:.0f} kWh, "
                     f"{s['equivalent_full_cycles']:.2f} cycles, value £{s['value_gbp']:.2f} (cash "
                     f"£{s['imbalance_revenue_gbp']:.2f}, stored energy {s['stored_energy_change_kwh']:+.0f} kWh at "
                     f"{s['stored_energy_price_p_per_kwh']:.2f} p/kWh), limit violations {s['limit_violations']}",
                     fontsize=10)

        ax_soe.plot(times, [x.soe_kwh for x in result.samples], color="tab:green", label="SoE")
        ax_soe.axhline(c.soe_min_kwh, color="grey", linestyle="--", linewidth=0.8, label="SoE bounds")
        ax_soe.axhline(c.soe_max_kwh, color="grey", linestyle="--", linewidth=0.8)
        ax_soe.set_ylabel("SoE (kWh)")

        ax_bess.plot(times, [x.battery_kw for x in result.samples], color="tab:orange", linewidth=2.5,
                     alpha=0.5, label="battery power")
        ax_bess.plot(times, [x.setpoint_kw for x in result.samples], color="tab:blue", linewidth=0.8,
                     drawstyle="steps-post", label="setpoint")
        ax_bess.axhline(0, color="black", linewidth=0.5)
        ax_bess.set_ylabel("battery (kW, + discharge)")

        ax_site.plot(times, [x.site_kw for x in result.samples], color="tab:purple", linewidth=0.8,
                     label="site power")
        ax_site.axhline(c.site_import_limit_kw, color="tab:red", linestyle="--", linewidth=0.8, label="site limits")
        ax_site.axhline(-c.site_export_limit_kw, color="tab:red", linestyle="--", linewidth=0.8)
        ax_site.axhline(0, color="black", linewidth=0.5)
        ax_site.set_ylabel("site (kW, + import)")

        ax_price.plot(times, [x.price_p_per_kwh for x in result.samples], color="tab:brown",
                      drawstyle="steps-post", label="system price")
        ax_price.axhline(0, color="black", linewidth=0.5)
        ax_price.set_ylabel("price (p/kWh)")

        def num(t: datetime) -> float:
            return float(mdates.date2num(t))  # type: ignore[no-untyped-call]

        runs = effective_runs(result)
        names = list(runs)
        for row, name in enumerate(names):
            spans = [(num(a), num(b) - num(a)) for a, b in runs[name]]
            ax_modes.broken_barh(spans, (row - 0.35, 0.7), color=f"C{row % 10}")
        if names:
            ax_modes.set_yticks(range(len(names)), names, fontsize=8)
            ax_modes.set_ylim(len(names) - 0.5, -0.5)
        else:
            ax_modes.set_yticks([])
            ax_modes.text(0.5, 0.5, "no mode was effective", transform=ax_modes.transAxes, ha="center", va="center")
        ax_modes.set_ylabel("effective")
        ax_modes.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))  # type: ignore[no-untyped-call]
        ax_modes.xaxis.set_major_locator(mdates.HourLocator(byhour=range(0, 24, 2), tz=tz))  # type: ignore[no-untyped-call]
        ax_modes.set_xlabel(f"local time ({result.site.site.timezone})")
        ax_modes.set_xlim(result.start.astimezone(tz), result.end.astimezone(tz))
        ax_modes.grid(True, axis="x", linewidth=0.3)

        for ax in (ax_soe, ax_bess, ax_site, ax_price):
            ax.grid(True, linewidth=0.3)
            ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        # No software/date metadata: the same day draws the same file.
        fig.savefig(path, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)


def draw_days(answer: dict[str, Any], path: Path) -> None:
    """The many-day backtest as one chart: each strategy's value per day (bars) and cumulated (lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies = answer["strategies"]
    fig, (bars, cumulative) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, dpi=DPI)
    width = 0.8 / max(len(strategies), 1)
    for i, (name, s) in enumerate(strategies.items()):
        daily = s["daily_value_gbp"]
        xs = list(range(len(daily)))
        bars.bar([x + (i - (len(strategies) - 1) / 2) * width for x in xs], daily, width, label=name)
        total, running = 0.0, []
        for v in daily:
            total += v
            running.append(total)
        cumulative.plot(xs, running, marker=".", label=f"{name}: {s['value_gbp']:.0f} GBP")
    bars.set_ylabel("value per day (GBP)")
    bars.axhline(0, color="grey", linewidth=0.6)
    bars.legend(loc="upper left", fontsize=8)
    cumulative.set_ylabel("cumulated value (GBP)")
    cumulative.set_xlabel(f"day from {answer['from']} to {answer['to']}")
    cumulative.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"backtest over {answer['days']} days: value after throughput cost, stored energy valued")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
