resource "flexus_autoscaling_policy" "inference" {
  name     = "inference"
  pool     = flexus_x_pool.inference.name
  strategy = "target_tracking"

  bounds {
    min = 2
    max = 20
  }

  metric {
    name   = "cpu"
    kind   = "cpu"
    target = 60
    source {
      type        = "cloud_eye"
      metric_name = "cpu_util"
    }
  }

  scale_in {
    stabilisation_window = "5m"
    policy {
      type   = "percent"
      value  = 25
      period = "1m"
    }
  }
}
