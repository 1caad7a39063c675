# Business-hours inference pool: cron minimums for the weekday peak, target tracking on top,
# and a forecast (forecast_only until it has proven itself).

strategy = "target_tracking"

bounds {
  min = 1
  max = 30
}

metric "cpu" {
  kind   = "cpu"
  target = 60
  source "cloud_eye" {
    metric_name = "cpu_util"
  }
}

metric "requests" {
  kind = "custom"
  source "prometheus" {
    query = "sum(rate(http_requests_total{pool=\"chat\"}[1m]))"
  }
}

schedule "weekday-peak" {
  cron         = "0 8 * * 1-5" # 08:00 UTC Monday to Friday
  duration     = "10h"
  min_capacity = 8
}

schedule "nightly-batch" {
  cron         = "30 1 * * *"
  duration     = "2h"
  min_capacity = 4
}

prediction {
  enabled             = true
  mode                = "forecast_only"
  metric              = "requests"
  target_per_instance = 25
  lead_time           = "6m"
  history_window      = "14d"
  seasonality         = ["1d", "7d"]
  refit_interval      = "6h"
}
