terraform {
  required_providers {
    flexus = {
      source  = "flexus/flexus"
      version = "0.1.0"
    }
  }
}

provider "flexus" {
  endpoint  = "http://127.0.0.1:8470" # or FLEXUS_ENDPOINT
  namespace = "team-a"                # or FLEXUS_NAMESPACE
  # token comes from FLEXUS_TOKEN
}
