# Quickstart: one pool of Flexus X instances and its autoscaling policy.
#
# The provider reads FLEXUS_ENDPOINT, FLEXUS_TOKEN and FLEXUS_NAMESPACE when the
# variables below are left unset. `make demo` runs this against a local agent and the
# emulator.

terraform {
  required_providers {
    flexus = {
      source  = "flexus/flexus"
      version = "0.1.0"
    }
  }
}

provider "flexus" {
  endpoint  = var.endpoint
  namespace = var.namespace
}

resource "flexus_x_pool" "web" {
  name       = var.pool_name
  flavor     = var.flavor
  image      = "img-ubuntu-22.04"
  vpc_id     = "vpc-quickstart"
  subnet_ids = ["subnet-quickstart-1"]

  min_size     = var.min_size
  max_size     = var.max_size
  boot_seconds = 40

  tags = {
    app = "quickstart"
  }
}

resource "flexus_autoscaling_policy" "web" {
  name     = var.policy_name
  pool     = flexus_x_pool.web.name
  strategy = "target_tracking"

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
  }

  scale_out {
    policy {
      type   = "percent"
      value  = 100
      period = "30s"
    }
  }

  scale_in {
    stabilisation_window = "2m"
    policy {
      type   = "pods"
      value  = 2
      period = "1m"
    }
  }
}

# The pool's live status, read from the agent (never drift: it is a data source).
data "flexus_x_pool" "web" {
  name = flexus_x_pool.web.name
}
