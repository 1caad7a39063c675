//! Baseline autoscalers, re-implemented from the reference doc
//! (the team's autoscaling-anchors reference, §1): static peak, Kubernetes HPA,
//! AWS target tracking, step scaling, predictive + target tracking, and the oracle.
//! The seed strategy is measured through [`crate::policy`] (flexus-policy's `seed`).

pub mod aws;
pub mod hpa;
pub mod simple;

pub use aws::{
    PredictiveTargetTracking, StepConfig, StepScaling, TargetTracking, TargetTrackingConfig,
};
pub use hpa::{Hpa, HpaConfig};
pub use simple::{Oracle, StaticPeak};
