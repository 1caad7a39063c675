# The simulator's default for a Flexus X (x1) web or API pool, in HCL (the same policy as
# crates/sim/policies/sim-default-x1.json; chosen on the traces' tuning windows, measured on
# their evaluation windows and on held-out M4 series in docs/benchmarks.md, "Robustness").
#
# Capacity follows the request rate per instance (pushed by the load balancer to
# POST /v1/namespaces/{ns}/pools/{name}/metrics). A rising rate is read 6 minutes ahead along
# its 5-minute slope (at most +20 %, and only a rise well beyond the rate's per-minute
# jitter), so instances launched now meet the load they will find after boot and warm-up.
# A forecast of the rate buys capacity 3 minutes ahead, but its level only counts while the
# history has a clear daily cycle, it never counts for more than 1.25 x the current rate, and
# its rise over the lead time is also applied to the current rate. Scale-in waits just over
# 5 minutes, then follows the load down at once.

strategy            = "target_tracking"
evaluation_interval = "15s"
tolerance           = 0.05

bounds {
  min = 1
  max = 1000
}

metric "requests" {
  kind         = "custom"
  target       = 34 # requests/s per instance (x1.2u.4g: 34.8 at the p95 SLO)
  per_instance = true
  # Square-root staffing: R instances' worth of load gets R + 0.25 * sqrt(R) instances (a
  # 5-instance load 11 % more, an 80-instance load 3 % more), and the rate is read one mean
  # jump between readings (over the last hour) higher, so a jumpy load keeps more spare.
  sqrt_headroom  = 0.25
  noise_headroom = 1
  # Readings more than a minute apart (Cloud Eye's basic 5-minute data) leave the pool
  # longer on stale news: R + 0.5 * sqrt(R) instances (22 % / 6 % more), and no noise
  # headroom, whose jumps over 5 minutes would buy far more spare than they save.
  coarse_sqrt_headroom  = 0.5
  coarse_noise_headroom = 0
  source "push" {}
  trend_lead         = "6m"
  trend_window       = "5m"
  trend_max_raise    = 0.2
  trend_significance = 0.5
  trend_noise_margin = 8
}

scale_out {
  policies = [] # no rate limit
}

scale_in {
  stabilisation_window = "5m15s"
  policy {
    type   = "percent"
    value  = 100
    period = "15s"
  }
}

prediction {
  enabled               = true
  mode                  = "forecast_and_scale"
  metric                = "requests"
  target_per_instance   = 37.8
  lead_time             = "3m"
  max_ratio             = 1.25
  min_seasonal_strength = 0.65
  relative_rise         = true
}
