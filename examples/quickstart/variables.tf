variable "endpoint" {
  description = "URL of the flexus-agent; null reads FLEXUS_ENDPOINT."
  type        = string
  default     = null
}

variable "namespace" {
  description = "Namespace of the pool and policy; null reads FLEXUS_NAMESPACE."
  type        = string
  default     = null
}

variable "pool_name" {
  description = "Name of the pool (changing it replaces the pool and its policy)."
  type        = string
  default     = "web"
}

variable "policy_name" {
  description = "Name of the policy (changing it replaces the policy)."
  type        = string
  default     = "web-cpu"
}

variable "flavor" {
  description = "Flexus X flavor of the instances."
  type        = string
  default     = "x1.2u.4g"
}

variable "min_size" {
  type    = number
  default = 1
}

variable "max_size" {
  type    = number
  default = 8
}

variable "cpu_target" {
  description = "Target CPU utilisation, percent."
  type        = number
  default     = 60
}
