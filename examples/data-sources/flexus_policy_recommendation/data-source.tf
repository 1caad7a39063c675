data "flexus_policy_recommendation" "web" {
  pool            = "web"
  budget          = 0.01
  max_evaluations = 60
}

resource "flexus_autoscaling_policy" "canary" {
  name     = "canary"
  pool     = "canary"
  strategy = "target_tracking"

  bounds {
    min = 1
    max = 40
  }

  metric {
    name         = "rps"
    kind         = "custom"
    per_instance = true
    target       = data.flexus_policy_recommendation.web.targets["rps"]
    # Spare capacity for the load's usual jumps between readings.
    noise_headroom = data.flexus_policy_recommendation.web.noise_headroom
    source {
      type = "push"
    }
  }

  scale_in {
    stabilisation_window = data.flexus_policy_recommendation.web.scale_in_stabilisation_window
  }
}

output "recommended_target" {
  value = data.flexus_policy_recommendation.web.targets["rps"]
}

output "recommended_noise_headroom" {
  value = data.flexus_policy_recommendation.web.noise_headroom
}

# false when the recommendation broke the budget on the later history it was not tuned on
# (Terraform also shows a warning). With Terraform 1.2 or later a `precondition` in the
# policy's `lifecycle` block can refuse such a recommendation.
output "recommendation_within_budget" {
  value = data.flexus_policy_recommendation.web.within_budget
}
