"""statsforecast on M4-Hourly (horizon 48, season 24), the same split and metrics
as the flexus-sim `forecast-m4` example, for a side-by-side comparison.

Usage: python statsforecast_m4.py <m4-hourly dir> <max series>
Prints one JSON line per model: MASE (in-sample seasonal-naive scale, m=24),
sMAPE (%), fit+predict seconds (single process, n_jobs=1).
"""
import csv
import json
import sys
import time

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import MSTL, AutoARIMA, AutoETS, SeasonalNaive


def read(path):
    rows = []
    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        for rec in r:
            vals = [float(v) for v in rec[1:] if v.strip() != ""]
            rows.append((rec[0], np.array(vals)))
    return rows


def mase(actual, pred, insample, m=24):
    scale = np.mean(np.abs(insample[m:] - insample[:-m]))
    return float(np.mean(np.abs(actual - pred)) / scale) if scale > 0 else None


def smape(actual, pred):
    d = np.abs(actual) + np.abs(pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d == 0, 0.0, 2 * np.abs(actual - pred) / d)
    return float(100 * np.mean(t))


def main():
    base, limit = sys.argv[1], int(sys.argv[2])
    train = read(f"{base}/Hourly-train.csv")[:limit]
    test = dict(read(f"{base}/Hourly-test.csv"))
    frames = [pd.DataFrame({"unique_id": uid, "ds": np.arange(1, len(y) + 1), "y": y}) for uid, y in train]
    df = pd.concat(frames, ignore_index=True)
    # Cheap models first, so a time limit on the slow one still leaves results.
    models = {
        "statsforecast SeasonalNaive(24)": SeasonalNaive(season_length=24),
        "statsforecast MSTL(24,168)+AutoETS trend": MSTL(season_length=[24, 168], trend_forecaster=AutoETS(model="ZZN")),
        "statsforecast AutoARIMA(24)": AutoARIMA(season_length=24),
    }
    for name, model in models.items():
        sf = StatsForecast(models=[model], freq=1, n_jobs=1)
        start = time.time()
        fc = sf.forecast(df=df, h=48)
        secs = time.time() - start
        col = [c for c in fc.columns if c not in ("unique_id", "ds")][0]
        fc = fc.reset_index() if "unique_id" not in fc.columns else fc
        m, s = [], []
        for uid, y in train:
            pred = fc.loc[fc["unique_id"] == uid, col].to_numpy()
            act = test[uid]
            v = mase(act, pred, y)
            if v is not None:
                m.append(v)
            s.append(smape(act, pred))
        print(json.dumps({"model": name, "series": len(m), "mase": round(float(np.mean(m)), 3),
                          "smape": round(float(np.mean(s)), 2), "seconds": round(secs, 2)}), flush=True)


if __name__ == "__main__":
    main()
