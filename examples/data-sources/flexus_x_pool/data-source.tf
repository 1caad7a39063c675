data "flexus_x_pool" "inference" {
  name = "inference"
}

output "ready_instances" {
  value = data.flexus_x_pool.inference.ready_size
}
