output "pool_id" {
  value = flexus_x_pool.this.id
}

output "policy_id" {
  value = flexus_autoscaling_policy.this.id
}
