//! Integers in paths and query strings, read as JSON Schema reads integers: the document says
//! `integer`, and to JSON Schema `42.0` is the integer 42, so `/api/v1/triggers/42.0` is
//! trigger 42. A fraction other than zeros, or a value out of the type's range, is a 400.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// An integer path segment or query value (`Path<Int<i64>>`, `Option<Int<u32>>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Int<T>(pub T);

impl<'de, T: TryFrom<i128>> Deserialize<'de> for Int<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntVisitor(PhantomData))
    }
}

/// `#[serde(default, deserialize_with = "crate::params::optional")]` on an `Option<i64>` (or
/// other integer) field of a query: absent is `None`, present is read as an [`Int`].
pub(crate) fn optional<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Ok(Option::<Int<T>>::deserialize(deserializer)?.map(|Int(v)| v))
}

struct IntVisitor<T>(PhantomData<T>);

impl<T: TryFrom<i128>> IntVisitor<T> {
    fn fit<E: de::Error>(value: i128) -> Result<Int<T>, E> {
        T::try_from(value)
            .map(Int)
            .map_err(|_| E::custom(format!("{value} is out of range")))
    }
}

impl<T: TryFrom<i128>> Visitor<'_> for IntVisitor<T> {
    type Value = Int<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int<T>, E> {
        Self::fit(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int<T>, E> {
        Self::fit(i128::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Int<T>, E> {
        parse_integer(v)
            .ok_or_else(|| E::custom(format!("{v:?} is not an integer")))
            .and_then(Self::fit)
    }
}

/// `42`, `-7`, `42.0`, `42.000`: digits with an optional sign and a fraction of zeros.
fn parse_integer(text: &str) -> Option<i128> {
    let whole = match text.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() && fraction.bytes().all(|b| b == b'0') => {
            whole
        }
        Some(_) => return None,
        None => text,
    };
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    whole.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_may_carry_a_fraction_of_zeros() {
        assert_eq!(parse_integer("42"), Some(42));
        assert_eq!(parse_integer("-7.0"), Some(-7));
        assert_eq!(parse_integer("21532.000"), Some(21532));
        for bad in ["4.2", "42.", ".0", "", "-", "+4", "1e3", "0x10", " 4"] {
            assert_eq!(parse_integer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn values_must_fit_their_type() {
        let fits = |text: &str| IntVisitor::<u32>(PhantomData).visit_str::<de::value::Error>(text);
        assert_eq!(fits("500.0").unwrap(), Int(500));
        assert!(fits("-1").is_err());
        assert!(fits("4294967296").is_err());
    }
}
