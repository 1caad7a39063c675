# Two teams, two namespaces, one module. The admin token (FLEXUS_TOKEN) may use both
# namespaces; with per-namespace tokens, give each module its own provider alias.

terraform {
  required_providers {
    flexus = {
      source  = "flexus/flexus"
      version = "0.1.0"
    }
  }
}

provider "flexus" {}

module "team_a" {
  source = "../modules/inference-pool"

  namespace          = "team-a"
  vpc_id             = "vpc-team-a"
  subnet_ids         = ["subnet-team-a-1", "subnet-team-a-2"]
  min_size           = 1
  max_size           = 6
  cpu_target         = 60
  business_hours_min = 2
}

module "team_b" {
  source = "../modules/inference-pool"

  namespace       = "team-b"
  name            = "chat"
  flavor          = "x1.2u.4g"
  vpc_id          = "vpc-team-b"
  subnet_ids      = ["subnet-team-b-1"]
  min_size        = 2
  max_size        = 4
  cpu_target      = 70
  spot_percentage = 0
}

output "pools" {
  value = [module.team_a.pool_id, module.team_b.pool_id]
}
