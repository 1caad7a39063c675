"""statsforecast on M4-Hourly (horizon 48, season 24), the same split and metrics
as the flexus-sim `forecast-m4` example, for a side-by-side comparison.

Usage: python statsforecast_m4.py <m4-hourly dir> <max series> [n_jobs] [chunk]

Models: SeasonalNaive(24) and AutoARIMA(season_length=24) — the model behind the
published M4-Hourly MASE of 0.92. The series are taken in order (the first
<max series>, the same ones `forecast-m4 -- N` scores) and fitted in chunks of
<chunk> series (default 10) with <n_jobs> worker processes (default 2). After
every chunk one JSON line per model is printed with the running totals over the
series done so far (`series`, MASE with the in-sample seasonal-naive m=24 scale,
sMAPE %, fit+predict wall seconds), so a run cut by a time limit still reports
an exact prefix of the series: the last line of each model is the result.
"""
import csv
import json
import sys
import time

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import AutoARIMA, SeasonalNaive


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
    n_jobs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    chunk = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    train = read(f"{base}/Hourly-train.csv")[:limit]
    test = dict(read(f"{base}/Hourly-test.csv"))
    models = {
        "statsforecast SeasonalNaive(24)": lambda: SeasonalNaive(season_length=24),
        "statsforecast AutoARIMA(24)": lambda: AutoARIMA(season_length=24),
    }
    totals = {name: {"mase": [], "smape": [], "seconds": 0.0} for name in models}
    for lo in range(0, len(train), chunk):
        part = train[lo:lo + chunk]
        df = pd.concat(
            [pd.DataFrame({"unique_id": uid, "ds": np.arange(1, len(y) + 1), "y": y}) for uid, y in part],
            ignore_index=True,
        )
        for name, make in models.items():
            sf = StatsForecast(models=[make()], freq=1, n_jobs=n_jobs)
            start = time.time()
            fc = sf.forecast(df=df, h=48)
            t = totals[name]
            t["seconds"] += time.time() - start
            fc = fc.reset_index() if "unique_id" not in fc.columns else fc
            col = [c for c in fc.columns if c not in ("unique_id", "ds")][0]
            for uid, y in part:
                pred = fc.loc[fc["unique_id"] == uid, col].to_numpy()
                act = test[uid]
                v = mase(act, pred, y)
                if v is not None:
                    t["mase"].append(v)
                t["smape"].append(smape(act, pred))
            print(json.dumps({"model": name, "series": len(t["smape"]), "mase": round(float(np.mean(t["mase"])), 3),
                              "smape": round(float(np.mean(t["smape"])), 2), "seconds": round(t["seconds"], 1),
                              "n_jobs": n_jobs}), flush=True)


if __name__ == "__main__":
    main()
