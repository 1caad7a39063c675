data "flexus_x_flavors" "small" {
  name_prefix  = "x1."
  min_vcpus    = 2
  on_sale_only = true
}

output "smallest_flexus_x_flavor" {
  value = data.flexus_x_flavors.small.names[0]
}
