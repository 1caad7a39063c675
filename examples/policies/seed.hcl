# The original (seed) design, reproduced faithfully so it can be measured:
# weighted score over cpu 70/30, memory 80/40, response time 2000/500 ms, queue 100/50 and
# a 10-sample cpu trend; act above +0.3 / below -0.3; one 300 s cooldown; 1..20 instances.
# Stabilisation and rate policies are switched off so that only the seed rules act.

strategy            = "seed"
evaluation_interval = "30s"

bounds {
  min = 1
  max = 20
}

metric "cpu" {
  kind = "cpu"
  source "cloud_eye" {
    metric_name = "cpu_util"
  }
}

metric "memory" {
  kind = "memory"
  source "cloud_eye" {
    namespace   = "AGT.ECS"
    metric_name = "mem_usedPercent"
  }
}

metric "response_time" {
  kind = "response_time"
  source "prometheus" {
    query = "histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[1m])) by (le)) * 1000"
  }
}

metric "queue" {
  kind = "queue_length"
  source "redis" {
    key = "jobs"
  }
}

scale_out {
  stabilisation_window = "0s"
  policies             = []
}

scale_in {
  stabilisation_window = "0s"
  policies             = []
}

# The seed constants, spelled out with their original values (all are defaults).
seed {
  trend_weight    = 0.05
  trend_divisor   = 10
  trend_samples   = 10
  scale_out_score = 0.3
  scale_in_score  = -0.3
  out_factor      = 0.5
  in_factor       = 0.3
  cooldown        = "300s"
}
