output "pool_id" {
  value = flexus_x_pool.web.id
}

output "policy_id" {
  value = flexus_autoscaling_policy.web.id
}
