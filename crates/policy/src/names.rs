//! Names of fieldless enums on the wire: one mechanism for every crate.
//!
//! Such an enum derives serde (`rename_all = "snake_case"`) for JSON and strum
//! (`serialize_all = "snake_case"`: `IntoStaticStr`, `EnumString`, `VariantArray`) for
//! `as_str()`, parsing and the list of names, so no crate writes a `match` from variant to
//! text or back. [`check_wire_names`] is the test that the two derivations agree.

use std::fmt::Debug;
use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Gives each listed enum (deriving `strum::IntoStaticStr`) `as_str()`, its snake_case
/// wire name.
#[macro_export]
macro_rules! wire_name_as_str {
    ($($t:ty),+ $(,)?) => {
        $(impl $t {
            /// The snake_case name on the wire, in the store and in tables.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        })+
    };
}

/// Every name of `T`, in declaration order (what a validator offers as choices).
pub fn wire_names<T>() -> Vec<&'static str>
where
    T: strum::VariantArray + Copy + Into<&'static str>,
{
    T::VARIANTS.iter().map(|v| (*v).into()).collect()
}

/// Checks, for every variant of `T`, that its strum name is its serde name and that both
/// parse back to it; the first disagreement is named.
pub fn check_wire_names<T>() -> Result<(), String>
where
    T: strum::VariantArray
        + Copy
        + PartialEq
        + Debug
        + Serialize
        + DeserializeOwned
        + Into<&'static str>
        + FromStr,
{
    for v in T::VARIANTS {
        let name: &'static str = (*v).into();
        let json = serde_json::to_value(v).map_err(|e| format!("{v:?}: {e}"))?;
        if json != name {
            return Err(format!("{v:?}: strum says {name:?}, serde says {json}"));
        }
        let back: T = serde_json::from_value(json).map_err(|e| format!("{v:?}: {e}"))?;
        if back != *v || T::from_str(name).ok() != Some(*v) {
            return Err(format!("{v:?}: {name:?} does not parse back"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MetricKind, Purchase, Strategy};

    #[test]
    fn strum_and_serde_give_every_policy_enum_the_same_names() {
        // Lifecycle and Purchase are checked with the API's enums (flexus-api re-exports them).
        let checks = [
            check_wire_names::<Strategy>(),
            check_wire_names::<MetricKind>(),
        ];
        checks.into_iter().collect::<Result<(), _>>().unwrap();
        assert_eq!(wire_names::<Purchase>(), ["spot", "on_demand"]);
        // Forecast methods are only written, never read back.
        use strum::VariantArray as _;
        for m in crate::forecast::Method::VARIANTS {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str(), "{m:?}");
        }
    }

    #[test]
    fn a_disagreement_between_strum_and_serde_is_named() {
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Serialize,
            serde::Deserialize,
            strum::IntoStaticStr,
            strum::EnumString,
            strum::VariantArray,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "kebab-case")]
        enum Drifted {
            OnDemand,
        }
        let e = check_wire_names::<Drifted>().unwrap_err();
        assert!(e.contains("on-demand") && e.contains("on_demand"), "{e}");
    }
}
