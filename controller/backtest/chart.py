"""The backtest's day as a PNG: SoE, setpoint and battery power, site power, price. matplotlib is imported
here only (Agg backend), so nothing else in flux-edge, the daemon least of all, loads it."""

from __future__ import annotations

from pathlib import Path

from controller.backtest.run import BacktestResult
from controller.engine.schedule import zone

DPI = 110


def draw_chart(result: BacktestResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    c = result.site.controller
    assert c is not None
    tz = zone(result.site.site.timezone)
    times = [s.time.astimezone(tz) for s in result.samples]
    fig, (ax_soe, ax_bess, ax_site, ax_price) = plt.subplots(4, 1, figsize=(11, 10), sharex=True, dpi=DPI)
    try:
        s = result.summary()
        fig.suptitle(f"flux-edge backtest: {result.site.site.name}, {result.day.isoformat()} "
                     f"({result.day.strftime('%A')})\n"
                     f"charged {s['charged_kwh']:.0f} kWh, discharged {s['discharged_kwh']:.0f} kWh, "
                     f"{s['equivalent_full_cycles']:.2f} cycles, imbalance revenue £{s['imbalance_revenue_gbp']:.2f}, "
                     f"limit violations {s['limit_violations']}", fontsize=10)

        ax_soe.plot(times, [x.soe_kwh for x in result.samples], color="tab:green", label="SoE")
        ax_soe.axhline(c.soe_min_kwh, color="grey", linestyle="--", linewidth=0.8, label="SoE bounds")
        ax_soe.axhline(c.soe_max_kwh, color="grey", linestyle="--", linewidth=0.8)
        ax_soe.set_ylabel("SoE (kWh)")

        ax_bess.plot(times, [x.setpoint_kw for x in result.samples], color="tab:blue", linewidth=0.9,
                     drawstyle="steps-post", label="setpoint")
        ax_bess.plot(times, [x.battery_kw for x in result.samples], color="tab:orange", linewidth=0.7,
                     alpha=0.8, label="battery power")
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
        ax_price.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))  # type: ignore[no-untyped-call]
        ax_price.xaxis.set_major_locator(mdates.HourLocator(byhour=range(0, 24, 2), tz=tz))  # type: ignore[no-untyped-call]
        ax_price.set_xlabel(f"local time ({result.site.site.timezone})")
        ax_price.set_xlim(result.start.astimezone(tz), result.end.astimezone(tz))

        for ax in (ax_soe, ax_bess, ax_site, ax_price):
            ax.grid(True, linewidth=0.3)
            ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        # No software/date metadata: the same day draws the same file.
        fig.savefig(path, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
