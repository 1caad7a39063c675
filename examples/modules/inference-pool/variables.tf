variable "namespace" {
  description = "Namespace of the team (one per team)."
  type        = string
}

variable "name" {
  description = "Name of the pool; the policy is named \"<name>-scaling\"."
  type        = string
  default     = "inference"
}

variable "flavor" {
  type    = string
  default = "x1.4u.8g"
}

variable "image" {
  type    = string
  default = "img-inference-server"
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  type = list(string)
}

variable "min_size" {
  type    = number
  default = 1
}

variable "max_size" {
  type    = number
  default = 10
}

variable "boot_seconds" {
  type    = number
  default = 60
}

variable "warmup_seconds" {
  description = "Model load time after boot."
  type        = number
  default     = 30
}

variable "cpu_target" {
  type    = number
  default = 60
}

variable "spot_percentage" {
  description = "Percent of the capacity above min_size bought as spot (0 disables spot)."
  type        = number
  default     = 50
}

variable "business_hours_min" {
  description = "Minimum instances on weekdays 08:00-18:00 UTC (0: no schedule)."
  type        = number
  default     = 0
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "wait_for_capacity_timeout" {
  type    = string
  default = "10m"
}
