# A worker pool sized from its backlog: waiting jobs per instance (KEDA AverageValue /
# AWS backlog-per-instance), with a fallback capacity when the queue cannot be read.
# CPU is tracked too: scale-in needs every signal to agree, so an empty queue does not
# drain workers that are busy (a backlog-only policy oscillates to zero and back).

strategy = "target_tracking"

bounds {
  min = 1
  max = 100
}

metric "backlog" {
  kind              = "queue_length"
  target            = 20
  per_instance      = true
  missing_data      = "fallback"
  fallback_capacity = 5
  stale_after       = "1m"
  source "redis" {
    key = "work:pending"
  }
}

metric "cpu" {
  kind   = "cpu"
  target = 70
  source "cloud_eye" {
    metric_name = "cpu_util"
  }
}

scale_out {
  policy {
    type   = "pods"
    value  = 10
    period = "30s"
  }
}

scale_in {
  stabilisation_window = "3m"
}

spot {
  on_demand_base  = 0
  spot_percentage = 80
}
