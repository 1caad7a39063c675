//! What ECS accepts in a create request, as Huawei documents it: the one place these
//! facts live on the client side. [`crate::client::validate_create`] checks a request
//! against them before sending it, and the agent refuses a pool declaration that breaks
//! them (so a pool ECS can never create is never stored).

/// Root disk types ECS knows (`root_volume.volumetype`).
pub const ROOT_VOLUME_TYPES: &[&str] = &[
    "SATA", "SAS", "SSD", "GPSSD", "co-p1", "uh-l1", "ESSD", "GPSSD2", "ESSD2",
];

/// Root disk sizes in GB.
pub const ROOT_VOLUME_SIZE_GB: std::ops::RangeInclusive<u32> = 1..=1024;

/// NICs (one per subnet) of one server.
pub const MAX_NICS: usize = 12;

/// User data before base64 encoding, in bytes (32 KB).
pub const MAX_USER_DATA_BYTES: usize = 32 * 1024;

/// Tags put on a server at creation.
pub const MAX_TAGS: usize = 10;

/// Characters of a tag key.
pub const MAX_TAG_KEY_CHARS: usize = 36;

/// Characters of a tag value.
pub const MAX_TAG_VALUE_CHARS: usize = 43;

/// Whether `t` is a root disk type ECS knows.
pub fn is_root_volume_type(t: &str) -> bool {
    ROOT_VOLUME_TYPES.contains(&t)
}
