# Recommended default for a DeepSeek-class GPU inference pool.
#
# Capacity is sized from a latency-safe utilisation target (GPU 62 %) and from the request
# queue per instance; latency is not a proportional signal, so it is not a target here.
# Scale-out is fast (no up-stabilisation, +100 % or +4 instances per 30 s, whichever is
# more); scale-in waits for 5 minutes of consistently lower recommendations and then
# removes at most 25 % per minute. Booting and warming (model-loading) instances count
# toward capacity but not toward the GPU average, and block scale-in while they warm.

strategy            = "target_tracking"
evaluation_interval = "15s"
tolerance           = 0.1

bounds {
  min     = 2
  max     = 40
  initial = 2
}

metric "gpu" {
  kind   = "gpu"
  target = 62
  source "cloud_eye" {
    namespace   = "AGT.ECS"
    metric_name = "gpu_usage_gpu"
  }
  duration     = "1m"
  missing_data = "block_scale_in"
  stale_after  = "3m"
}

metric "queue" {
  kind         = "queue_length"
  target       = 4 # waiting requests per instance
  per_instance = true
  source "redis" {
    key = "inference:queue"
  }
  missing_data = "block_scale_in"
}

metric "cpu" {
  kind   = "cpu"
  target = 75
  source "cloud_eye" {
    metric_name = "cpu_util"
  }
  duration = "1m"
}

scale_out {
  stabilisation_window = "0s"
  select               = "max"
  policy {
    type   = "percent"
    value  = 100
    period = "30s"
  }
  policy {
    type   = "pods"
    value  = 4
    period = "30s"
  }
}

scale_in {
  stabilisation_window = "5m"
  cooldown             = "2m"
  policy {
    type   = "percent"
    value  = 25
    period = "1m"
  }
}

spot {
  on_demand_base  = 2
  spot_percentage = 50
}
