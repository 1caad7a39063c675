//! Policy files: JSON and HCL lower to the same [`crate::Policy`]. Both collect every
//! problem with its location (a JSON pointer, or file:line:column).

pub(crate) mod hcl;
pub(crate) mod json;

pub use hcl::parse_hcl;
pub use json::parse_json;
