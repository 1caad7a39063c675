# AWS-style step scaling on CPU (the AWS user guide's worked example):
# threshold 50 %; +10 % at [60, 70), +30 % at >= 70, -10 % at (30, 40], -30 % at <= 30.

strategy = "step"

bounds {
  min = 2
  max = 50
}

metric "cpu" {
  kind   = "cpu"
  source "cloud_eye" {
    metric_name = "cpu_util"
  }
  duration = "1m"
}

step {
  metric          = "cpu"
  threshold       = 50
  adjustment_type = "percent_change_in_capacity"

  adjustment {
    lower      = 10
    upper      = 20
    adjustment = 10
  }
  adjustment {
    lower      = 20
    adjustment = 30
  }
  adjustment {
    lower      = -20
    upper      = -10
    adjustment = -10
  }
  adjustment {
    upper      = -20
    adjustment = -30
  }
}

scale_in {
  stabilisation_window = "0s"
  cooldown             = "5m"
}
