"""statsforecast on the hourly workload series written by
`cargo run --release -p flexus-sim --example forecast-traces -- --csv <file>`,
with the same protocol as that example: 7 rolling origins one day apart,
24 hours ahead, MASE scaled by each window's in-sample seasonal-naive (m = 24)
error and averaged over the windows, sMAPE in % over every forecast point.

usage: python statsforecast_traces.py <series.csv> [--arima-max-hours N]

Prints one markdown row per series x model. AutoARIMA is skipped on series
longer than --arima-max-hours (default 1000), as in the anchor run.
"""

import sys
import time

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import MSTL, AutoARIMA, AutoETS, SeasonalNaive

H, WINDOWS, M = 24, 7, 24


def mase(actual, predicted, insample):
    scale = np.mean(np.abs(insample[M:] - insample[:-M]))
    return np.mean(np.abs(actual - predicted)) / scale


def smape_points(actual, predicted):
    den = np.abs(actual) + np.abs(predicted)
    out = np.where(den > 0, 2.0 * np.abs(actual - predicted) / np.where(den > 0, den, 1.0), 0.0)
    return 100.0 * out


def main():
    path = sys.argv[1]
    arima_max = 1000
    if "--arima-max-hours" in sys.argv:
        arima_max = int(sys.argv[sys.argv.index("--arima-max-hours") + 1])
    df = pd.read_csv(path)
    df["ds"] = pd.to_datetime(df["ds"], unit="s")
    for uid, g in df.groupby("unique_id", sort=False):
        g = g.reset_index(drop=True)
        y = g["y"].to_numpy(dtype=float)
        models = [
            ("SeasonalNaive(24)", SeasonalNaive(season_length=24)),
            ("MSTL(24,168) + AutoETS trend", MSTL(season_length=[24, 168], trend_forecaster=AutoETS(model="ZZN"))),
            ("AutoETS(season 24)", AutoETS(season_length=24)),
        ]
        if len(y) <= arima_max:
            models.append(("AutoARIMA(24)", AutoARIMA(season_length=24)))
        for name, model in models:
            sf = StatsForecast(models=[model], freq="h", n_jobs=1)
            start = time.perf_counter()
            cv = sf.cross_validation(df=g, h=H, n_windows=WINDOWS, step_size=H)
            seconds = time.perf_counter() - start
            col = [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y")][0]
            m_sum, s_pts = 0.0, []
            for cutoff, w in cv.groupby("cutoff"):
                insample = g.loc[g["ds"] <= cutoff, "y"].to_numpy(dtype=float)
                a, p = w["y"].to_numpy(dtype=float), w[col].to_numpy(dtype=float)
                m_sum += mase(a, p, insample)
                s_pts.extend(smape_points(a, p))
            print(
                f"| {uid} | {len(y)} | statsforecast {name} | {m_sum / WINDOWS:.3f} | {np.mean(s_pts):.1f} | {seconds:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
