# A deliberately broken policy: every line marked BAD is an error the parser must report.
strategy = "target_tracking"
evaluation_interval = "soon"          # BAD: not a duration

bounds {
  min = 10
  max = 4                             # BAD (reported at min): min > max
}

metric "cpu" {
  kind   = "cpu"
  target = 160                        # BAD: a percentage above 100
  source "cloud_eye" {
    metric_name = "cpu_util"
  }
  wieght = 2                          # BAD: unknown field
}

metric "queue" {
  kind = "queue_length"
  missing_data = "skip"               # BAD: not a missing-data rule
  source "redis" {
    key = "jobs"
  }
}

scale_in {
  cooldown = "5 minutes"              # BAD: not a duration
  policy {
    type   = "percent"
    value  = 150                      # BAD: scale-in percent above 100
    period = "1m"
  }
}

schedule "peak" {
  cron         = "0 8 * *"            # BAD: four fields
  duration     = "10h"
  min_capacity = 2
}

spot {
  spot_percentage = 120               # BAD: above 100
}
