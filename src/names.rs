//! One name table per user-facing enum: its names and a line of help for each, with `FromStr`
//! and `Display` derived from it. The command line's value parsers and the Python binding's
//! conversions read the same table, so a name is spelled once.

/// An enum whose values users name: kernels, backends, batch modes, objectives, pool formats,
/// synthetic scenarios.
pub trait Named: Copy + PartialEq + Sized + 'static {
    /// What the values are, for messages ("kernel").
    const WHAT: &'static str;
    /// Every value with its name and one line of help, in the order shown to users.
    const TABLE: &'static [(Self, &'static str, &'static str)];

    /// The value's name.
    fn name(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|(v, _, _)| *v == self)
            .map_or("?", |(_, n, _)| n)
    }

    /// Every name, in table order.
    fn names() -> Vec<&'static str> {
        Self::TABLE.iter().map(|(_, n, _)| *n).collect()
    }

    /// The value called `name`.
    ///
    /// # Errors
    /// [`UnknownName`] listing every name.
    fn from_name(name: &str) -> Result<Self, UnknownName> {
        Self::TABLE
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(v, _, _)| *v)
            .ok_or_else(|| UnknownName {
                what: Self::WHAT,
                got: name.to_string(),
                expected: Self::names().join(", "),
            })
    }
}

/// A name that is not in the table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {got:?}: expected one of {expected}")]
pub struct UnknownName {
    /// What was named ("kernel").
    pub what: &'static str,
    /// The name given.
    pub got: String,
    /// The names accepted, comma-separated.
    pub expected: String,
}

/// `FromStr` and `Display` from a [`Named`] table.
macro_rules! named {
    ($ty:ty) => {
        impl std::str::FromStr for $ty {
            type Err = $crate::names::UnknownName;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                <$ty as $crate::names::Named>::from_name(s)
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::names::Named::name(*self))
            }
        }
    };
}
pub(crate) use named;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendChoice;
    use crate::kernel::KernelKind;
    use crate::select::BatchMode;
    use crate::sim::Objective;

    fn round_trips<T: Named + std::fmt::Debug + std::str::FromStr + std::fmt::Display>() {
        for (v, name, help) in T::TABLE {
            assert_eq!(v.to_string(), *name);
            assert!(matches!(name.parse::<T>(), Ok(p) if p == *v), "{name}");
            assert!(!help.is_empty());
        }
    }

    #[test]
    fn every_table_round_trips_and_refuses_other_names() {
        round_trips::<KernelKind>();
        round_trips::<BackendChoice>();
        round_trips::<BatchMode>();
        round_trips::<Objective>();
        round_trips::<crate::data::PoolFormat>();
        round_trips::<crate::sim::synth::Scenario>();
        let e = "tanimot".parse::<KernelKind>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown kernel \"tanimot\": expected one of tanimoto, minmax, rbf, matern52"
        );
        assert!("GPU".parse::<BackendChoice>().is_err());
    }
}
