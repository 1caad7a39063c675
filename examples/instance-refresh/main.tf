# Instance refresh: change `flavor` (or image, user_data, root_volume,
# security_group_ids, key_pair) and `terraform apply` replaces the running
# instances in batches — at most `max_surge` above the desired count, at least
# `min_healthy_percentage` of it ready throughout — and returns once no instance of
# the old template is left (bounded by `timeouts.update`).
#
#   terraform apply                                # three x1.2u.4g instances
#   terraform apply -var flavor=x1.4u.8g           # plan warns; apply replaces them
#
# The provider reads FLEXUS_ENDPOINT, FLEXUS_TOKEN and FLEXUS_NAMESPACE.

terraform {
  required_providers {
    flexus = {
      source  = "flexus/flexus"
      version = "0.1.0"
    }
  }
}

provider "flexus" {}

variable "flavor" {
  description = "ECS flavor of every instance; changing it replaces them in batches."
  type        = string
  default     = "x1.2u.4g"
}

resource "flexus_x_pool" "infer" {
  name       = "infer"
  flavor     = var.flavor
  image      = "img-ubuntu-22.04"
  vpc_id     = "vpc-refresh"
  subnet_ids = ["subnet-refresh-1"]

  min_size       = 3
  max_size       = 6
  boot_seconds   = 10
  warmup_seconds = 20

  instance_refresh {
    strategy               = "rolling"
    min_healthy_percentage = 100
    max_surge              = 2
  }

  timeouts {
    update = "15m"
  }
}

output "instances" {
  value = flexus_x_pool.infer.instance_ids
}
