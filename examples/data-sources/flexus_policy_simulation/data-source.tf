data "flexus_policy_simulation" "review" {
  trace          = "nasa-http-1995"
  max_hours      = 24
  peak_instances = 20
  against        = ["hpa", "aws-tt"]
  policy = jsonencode({
    strategy = "target_tracking"
    bounds   = { min = 2, max = 30 }
    metrics = [{
      name   = "cpu"
      kind   = "cpu"
      target = 60
      source = { type = "push" }
    }]
  })
}

output "policy_cost" {
  value = data.flexus_policy_simulation.review.cost
}
