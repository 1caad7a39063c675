# A reusable inference pool: a Flexus X pool (on-demand base plus spot) and a
# target-tracking policy with an optional business-hours minimum. examples/teams uses it
# twice, for two teams in two namespaces.

terraform {
  required_providers {
    flexus = {
      source  = "flexus/flexus"
      version = "0.1.0"
    }
  }
}

resource "flexus_x_pool" "this" {
  namespace  = var.namespace
  name       = var.name
  flavor     = var.flavor
  image      = var.image
  vpc_id     = var.vpc_id
  subnet_ids = var.subnet_ids

  min_size       = var.min_size
  max_size       = var.max_size
  boot_seconds   = var.boot_seconds
  warmup_seconds = var.warmup_seconds

  spot {
    enabled         = var.spot_percentage > 0
    on_demand_base  = var.min_size
    spot_percentage = var.spot_percentage
  }

  tags = merge({ team = var.namespace }, var.tags)

  wait_for_capacity_timeout = var.wait_for_capacity_timeout
}

resource "flexus_autoscaling_policy" "this" {
  namespace = var.namespace
  name      = "${var.name}-scaling"
  pool      = flexus_x_pool.this.name
  strategy  = "target_tracking"

  bounds {
    min = var.min_size
    max = var.max_size
  }

  metric {
    name     = "cpu"
    kind     = "cpu"
    target   = var.cpu_target
    duration = "1m"
    source {
      type        = "cloud_eye"
      metric_name = "cpu_util"
    }
    # Basic Cloud Eye monitoring reads SYS.ECS every 5 minutes, longer than coarse_above
    # (1m): the pool acts on older news, so it keeps R + 0.5 * sqrt(R) instances for R
    # instances' worth of load. With the guest agent's 1-minute data this does not apply.
    coarse_sqrt_headroom = 0.5
  }

  dynamic "schedule" {
    for_each = var.business_hours_min > 0 ? [1] : []
    content {
      name         = "business-hours"
      cron         = "0 8 * * 1-5"
      duration     = "10h"
      min_capacity = var.business_hours_min
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

  spot {
    on_demand_base  = var.min_size
    spot_percentage = var.spot_percentage
  }
}
