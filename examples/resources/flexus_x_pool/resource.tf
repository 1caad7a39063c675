resource "flexus_x_pool" "inference" {
  name       = "inference"
  flavor     = "x1.8u.16g"
  image      = "img-deepseek-r1-distill"
  vpc_id     = "vpc-0001"
  subnet_ids = ["subnet-0001"]

  min_size     = 2
  max_size     = 20
  boot_seconds = 90

  spot {
    enabled         = true
    on_demand_base  = 2
    spot_percentage = 50
  }

  tags = {
    team = "search"
  }

  wait_for_capacity_timeout = "10m"
}
